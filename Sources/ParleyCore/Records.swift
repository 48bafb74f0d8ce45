import Foundation

/// Milliseconds since 1970, the unit of every timestamp Parley stores and sends.
public typealias Timestamp = Int64

/// An account as stored.
public struct Account: Sendable, Hashable {
    public let id: UserID
    /// The handle as the user typed it.
    public let handle: String
    /// The handle's case-insensitive key (lower case); unique.
    public let handleKey: String
    /// A salted slow hash (see ``PasswordHasher``); never the password.
    public let passwordHash: String
    public let createdAt: Timestamp

    public init(id: UserID, handle: String, handleKey: String, passwordHash: String, createdAt: Timestamp) {
        self.id = id
        self.handle = handle
        self.handleKey = handleKey
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }

    public var identity: Identity { Identity(id: id, name: handle, kind: .account) }
}

/// A room as stored: created by its first joiner, who owns it.
public struct Room: Sendable, Hashable {
    public let name: String
    public let owner: UserID
    public let createdAt: Timestamp

    public init(name: String, owner: UserID, createdAt: Timestamp) {
        self.name = name
        self.owner = owner
        self.createdAt = createdAt
    }
}

/// Where messages are posted: a room, or the direct conversation of two accounts.
public struct ConversationKey: RawRepresentable, Sendable, Hashable, Codable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The conversation of the room `name`.
    public static func room(_ name: String) -> ConversationKey { ConversationKey(rawValue: "room:" + name) }

    /// The direct conversation of two accounts (the same whichever way round).
    public static func direct(_ a: UserID, _ b: UserID) -> ConversationKey {
        let (low, high) = a < b ? (a, b) : (b, a)
        return ConversationKey(rawValue: "dm:\(low.rawValue)|\(high.rawValue)")
    }

    /// The room's name, if this is a room conversation.
    public var roomName: String? {
        rawValue.hasPrefix("room:") ? String(rawValue.dropFirst(5)) : nil
    }

    /// The two accounts, if this is a direct conversation.
    public var participants: (UserID, UserID)? {
        guard rawValue.hasPrefix("dm:") else { return nil }
        let parts = rawValue.dropFirst(3).split(separator: "|")
        guard parts.count == 2 else { return nil }
        return (UserID(rawValue: String(parts[0])), UserID(rawValue: String(parts[1])))
    }
}

/// Where a friend request stands.
public enum FriendStatus: String, Sendable, Hashable {
    /// Sent, not yet answered.
    case pending
    /// Accepted: the two are friends.
    case accepted
    /// Refused; a new request may be sent.
    case rejected
}

/// A friend request from one account to another, as stored.
public struct FriendRequest: Sendable, Hashable {
    public let from: UserID
    public let to: UserID
    public let status: FriendStatus
    public let updatedAt: Timestamp

    public init(from: UserID, to: UserID, status: FriendStatus, updatedAt: Timestamp) {
        self.from = from
        self.to = to
        self.status = status
        self.updatedAt = updatedAt
    }
}

/// How long a conversation's messages are kept.
public enum RetentionPolicy: String, Sendable, Hashable, CaseIterable {
    /// Kept as history.
    case keep
    /// Kept only until every recipient account has acknowledged it, then deleted; deleted
    /// undelivered after a maximum age.
    case untilDelivered = "until-delivered"
    /// Relayed live, never stored.
    case none
}

/// An image attached to a message. Its type is found from its first bytes, never taken from
/// the client.
public struct MessageImage: Sendable, Hashable {
    /// The media type: `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    public let type: String
    /// The size in bytes.
    public let size: Int
    /// The bytes, when they travel with the message (on the way in, and for messages that are
    /// never stored); `nil` in stored messages, whose images are fetched one by one.
    public let data: Data?

    public init(type: String, size: Int, data: Data?) {
        self.type = type
        self.size = size
        self.data = data
    }

    /// Checks `data` is a PNG, JPEG, GIF or WebP image of at most `limit` bytes.
    public static func validated(_ data: Data, limit: Int) throws(ChatError) -> MessageImage {
        guard !data.isEmpty else { throw ChatError(.unsupportedImage, "The image is empty.") }
        guard data.count <= limit else { throw ChatError(.imageTooLarge, "An image has at most \(limit) bytes.") }
        guard let type = sniff(data) else {
            throw ChatError(.unsupportedImage, "Only PNG, JPEG, GIF and WebP images can be sent.")
        }
        return MessageImage(type: type, size: data.count, data: data)
    }

    /// The media type of an end-to-end encrypted image: what it is stays inside the sealed
    /// copies.
    public static let sealedType = "application/octet-stream"

    /// Checks `data`, an encrypted image (docs/E2E.md), is no larger than an image of `limit`
    /// bytes with its 16-byte tag. Its content is not looked at.
    public static func sealed(_ data: Data, limit: Int) throws(ChatError) -> MessageImage {
        guard data.count > 16 else { throw ChatError(.unsupportedImage, "An encrypted image has more than its 16-byte tag.") }
        guard data.count <= limit + 16 else { throw ChatError(.imageTooLarge, "An image has at most \(limit) bytes.") }
        return MessageImage(type: sealedType, size: data.count, data: data)
    }

