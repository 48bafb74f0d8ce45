import Foundation
import ParleyCore
import SocketIO
import SocketIOClient
import Synchronization

/// The state and commands of one `parley chat` session.
final class ChatSession: Sendable {
    let client: SocketIOClient
    let style: Style
    private let currentRoom: Mutex<String>
    /// End-to-end encryption, once signed in with an account.
    let e2e = Mutex<E2EContext?>(nil)
    /// The last direct message being shown: each waits for the one before (decrypting takes a
    /// moment), so that they are shown in the order they came.
    private let showing = Mutex<Task<Void, Never>?>(nil)
    /// The keys of the encrypted images of the messages shown, by message id, for `/save`.
    let imageKeys = Mutex<[Int: SealedImageKey]>([:])

    init(client: SocketIOClient, style: Style, room: String) {
        self.client = client
        self.style = style
        self.currentRoom = Mutex(room)
    }

    var room: String { currentRoom.withLock { $0 } }

    /// Prints what the server pushes, and acknowledges delivered messages.
    func listen() {
        let style = self.style
        client.on("message") { [self] args, _ in
            guard let message = args.first else { return }
            Terminal.say(line(for: message, prefix: "#\(message["room"]?.stringValue ?? "")"))
            acknowledge(message)
        }
        client.on("dm") { [self] args, _ in
            guard let message = args.first else { return }
            let prefix = "@\(message["from"]?["name"]?.stringValue ?? "")→\(message["to"]?["name"]?.stringValue ?? "")"
            let e2e = e2e.withLock { $0 }
            showing.withLock { last in
                let previous = last
                last = Task {
                    await previous?.value
                    var text: String?
                    var image: String?
                    if message["e2e"] != nil {
                        if let e2e {
                            let opened = await decrypt(message, e2e)
                            text = opened.text
                            image = opened.image
                        } else {
                            text = "[an encrypted message; sign in with --login to read it]"
                        }
                    }
                    Terminal.say(line(for: message, prefix: prefix, text: text, image: image))
                    acknowledge(message)
                }
            }
        }
        client.on("room:notice") { args, _ in
            guard let notice = args.first, let text = notice["text"]?.stringValue else { return }
            Terminal.say(style.dim("* \(text) (#\(notice["room"]?.stringValue ?? ""))"))
        }
        client.on("friend:request") { args, _ in
            guard let from = args.first?["from"]?["name"]?.stringValue else { return }
            Terminal.say(style.status("* friend request from \(from): /accept \(from)"))
        }
        client.on("friend:update") { args, _ in
            guard let user = args.first?["user"]?["name"]?.stringValue, let status = args.first?["status"]?.stringValue else { return }
            Terminal.say(style.status("* \(user): friend request \(status)"))
        }
        client.onDisconnect { reason in Terminal.say(style.status("○ disconnected (\(reason))")) }
    }

    /// A message as a line; `image` replaces how its image is described (an encrypted one's).
    private func line(for message: JSONValue, prefix: String, text shown: String? = nil, image imageShown: String? = nil) -> String {
        let from = message["from"]?["name"]?.stringValue ?? "?"
        var text = shown ?? message["text"]?.stringValue ?? ""
        if let image = imageShown {
            text += (text.isEmpty ? "" : " ") + image
        } else if message["e2e"] == nil, let image = message["image"], let type = image["type"]?.stringValue {
            let id = message["id"]?.intValue.map { ": /save \($0) FILE" } ?? ""
            text += (text.isEmpty ? "" : " ") + "[image \(type), \(image["size"]?.intValue ?? 0) bytes\(id)]"
        }
        return "\(style.time(message["sentAt"]?.numberValue)) \(style.dim(prefix)) \(style.name(from)): \(text)"
    }

    private func acknowledge(_ message: JSONValue) {
        guard let id = message["id"], message["ephemeral"] == nil else { return }
        var payload: JSONObject = ["ids": [id]]
        // The device, so that an until-delivered encrypted message waits for each device.
        if let device = e2e.withLock({ $0?.device.deviceID }) { payload["device"] = .string(device) }
        client.emit("message:delivered", .object(payload))
    }

    /// Sends a command and returns its ack's payload, or prints the error and returns nil.
    func command(_ event: String, _ payload: JSONObject) async -> JSONValue? {
        switch await ask(event, payload) {
        case .answer(let answer):
            return answer
        case .refused(_, let message), .failed(let message):
            Terminal.say(style.error("! \(message)"))
            return nil
        }
    }

