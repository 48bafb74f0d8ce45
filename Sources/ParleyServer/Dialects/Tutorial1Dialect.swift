import ParleyCore
import SocketIO

/// Tutorial 1 (the Viber-like chat): `login(name)` names the socket, `join(roomName)` makes it
/// the current room, `chat(message)` sends `message {user, message}` to everyone in that room,
/// the sender included. Nothing else is ever sent. Its rooms are the chat domain's rooms.
enum Tutorial1Dialect {
    private static let nameKey = "tutorial1.name"
    private static let roomKey = "tutorial1.room"

    /// Only messages reach a tutorial-1 client, as `{user, message}` (`user` absent before login).
    static func render(_ event: ChatEvent) -> DialectRendering? {
        guard case .message(let message) = event else { return nil }
        var payload = JSONObject()
        if !message.sender.name.isEmpty { payload["user"] = .string(message.sender.name) }
        payload["message"] = .string(message.text)
        return DialectRendering(event: "message", payload: .object(payload))
    }

    static func install(on namespace: Namespace, service: ChatService, dialects: DialectTable) {
        namespace.on("login", in: .tutorial1, table: dialects) { socket, args, _ in
            guard let name = args.first?.stringValue else { return }
            socket.data[nameKey] = .string(Names.tutorialName(name))
        }
        namespace.on("join") { socket, args, _ in
            // An object `join` is tutorial 2's; only a string is this dialect's.
            guard let room = args.first?.stringValue, socket.speaks(.tutorial1, table: dialects) else { return }
            let connection = ConnectionID(rawValue: socket.id)
            guard (try? await service.join(room, as: identity(of: socket), on: connection, uniqueName: false)) != nil else { return }
            socket.data[roomKey] = .string(room)
        }
        namespace.on("chat", in: .tutorial1, table: dialects) { socket, args, _ in
            guard let room = socket.data[roomKey]?.stringValue, let text = args.first?.stringValue else { return }
            // Not waiting for the store: the socket's next event runs while the message commits.
            try? await service.submit(text, to: room, clientID: nil, from: identity(of: socket), on: ConnectionID(rawValue: socket.id)) { _ in }
        }
    }

    /// A tutorial-1 socket is a guest named by its `login` (no name before it).
    private static func identity(of socket: Socket) -> Identity {
        Identity(id: UserID(rawValue: socket.id), name: socket.data[nameKey]?.stringValue ?? "", kind: .guest)
    }
}
