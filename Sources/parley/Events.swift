import ArgumentParser
import Foundation
import NIOCore
import SocketIO
import SocketIOClient

/// The first tutorial's raw console, done properly: send any event with any JSON data, see
/// every event that arrives and every ack.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A raw event console: send any event with JSON data; every event received is printed.",
        discussion: """
            Type `event {json}` on one line (the event name may contain spaces), or an event name \
            alone and its data on the next line (empty for none). Data that is not JSON is sent as a string. Acks are printed as they \
            arrive. Ctrl-D or Ctrl-C quits.
            """
    )

    @Option(help: "The server's URL.")
    var server = "http://localhost:3000"

    @Option(help: "The namespace to join.")
    var namespace = "/"

    @Option(help: "The CONNECT auth payload, as a JSON object (for instance {\"token\":\"…\"}).")
    var auth: String?

    @Option(help: "Seconds to wait for an ack before giving up on it.")
    var ackTimeout = 5

    func run() async throws {
        var configuration = SocketIOClientConfiguration()
        configuration.namespace = namespace
        if let auth {
            guard let object = (try? JSONValue(parsing: auth))?.objectValue else {
                throw ValidationError("--auth must be a JSON object")
            }
            configuration.auth = object
        }
        let client = SocketIOClient(url: server, configuration: configuration)
        client.onAny { event, args in
            Terminal.say("<- \(event) \(args.map(\.description).joined(separator: " "))")
        }
        client.onDisconnect { reason in Terminal.say("disconnected: \(reason)") }
        let interrupt = Terminal.onInterrupt {
            client.disconnect()
            Foundation.exit(0)
        }
        defer { interrupt.cancel() }
        do {
            try await client.connect()
        } catch {
            Terminal.say("could not connect to \(server): \(error)")
            throw ExitCode.failure
        }
        Terminal.say("connected to \(server) as \(client.id ?? "?"); type: event [json data]")
        var pendingEvent: String?
        for await line in Terminal.lines() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if let event = pendingEvent {
                pendingEvent = nil
                send(event, text, with: client)
                continue
            }
            guard !text.isEmpty else { continue }
            if let (event, data) = Self.splitEventAndJSON(text) {
                send(event, data, with: client)
            } else {
                pendingEvent = text
                Terminal.prompt("data> ")
            }
        }
        client.disconnect()
    }

    /// Splits `event name {json}` where the remainder after some space is valid JSON; event
    /// names may contain spaces (`chat message`). `nil` when no remainder is JSON.
    static func splitEventAndJSON(_ line: String) -> (String, String)? {
        var index = line.startIndex
        while let space = line[index...].firstIndex(of: " ") {
            let data = line[line.index(after: space)...].trimmingCharacters(in: .whitespaces)
            if !data.isEmpty, (try? JSONValue(parsing: data)) != nil {
                return (String(line[..<space]), data)
            }
            index = line.index(after: space)
        }
        return nil
    }

    /// Sends `event` with `data` (JSON, else a string; none when empty) and prints its ack.
    private func send(_ event: String, _ data: String, with client: SocketIOClient) {
        let args: [JSONValue] = data.isEmpty ? [] : [(try? JSONValue(parsing: data)) ?? .string(data)]
        Terminal.say("-> \(event) \(args.map(\.description).joined(separator: " "))")
        let timeout = TimeAmount.seconds(Int64(ackTimeout))
        Task {
            if let reply = try? await client.emitWithAck(event, args, timeout: timeout) {
                Terminal.say("ack \(event) \(reply.map(\.description).joined(separator: " "))")
            }
        }
    }
}
