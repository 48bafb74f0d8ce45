import ParleyCore
import SocketIO

/// Tutorial 2 (the MERN chat): `join({name, room}, ack)` and `sendMessage(text, ack)`, with
/// `message {user, text}` and `roomData {room, users}`. Its rooms are the chat domain's rooms.
enum Tutorial2Dialect {
    private static let nameKey = "tutorial2.name"
    private static let roomKey = "tutorial2.room"

    static func render(_ event: ChatEvent) -> DialectRendering? {
        switch event {
        case .message(let message):
            return DialectRendering(event: "message", payload: ["user": .string(message.sender.name), "text": .string(message.text)])
        case .notice(_, .joined, let who):
            return DialectRendering(event: "message", payload: ["user": "admin", "text": .string("\(who.name) has joined!")], skipsAuthor: true)
        case .notice(_, .left, let who):
            return DialectRendering(event: "message", payload: ["user": "Admin", "text": .string("\(who.name) has left.")])
        case .members(let room, let members):
            let users = members.map { member -> JSONValue in
                ["id": .string(member.id.rawValue), "name": .string(member.name), "room": .string(room)]
            }
            return DialectRendering(event: "roomData", payload: ["room": .string(room), "users": .array(users)])
        default:
            return nil
        }
    }

    static func install(on namespace: Namespace, service: ChatService, dialects: DialectTable) {
        namespace.on("join") { socket, args, ack in
            // A string `join` is tutorial 1's; only an object is this dialect's.
            guard let request = args.first?.objectValue, socket.speaks(.tutorial2, table: dialects) else { return }
            let name = Names.tutorialName(request["name"]?.stringValue ?? "").lowercased()
            let room = (request["room"]?.stringValue ?? "").trimmingWhitespace.lowercased()
            guard !name.isEmpty, !room.isEmpty else { return ack("Username and room are required.") }
            guard !service.isNameTaken(name, in: room) else { return ack("Username is taken.") }
            socket.emit("message", ["user": "admin", "text": .string("\(name), welcome to room \(room).")])
            let identity = Identity(id: UserID(rawValue: socket.id), name: name, kind: .guest)
            do throws(ChatError) {
                _ = try await service.join(room, as: identity, on: ConnectionID(rawValue: socket.id))
            } catch {
                return ack(.string(error.code == .nameTaken ? "Username is taken." : error.message))
            }
            socket.data[nameKey] = .string(name)
            socket.data[roomKey] = .string(room)
            ack()
        }
        namespace.on("sendMessage", in: .tutorial2, table: dialects) { socket, args, ack in
            guard let name = socket.data[nameKey]?.stringValue, let room = socket.data[roomKey]?.stringValue,
                  let text = args.first?.stringValue
            else { return }
            let identity = Identity(id: UserID(rawValue: socket.id), name: name, kind: .guest)
            // Acknowledged once stored; the socket's next event runs while the message commits.
            try? await service.submit(text, to: room, clientID: nil, from: identity, on: ConnectionID(rawValue: socket.id)) { result in
                if case .success = result { ack() }
            }
        }
    }
}
