import ArgumentParser
import Foundation
import NIOCore
import SocketIO
import SocketIOClient
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An interactive terminal client of Parley's native API.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat from the terminal.",
        discussion: """
            Type a line to send it to the current room. Commands: /join ROOM, /leave [ROOM], \
            /dm HANDLE TEXT, /friends, /accept HANDLE, /history [N], /who, /verify HANDLE, \
            /verified HANDLE, /trust HANDLE, /help, /quit. Ctrl-D or Ctrl-C quits. With --login the \
            password comes from PARLEY_PASSWORD, or is asked, and direct messages to friends with \
            device keys are end-to-end encrypted (this device's key is kept in --keys).
            """
    )

    @Option(help: "The server's URL.")
    var server = "http://localhost:3000"

    @Option(help: "The room to join at start.")
    var room = "lobby"

    @Option(help: "Your name as a guest (a generated one when neither --name nor --login is given).")
    var name: String?

    @Option(help: "Log in with this account handle.")
    var login: String?

    @Option(help: "Send this message to the room, then exit (for scripts).")
    var send: String?

    @Option(help: "Where this device's end-to-end key and the keys it has seen are kept (default: $PARLEY_KEYS, else ~/.config/parley).")
    var keys: String?

    func validate() throws {
        if name != nil, login != nil { throw ValidationError("give --name or --login, not both") }
    }

    func run() async throws {
        let style = Style(colours: Terminal.colours)
        var configuration = SocketIOClientConfiguration()
        var account: (token: String, userID: String)?
        if let login {
            let signedIn = try await Self.token(server: server, handle: login)
            account = signedIn
            configuration.auth = ["token": .string(signedIn.token)]
        } else if let name {
            configuration.auth = ["name": .string(name)]
        }
        let client = SocketIOClient(url: server, configuration: configuration)
        let session = ChatSession(client: client, style: style, room: room)
        // Before connecting: the inbox is replayed as soon as the connection opens.
        if let login, let account { try loadE2E(session, handle: login, userID: account.userID) }
        session.listen()
        do {
            try await client.connect()
        } catch {
            Terminal.say(style.error("could not connect to \(server): \(error)"))
            throw ExitCode.failure
        }
        if let e2e = session.e2e.withLock({ $0 }) {
            guard await session.publishDevice(e2e) else { throw ExitCode.failure }
            Terminal.say(style.dim("🔒 direct messages are end-to-end encrypted (device \(e2e.device.deviceID))"))
        }
        guard await session.join(room) else { throw ExitCode.failure }
        if let send {
            let sent = await session.post(send)
            client.disconnect()
            if !sent { throw ExitCode.failure }
            return
        }
        let interrupt = Terminal.onInterrupt {
            client.disconnect()
            Foundation.exit(0)
        }
        defer { interrupt.cancel() }
        Terminal.say(style.dim("type /help for commands"))
        for await line in Terminal.lines() {
            guard await session.handle(line) else { break }
        }
        client.disconnect()
        Terminal.say(style.dim("bye"))
    }

    /// Loads (or makes) this device's key for `handle` on this server, in `--keys`.
    private func loadE2E(_ session: ChatSession, handle: String, userID: String) throws {
        let directory = keys ?? ProcessInfo.processInfo.environment["PARLEY_KEYS"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".config/parley")
        let host = (URL(string: server).map { "\($0.host ?? "server")-\($0.port ?? 80)" } ?? "server")
        let base = (directory as NSString).appendingPathComponent("\(host)-\(handle.lowercased())")
        let device = try DeviceIdentity.load(path: base + ".key")
        session.e2e.withLock { $0 = E2EContext(device: device, known: KnownKeys(path: base + ".known.json"), userID: userID, handle: handle) }
    }

    /// Logs in over REST and returns the session token and the account's id.
    static func token(server: String, handle: String) async throws -> (token: String, userID: String) {
        var password = ProcessInfo.processInfo.environment["PARLEY_PASSWORD"]
        if password == nil {
            password = String(cString: getpass("password for \(handle): "))
        }
        guard let url = URL(string: server + "/api/login") else { throw ValidationError("invalid --server") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let body: JSONValue = ["handle": .string(handle), "password": .string(password ?? "")]
        request.httpBody = Data(body.json.utf8)
        let data: Data = try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, _, error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: data ?? Data()) }
            }.resume()
        }
        let reply = try? JSONValue(parsing: String(decoding: data, as: UTF8.self))
        guard let token = reply?["token"]?.stringValue, let userID = reply?["user"]?["id"]?.stringValue else {
            Terminal.say("login failed: \(reply?["error"]?["message"]?.stringValue ?? "no answer")")
            throw ExitCode.failure
        }
        return (token, userID)
    }
}

/// ANSI styling, or none.
struct Style: Sendable {
    let colours: Bool

    private func wrap(_ code: String, _ text: String) -> String { colours ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func dim(_ text: String) -> String { wrap("2", text) }
    func bold(_ text: String) -> String { wrap("1", text) }
    func error(_ text: String) -> String { wrap("31", text) }
    func status(_ text: String) -> String { wrap("33", text) }

    /// A name in a colour of its own, the same each time.
    func name(_ text: String) -> String {
        let palette = ["32", "34", "35", "36", "92", "94", "95", "96"]
        let index = text.unicodeScalars.reduce(0) { ($0 &* 31 &+ Int($1.value)) & 0xFFFF } % palette.count
        return wrap("1;" + palette[index], text)
    }

    static let clock: DateFormatter = {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        return formatter
    }()

    func time(_ milliseconds: Double?) -> String {
        let date = milliseconds.map { Date(timeIntervalSince1970: $0 / 1000) } ?? Date()
        return dim(Self.clock.string(from: date))
    }
}
