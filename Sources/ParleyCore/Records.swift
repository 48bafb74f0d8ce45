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

/// Where messages are posted: a room, for now.
public struct ConversationKey: RawRepresentable, Sendable, Hashable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The conversation of the room `name`.
    public static func room(_ name: String) -> ConversationKey { ConversationKey(rawValue: "room:" + name) }
}

/// A message to store.
public struct NewMessage: Sendable, Hashable {
    public let conversation: ConversationKey
    public let sender: Identity
    public let text: String
    /// The sender's own id for the message, which makes a retried send harmless.
    public let clientID: String?
    public let sentAt: Timestamp

    public init(conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp) {
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
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

    public init(id: Int64, conversation: ConversationKey, sender: Identity, text: String, clientID: String?, sentAt: Timestamp) {
        self.id = id
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientID = clientID
        self.sentAt = sentAt
    }

    init(id: Int64, _ new: NewMessage) {
        self.init(id: id, conversation: new.conversation, sender: new.sender, text: new.text, clientID: new.clientID, sentAt: new.sentAt)
    }
}
