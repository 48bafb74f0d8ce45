/// One connected client (a socket); a user may have several.
public struct ConnectionID: RawRepresentable, Sendable, Hashable, Codable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Who receives an event.
public enum Audience: Sendable, Hashable {
    /// Every connection present in the room.
    case room(String)
    /// One connection.
    case connection(ConnectionID)
    /// Every connection of an account.
    case user(UserID)
}

/// Something that happened, for the transport to render and deliver.
public enum ChatEvent: Sendable, Hashable {
    /// A new message in a room.
    case message(StoredMessage)
    /// The people now present in a room, in the order they arrived.
    case members(room: String, members: [Identity])
    /// Someone arrived in or left a room.
    case notice(room: String, kind: NoticeKind, who: Identity)
    /// A direct message from its sender to `to`.
    case direct(StoredMessage, to: Identity)
    /// A friend request from `from`.
    case friendRequest(from: Identity)
    /// The friendship with `user` changed (accepted, or rejected for its sender).
    case friendship(user: Identity, status: FriendStatus)
    /// A recipient received or read a message.
    case receipt(messageID: Int64, conversation: ConversationKey, by: Identity, status: ReceiptStatus)
    /// Someone started or stopped typing in a conversation (never stored).
    case typing(conversation: ConversationKey, from: Identity, isTyping: Bool)
    /// The room's owner cleared its history.
    case cleared(room: String, by: Identity)
    /// The room's owner removed `user` from the room (sent to the room and to `user`).
    case removed(room: String, user: Identity, by: Identity)
}

/// What a receipt says.
public enum ReceiptStatus: String, Sendable, Hashable {
    case delivered
    case read
}

/// How an event is delivered.
public struct PublishOptions: Sendable, Hashable {
    /// A connection of the audience that does not get the event (its author).
    public var except: ConnectionID?
    /// The event may be dropped for a connection that cannot take it at once.
    public var volatile: Bool
    /// The connection whose action caused the event (a joiner, say); a dialect may leave it out
    /// where its clients expect that.
    public var author: ConnectionID?

    public init(except: ConnectionID? = nil, volatile: Bool = false, author: ConnectionID? = nil) {
        self.except = except
        self.volatile = volatile
        self.author = author
    }
}

/// The kind of a room notice.
public enum NoticeKind: String, Sendable, Hashable {
    case joined
    case left
}

/// Delivers the chat service's events. The service says which connections belong to which
/// audience and what to publish; the transport (Socket.IO rooms today, several nodes later)
/// does the delivery. Calls must not block: they run while the service holds its presence lock,
/// which is what keeps member lists in order.
public protocol ChatEventSink: Sendable {
    /// From now on, `connection` receives what is published to `audience`.
    func subscribe(_ connection: ConnectionID, to audience: Audience)
    /// `connection` no longer receives what is published to `audience`.
    func unsubscribe(_ connection: ConnectionID, from audience: Audience)
    /// Delivers `event` to every connection of `audience`, as `options` say.
    func publish(_ event: ChatEvent, to audience: Audience, options: PublishOptions)
    /// Runs `work`, what follows a store's commit of a message (publishing it, answering its
    /// sender), where this sink delivers best. A store completes its commits on a thread of its
    /// own; the Socket.IO sink moves the work to an event loop, so that the store's thread only
    /// writes. Work handed over from one thread runs in the order it was handed over. By default
    /// it runs at once, on the calling thread.
    func afterCommit(_ work: @escaping @Sendable () -> Void)
}

extension ChatEventSink {
    public func afterCommit(_ work: @escaping @Sendable () -> Void) { work() }

    /// Delivers `event` to every connection of `audience`, reliably.
    public func publish(_ event: ChatEvent, to audience: Audience) {
        publish(event, to: audience, options: PublishOptions())
    }
}