    /// Refusals that changed nothing and pass, with how long to wait before sending the same
    /// message again, as the web app does.
    static let sendAgainAfter: [String: Duration] = ["store_unavailable": .seconds(2), "rate_limited": .seconds(1)]
    /// How long a message refused that way keeps being sent again before the terminal gives up.
    static let sendingPatience: Duration = .seconds(120)

    /// Sends a message (`message:send` or `dm:send`, with its `clientId`, so that the server
    /// stores it once however often it arrives) like ``command(_:_:)``. While the server answers
    /// that it cannot take it just now (``sendAgainAfter``), says so once and sends it again, for
    /// up to ``sendingPatience``; the next line typed waits, so that messages keep their order.
    func sendMessage(_ event: String, _ payload: JSONObject) async -> JSONValue? {
        precondition(payload["clientId"] != nil, "a message sent again needs its clientId")
        let deadline = ContinuousClock.now + Self.sendingPatience
        var held = false
        while true {
            switch await ask(event, payload) {
            case .answer(let answer):
                return answer
            case .refused(let code, let message):
                if let wait = Self.sendAgainAfter[code], ContinuousClock.now + wait < deadline {
                    if !held { Terminal.say(style.status("… not sent yet: \(message) Trying again…")) }
                    held = true
                    try? await Task.sleep(for: wait)
                    continue
                }
                Terminal.say(style.error("! \(message)"))
                return nil
            case .failed(let message):
                Terminal.say(style.error("! \(message)"))
                return nil
            }
        }
    }

    /// What became of a command: its ack's payload, the server's refusal, or no answer at all.
    private enum Outcome {
        case answer(JSONValue)
        case refused(code: String, message: String)
        case failed(String)
    }

    private func ask(_ event: String, _ payload: JSONObject) async -> Outcome {
        do {
            let reply = try await client.emitWithAck(event, .object(payload))
            guard let answer = reply.first else { return .failed("no answer") }
            guard answer["ok"] == true else {
                let message = answer["error"]?["message"]?.stringValue ?? "no answer"
                return .refused(code: answer["error"]?["code"]?.stringValue ?? "", message: message)
            }
            return .answer(answer)
        } catch {
            return .failed("\(error)")
        }
    }

