import Foundation
import NIOCore
import ParleyCore
import SocketIO

/// The native event API of docs/PROTOCOL.md: how its payloads look on the wire.
enum NativeDialect {
    static func user(_ identity: Identity) -> JSONValue {
        ["id": .string(identity.id.rawValue), "name": .string(identity.name), "kind": .string(identity.kind.rawValue)]
    }

    /// A room message has `room`; a direct message has `to` (the recipient) instead.
    static func message(_ message: StoredMessage, to recipient: Identity? = nil) -> JSONValue {
        var object: JSONObject = ["id": .number(Double(message.id))]
        if let room = message.conversation.roomName { object["room"] = .string(room) }
        object["from"] = user(message.sender)
        if let recipient { object["to"] = user(recipient) }
        object["text"] = .string(message.text)
        if let image = message.image {
            var attached: JSONObject = ["type": .string(image.type), "size": .number(Double(image.size))]
            if let data = image.data { attached["data"] = .binary(ByteBuffer(bytes: data)) }
            object["image"] = .object(attached)
        }
        if let encrypted = message.encrypted {
            let copies = encrypted.copies.map { copy -> JSONValue in
                [
                    "device": .string(copy.device), "ephemeralPublic": .binary(ByteBuffer(bytes: copy.ephemeralPublic)),
                    "nonce": .binary(ByteBuffer(bytes: copy.nonce)), "ciphertext": .binary(ByteBuffer(bytes: copy.ciphertext)),
                ]
            }
            object["e2e"] = ["senderDevice": .string(encrypted.senderDevice), "copies": .array(copies)]
        }
        object["sentAt"] = .number(Double(message.sentAt))
        if let clientID = message.clientID { object["clientId"] = .string(clientID) }
        if message.isEphemeral { object["ephemeral"] = true }
        return .object(object)
    }

    static func friends(_ list: FriendList) -> JSONObject {
        [
            "friends": .array(list.friends.map(user)), "incoming": .array(list.incoming.map(user)),
            "outgoing": .array(list.outgoing.map(user)), "blocked": .array(list.blocked.map(user)),
        ]
    }

    static func room(_ room: Room, retention: RetentionPolicy) -> JSONValue {
        [
            "name": .string(room.name), "owner": .string(room.owner.rawValue), "createdAt": .number(Double(room.createdAt)),
            "retention": .string(retention.rawValue),
        ]
    }

    /// A member list, sorted by name (the domain keeps arrival order).
    /// A device's published key; the key travels as binary (a Socket.IO attachment).
    static func device(_ device: DeviceKey) -> JSONValue {
        [
            "deviceId": .string(device.deviceID), "publicKey": .binary(ByteBuffer(bytes: device.publicKey)),
            "publishedAt": .number(Double(device.publishedAt)),
        ]
    }

    static func members(_ room: String, _ members: [Identity]) -> JSONValue {
        ["room": .string(room), "members": .array(sortedByName(members).map(user))]
    }

    static func sortedByName(_ members: [Identity]) -> [Identity] {
        members.sorted { ($0.name.lowercased(), $0.id) < ($1.name.lowercased(), $1.id) }
    }

    /// The event name and payload of a domain event.
    static func render(_ event: ChatEvent) -> (String, JSONValue)? {
        switch event {
        case .message(let stored):
            return ("message", message(stored))
        case .members(let room, let list):
            return ("room:members", members(room, list))
        case .notice(let room, let kind, let who):
            let text = "\(who.name) \(kind == .joined ? "joined" : "left")"
            return ("room:notice", ["room": .string(room), "kind": .string(kind.rawValue), "user": user(who), "text": .string(text)])
        case .direct(let stored, let recipient):
            return ("dm", message(stored, to: recipient))
        case .friendRequest(let from):
            return ("friend:request", ["from": user(from)])
        case .friendship(let other, let status):
            return ("friend:update", ["user": user(other), "status": .string(status.rawValue)])
        case .receipt(let id, let conversation, let by, let status):
            var object: JSONObject = ["id": .number(Double(id))]
            if let room = conversation.roomName { object["room"] = .string(room) }
            object["by"] = user(by)
            object["status"] = .string(status.rawValue)
            return ("receipt", .object(object))
        case .typing(let conversation, let from, let isTyping):
            var object: JSONObject = [:]
            if let room = conversation.roomName { object["room"] = .string(room) }
            object["from"] = user(from)
            object["typing"] = .bool(isTyping)
            return ("typing", .object(object))
        case .cleared(let room, let by):
            return ("room:cleared", ["room": .string(room), "by": user(by)])
        case .removed(let room, let removed, let by):
            return ("room:removed", ["room": .string(room), "user": user(removed), "by": user(by)])
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
