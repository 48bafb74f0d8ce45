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
public struct ConversationKey: RawRepresentable, Sendable, Hashable {
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

    public init(
        conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp,
        retention: RetentionPolicy = .keep
    ) {
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
        self.retention = retention
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

    public init(
        id: Int64, conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp,
        retention: RetentionPolicy = .keep
    ) {
        self.id = id
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
        self.retention = retention
    }

    /// The stored form of `new` under id `id`.
    public init(id: Int64, _ new: NewMessage) {
        self.init(
            id: id, conversation: new.conversation, sender: new.sender, text: new.text, clientID: new.clientID,
            sentAt: new.sentAt, retention: new.retention
        )
    }

    /// Whether the message was never stored (a `none` conversation): its id is not the store's.
    public var isEphemeral: Bool { retention == .none }
}