    /// The media type of an image from its signature, or `nil`.
    public static func sniff(_ data: Data) -> String? {
        let bytes = [UInt8](data.prefix(12))
        func starts(_ signature: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + signature.count && Array(bytes[offset..<offset + signature.count]) == signature
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if starts([0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return "image/gif" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        return nil
    }

    /// The same image without its bytes.
    public var withoutData: MessageImage { MessageImage(type: type, size: size, data: nil) }
}

/// A message to store.
public struct NewMessage: Sendable, Hashable {
    public let conversation: ConversationKey
    public let sender: Identity
    public let text: String
    /// The sender's own id for the message, which makes a retried send harmless.
    public let clientID: String?
    public let sentAt: Timestamp
    /// The conversation's policy when the message was sent; it decides the message's fate.
    public let retention: RetentionPolicy
    /// An attached image, with its bytes.
    public let image: MessageImage?
    /// An end-to-end encrypted message's sealed copies (its `text` is then empty).
    public let encrypted: EncryptedBody?
    /// The recipient's devices that must each acknowledge an `until-delivered` encrypted
    /// message before it is deleted (one inbox entry each, besides the account's); empty for
    /// every other message.
    public let inboxDevices: [String]

    public init(
        conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp,
        retention: RetentionPolicy = .keep, image: MessageImage? = nil, encrypted: EncryptedBody? = nil, inboxDevices: [String] = []
    ) {
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
        self.retention = retention
        self.image = image
        self.encrypted = encrypted
        self.inboxDevices = inboxDevices
    }
}

/// A stored message. Ids grow with time across the whole store, so "before id" pages history.
public struct StoredMessage: Sendable, Hashable {
    public let id: Int64
    public let conversation: ConversationKey
    public let sender: Identity
    public let text: String
    public let clientID: String?
    public let sentAt: Timestamp
    public let retention: RetentionPolicy
    /// The attached image's type and size (its bytes only for messages never stored).
    public let image: MessageImage?
    /// An end-to-end encrypted message's sealed copies (its `text` is then empty).
    public let encrypted: EncryptedBody?

    public init(
        id: Int64, conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp,
        retention: RetentionPolicy = .keep, image: MessageImage? = nil, encrypted: EncryptedBody? = nil
    ) {
        self.id = id
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
        self.retention = retention
        self.image = image
        self.encrypted = encrypted
    }

    /// The stored form of `new` under id `id`: the image without its bytes.
    public init(id: Int64, _ new: NewMessage) {
        self.init(
            id: id, conversation: new.conversation, sender: new.sender, text: new.text, clientID: new.clientID,
            sentAt: new.sentAt, retention: new.retention, image: new.image?.withoutData, encrypted: new.encrypted
        )
    }

    /// Whether the message was never stored (a `none` conversation): its id is not the store's.
    public var isEphemeral: Bool { retention == .none }
}

/// A device's end-to-end identity key (docs/E2E.md), as its account published it.
public struct DeviceKey: Sendable, Hashable {
    public let user: UserID
    /// The device's id, chosen by the device: 1–64 letters, digits, `_` or `-`.
    public let deviceID: String
    /// The raw 32-byte X25519 public key.
    public let publicKey: Data
    public let publishedAt: Timestamp

    public init(user: UserID, deviceID: String, publicKey: Data, publishedAt: Timestamp) {
        self.user = user
        self.deviceID = deviceID
        self.publicKey = publicKey
        self.publishedAt = publishedAt
    }
}

/// One device's sealed copy of an end-to-end encrypted message (docs/E2E.md).
public struct SealedCopy: Codable, Sendable, Hashable {
    /// The recipient device's id.
    public var device: String
    /// The sender's ephemeral X25519 public key, 32 bytes.
    public var ephemeralPublic: Data
    /// The AES-GCM nonce, 12 bytes.
    public var nonce: Data
    /// The ciphertext followed by its 16-byte tag.
    public var ciphertext: Data

    public init(device: String, ephemeralPublic: Data, nonce: Data, ciphertext: Data) {
        self.device = device
        self.ephemeralPublic = ephemeralPublic
        self.nonce = nonce
        self.ciphertext = ciphertext
    }
}

/// The body of an end-to-end encrypted direct message: which device sealed it, and a copy for
/// each device that may read it. The server stores and relays it without reading it.
public struct EncryptedBody: Codable, Sendable, Hashable {
    public var senderDevice: String
    public var copies: [SealedCopy]

    public init(senderDevice: String, copies: [SealedCopy]) {
        self.senderDevice = senderDevice
        self.copies = copies
    }

    /// Its stored form (JSON), and back.
    public var stored: Data { (try? JSONEncoder().encode(self)) ?? Data() }
    public init?(stored: Data?) {
        guard let stored, !stored.isEmpty, let body = try? JSONDecoder().decode(EncryptedBody.self, from: stored) else { return nil }
        self = body
    }
}