    /// Joins a room and makes it current; prints who is there.
    func join(_ name: String) async -> Bool {
        guard let answer = await command("room:join", ["room": .string(name)]) else { return false }
        currentRoom.withLock { $0 = name }
        let members = answer["members"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        Terminal.say(style.status("● connected — #\(name): \(members.joined(separator: ", "))"))
        return true
    }

    /// Sends a message to the current room.
    func post(_ text: String) async -> Bool {
        let clientID = UUID().uuidString
        guard let answer = await sendMessage("message:send", ["room": .string(room), "text": .string(text), "clientId": .string(clientID)]) else {
            return false
        }
        sayStored(answer)
        return true
    }

    /// Prints the id a send's answer gives its stored message (🔒 for an encrypted one).
    func sayStored(_ answer: JSONValue?, sealed: Bool = false) {
        if let id = answer?["message"]?["id"]?.intValue { Terminal.say(style.dim("sent \(sealed ? "🔒 " : "")#\(id)")) }
    }

    /// Handles one line of input. Returns `false` to quit.
    func handle(_ line: String) async -> Bool {
        let text = line.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return true }
        guard text.hasPrefix("/") else {
            _ = await post(line)
            return true
        }
        let parts = text.dropFirst().split(separator: " ", maxSplits: 2).map(String.init)
        let argument = parts.count > 1 ? parts[1] : nil
        switch parts[0] {
        case "quit", "exit":
            return false
        case "help":
            Terminal.say("""
                /join ROOM · /leave [ROOM] · /dm HANDLE TEXT · /friends · /accept HANDLE · /history [N] · /who · /quit
                /image [@HANDLE] FILE (to #room, or to a friend) · /save ID FILE (an image, decrypted if it was encrypted)
                /verify HANDLE (safety numbers) · /verified HANDLE · /trust HANDLE (accept a changed key)
                anything else is sent to #\(room)
                """)
        case "join":
            if let argument { _ = await join(argument) } else { Terminal.say(style.error("! /join ROOM")) }
        case "leave":
            let name = argument ?? room
            if await command("room:leave", ["room": .string(name)]) != nil { Terminal.say(style.dim("left #\(name)")) }
        case "who":
            if let answer = await command("room:members", ["room": .string(room)]) {
                let names = answer["members"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                Terminal.say("#\(room): \(names.joined(separator: ", "))")
            }
        case "history":
            let limit = argument.flatMap(Int.init) ?? 20
            if let answer = await command("history:get", ["room": .string(room), "limit": .number(Double(limit))]) {
                for message in answer["messages"]?.arrayValue ?? [] { Terminal.say(self.line(for: message, prefix: "#\(room)")) }
            }
        case "dm":
            guard parts.count == 3 else {
                Terminal.say(style.error("! /dm HANDLE TEXT"))
                return true
            }
            if let e2e = e2e.withLock({ $0 }) {
                await sendEncrypted(parts[2], image: nil, to: parts[1], e2e)
            } else {
                sayStored(await sendMessage("dm:send", ["to": .string(parts[1]), "text": .string(parts[2]), "clientId": .string(UUID().uuidString)]))
            }
        case "image":
            // The path is the rest of the line (it may hold spaces), after an optional @HANDLE.
            var rest = text.dropFirst("/image".count).drop(while: \.isWhitespace)
            var target: String?
            if rest.hasPrefix("@") {
                let handle = rest.dropFirst().prefix { !$0.isWhitespace }
                target = String(handle)
                rest = rest.dropFirst(handle.count + 1).drop(while: \.isWhitespace)
            }
            guard !rest.isEmpty, target?.isEmpty != true else {
                Terminal.say(style.error("! /image [@HANDLE] FILE"))
                return true
            }
            await sendImage(path: String(rest), to: target)
        case "save":
            guard parts.count == 3, let id = Int(parts[1]) else {
                Terminal.say(style.error("! /save ID FILE"))
                return true
            }
            await saveImage(id, to: parts[2])
        case "verify", "trust", "verified":
            guard let argument, let e2e = e2e.withLock({ $0 }) else {
                Terminal.say(style.error("! /\(parts[0]) HANDLE, signed in with --login"))
                return true
            }
            switch parts[0] {
            case "verify": await verify(argument, e2e)
            case "trust": await trust(argument, verified: false, e2e)
            default: await trust(argument, verified: true, e2e)
            }
        case "friends":
            if let answer = await command("friend:list", [:]) {
                for (key, label) in [("friends", "friends"), ("incoming", "asking you"), ("outgoing", "you asked")] {
                    let names = answer[key]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                    Terminal.say("\(label): \(names.isEmpty ? "—" : names.joined(separator: ", "))")
                }
            }
        case "accept":
            if let argument, await command("friend:accept", ["handle": .string(argument)]) != nil {
                Terminal.say(style.status("* you and \(argument) are friends"))
            }
        default:
            Terminal.say(style.error("! unknown command /\(parts[0]); /help lists them"))
        }
        return true
    }

    /// Sends the image in `path` to the current room, or to the friend `handle` (end-to-end
    /// encrypted when signed in with an account and the friend has device keys).
    private func sendImage(path: String, to handle: String?) async {
        guard let data = FileManager.default.contents(atPath: path) else {
            return Terminal.say(style.error("! cannot read \(path)"))
        }
        guard let type = MessageImage.sniff(data) else {
            return Terminal.say(style.error("! \(path) is not a PNG, JPEG, GIF or WebP image"))
        }
        let image = JSONValue.binary(.init(bytes: data))
        let clientID = JSONValue.string(UUID().uuidString)
        guard let handle else {
            return sayStored(await sendMessage("message:send", ["room": .string(room), "text": "", "image": image, "clientId": clientID]))
        }
        if let e2e = e2e.withLock({ $0 }) {
            await sendEncrypted("", image: (data, type), to: handle, e2e)
        } else {
            sayStored(await sendMessage("dm:send", ["to": .string(handle), "text": "", "image": image, "clientId": clientID]))
        }
    }

    /// Writes the image of message `id` to `path`: decrypted, if it was an encrypted one shown
    /// here.
    private func saveImage(_ id: Int, to path: String) async {
        guard let answer = await command("image:get", ["id": .number(Double(id))]), let data = answer["data"]?.binaryValue else { return }
        var bytes = Data(data.readableBytesView)
        if let key = imageKeys.withLock({ $0[id] }) {
            guard let opened = key.open(bytes) else {
                return Terminal.say(style.error("! could not decrypt the image of #\(id): it was changed"))
            }
            bytes = opened
        }
        guard FileManager.default.createFile(atPath: path, contents: bytes) else {
            return Terminal.say(style.error("! cannot write \(path)"))
        }
        Terminal.say(style.status("* saved #\(id) to \(path) (\(bytes.count) bytes)"))
    }
}
