import ParleyCore
import SocketIO

/// The native event API of docs/PROTOCOL.md: how its payloads look on the wire.
enum NativeDialect {
    static func user(_ identity: Identity) -> JSONValue {
        ["id": .string(identity.id.rawValue), "name": .string(identity.name), "kind": .string(identity.kind.rawValue)]
    }

    static func message(_ message: StoredMessage) -> JSONValue {
        var object: JSONObject = [
            "id": .number(Double(message.id)),
            "room": .string(String(message.conversation.rawValue.dropFirst("room:".count))),
            "from": user(message.sender),
            "text": .string(message.text),
            "sentAt": .number(Double(message.sentAt)),
        ]
        if let clientID = message.clientID { object["clientId"] = .string(clientID) }
        return .object(object)
    }

    static func room(_ room: Room) -> JSONValue {
        ["name": .string(room.name), "owner": .string(room.owner.rawValue), "createdAt": .number(Double(room.createdAt))]
    }

    static func members(_ room: String, _ members: [Identity]) -> JSONValue {
        ["room": .string(room), "members": .array(members.map(user))]
    }

    /// The event name and payload of a domain event.
    static func render(_ event: ChatEvent) -> (String, JSONValue) {
        switch event {
        case .message(let stored):
            return ("message", message(stored))
        case .members(let room, let list):
            return ("room:members", members(room, list))
        case .notice(let room, let kind, let who):
            let text = "\(who.name) \(kind == .joined ? "joined" : "left")"
            return ("room:notice", ["room": .string(room), "kind": .string(kind.rawValue), "user": user(who), "text": .string(text)])
        }
    }

    /// The acknowledgement of a successful command: `{"ok": true, …fields}`.
    static func success(_ fields: JSONObject = [:]) -> JSONValue {
        var object: JSONObject = ["ok": true]
        for (key, value) in fields { object[key] = value }
        return .object(object)
    }

    /// The acknowledgement of a refused command: `{"ok": false, "error": {"code", "message"}}`.
    static func failure(_ error: ChatError) -> JSONValue {
        ["ok": false, "error": ["code": .string(error.code.rawValue), "message": .string(error.message)]]
    }
}
