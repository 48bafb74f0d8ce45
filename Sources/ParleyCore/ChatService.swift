import Foundation
import Logging
import Synchronization

/// Limits and policies of the chat service.
public struct ChatConfiguration: Sendable {
    /// The longest message, in characters. Default 4000.
    public var maxMessageLength = 4000
    /// The largest history page. Default 100; a request without a limit gets 50.
    public var maxHistoryPage = 100
    /// Password lengths accepted, in characters. Default 8...256.
    public var passwordLength = 8...256
    /// The password hash. Default scrypt N=2^15, r=8, p=1.
    public var passwordHasher = PasswordHasher()
    /// The largest image, in bytes. Default 900,000, which fits under the engine's default
    /// 1,000,000-byte maximum payload.
    public var maxImageBytes = 900_000
    /// Per connection: messages and typing (`message:send`, `dm:send`, `typing`). Default 10
    /// per second, 30 at once.
    public var messageRate = RateLimit(perSecond: 10, burst: 30)
    /// Per connection: joins and friend requests. Default 2 per second, 10 at once.
    public var joinRate = RateLimit(perSecond: 2, burst: 10)
    /// Per client address: sign-ins and registrations over the REST API, each of which costs the
    /// server a slow password hash. `nil` turns the limit off. Default 30 a minute, 30 at once:
    /// room for an office behind one address, and a password guesser gets one try in two seconds.
    public var signInRate: RateLimit? = RateLimit(perSecond: 0.5, burst: 30)
    /// The retention of conversations that have not chosen one. Default `keep`.
    public var defaultRetention = RetentionPolicy.keep
    /// How long an `until-delivered` message waits for its recipients before it is deleted
    /// anyway, in milliseconds. Default 14 days.
    public var undeliveredMaxAge: Timestamp = 14 * 24 * 3600 * 1000
    /// Whether a room's member accounts and each conversation's retention policy are kept in
    /// memory between messages. In a cluster each node tells the others what it changed (through
    /// its ``ClusterReplicator``), and they forget their copy. Default on.
    public var cachesConversations = true

    public init() {}
}

/// The chat domain: identities, rooms, presence and messages. It takes commands, keeps what
/// must last in its ``ChatStore``, and hands events to its ``ChatEventSink``. It knows nothing
/// of sockets or SQL.
public final class ChatService: Sendable {
    public let configuration: ChatConfiguration
    let store: any ChatStore
    let sink: any ChatEventSink
    /// Tells the other nodes of a cluster about this node's presence and conversation changes;
    /// `nil` on a single node.
    let replicator: (any ClusterReplicator)?
    /// In a cluster, the arbiter of unique names in rooms; `nil` on a single node.
    let names: (any NameRegistry)?
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    let presence = Mutex(Presence())
    let ephemeral = Mutex(EphemeralMessages())
    let cache: Mutex<ConversationCache>
    /// In a cluster, this node's open connections of accounts, for ``catchUpWithOtherNodes()``.
    let accountConnections = Mutex<[ConnectionID: Identity]>([:])

    /// The current time, in milliseconds since 1970, by the service's clock.
    public var now: Timestamp { clock() }

    /// - Parameters:
    ///   - replicator: in a cluster, where this node's presence and conversation changes go.
    ///   - names: in a cluster, the arbiter of unique names in rooms.
    ///   - clock: the current time in milliseconds since 1970.
    public init(
        store: any ChatStore,
        sink: any ChatEventSink,
        replicator: (any ClusterReplicator)? = nil,
        names: (any NameRegistry)? = nil,
        configuration: ChatConfiguration = ChatConfiguration(),
        logger: Logger = Logger(label: "parley.chat"),
        clock: @escaping @Sendable () -> Timestamp = { Timestamp(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.store = store
        self.sink = sink
        self.replicator = replicator
        self.names = names
        self.configuration = configuration
        self.cache = Mutex(ConversationCache(enabled: configuration.cachesConversations))
        self.logger = logger
        self.clock = clock
    }

    // MARK: Identities

    /// Creates an account and signs it in. Returns the identity and a new session token.
    public func register(handle: String, password: String) async throws(ChatError) -> (identity: Identity, token: String) {
        let (display, key) = try Names.handle(handle)
        guard configuration.passwordLength.contains(password.count) else {
            throw ChatError(.invalidPassword, "A password has \(configuration.passwordLength.lowerBound) to \(configuration.passwordLength.upperBound) characters.")
        }
        let hasher = configuration.passwordHasher
        let hash = try await storage { try hasher.hash(password) }
        let account = Account(id: .newAccount(), handle: display, handleKey: key, passwordHash: hash, createdAt: clock())
        try await storage { try await store.createAccount(account) }
        return (account.identity, try await startSession(for: account.id))
    }

    /// Signs an account in. Wrong handle and wrong password are the same refusal.
    public func login(handle: String, password: String) async throws(ChatError) -> (identity: Identity, token: String) {
        let refusal = ChatError(.badCredentials, "Wrong handle or password.")
        guard let (_, key) = try? Names.handle(handle) else { throw refusal }
        guard let account = try await storage({ try await store.account(handleKey: key) }) else {
            // Spend the same time as a real check, so that timing does not tell which handles exist.
            _ = configuration.passwordHasher.verify(password, against: Self.decoyHash)
            throw refusal
        }
        guard configuration.passwordHasher.verify(password, against: account.passwordHash) else { throw refusal }
        return (account.identity, try await startSession(for: account.id))
    }

    private static let decoyHash: String = (try? PasswordHasher().hash(Token.random())) ?? ""

    private func startSession(for user: UserID) async throws(ChatError) -> String {
        let token = Token.random()
        try await storage { try await store.createSession(tokenHash: Token.hash(token), user: user, createdAt: clock()) }
        return token
    }

    /// Revokes a session token.
    public func logout(token: String) async throws(ChatError) {
        _ = try await authenticate(token: token)
        try await storage { try await store.deleteSession(tokenHash: Token.hash(token)) }
    }

    /// The account a session token belongs to.
    public func authenticate(token: String) async throws(ChatError) -> Identity {
        let refusal = ChatError(.unauthorized, "The token is not valid.")
        guard !token.isEmpty, token.count <= 256 else { throw refusal }
        guard let user = try await storage({ try await store.sessionUser(tokenHash: Token.hash(token)) }),
              let account = try await storage({ try await store.account(id: user) })
        else { throw refusal }
        return account.identity
    }

    /// A guest with the chosen name, or a generated one when `name` is `nil`.
    public func guest(name: String?) throws(ChatError) -> Identity {
        let name = try name.map { (name) throws(ChatError) in try Names.guestName(name) } ?? Names.generatedGuestName()
        return Identity(id: .newGuest(), name: name, kind: .guest)
    }

    // MARK: Rooms

    /// Puts a connection in a room, creating the room (owned by `identity`) if it is new. The
    /// room gets the new member list and, when the user was not there yet, a "joined" notice.
    ///
    /// - Parameter uniqueName: refuse the join when someone else with the same name is there
    ///   (the native rule; the first tutorial's clients have no such rule).
    public func join(
        _ room: String, as identity: Identity, on connection: ConnectionID, uniqueName: Bool = true
    ) async throws(ChatError) -> (room: Room, members: [Identity]) {
        let name = try Names.roomName(room)
        let nameTaken = ChatError(.nameTaken, "Someone named \(identity.name) is already in \(name).")
        guard !uniqueName || !presence.withLock({ $0.nameConflict(identity, in: name) }) else { throw nameTaken }
        // In a cluster, the name is claimed where every node's joins meet.
        let registry = uniqueName ? names : nil
        if let registry {
            guard try await storage({ try await registry.claim(identity.name, in: name, for: identity.id, on: connection) }) else {
                throw nameTaken
            }
        }
        do throws(ChatError) {
            let stored = try await storage { try await store.createRoom(Room(name: name, owner: identity.id, createdAt: clock())) }
            if identity.isAccount {
                try await storage { try await store.addMember(room: name, user: identity.id) }
                conversationChanged(.members(room: name))
            }
            let members = try presence.withLock { presence throws(ChatError) -> [Identity] in
                guard !uniqueName || !presence.nameConflict(identity, in: name) else { throw nameTaken }
                enter(name, identity, connection, presence: &presence)
                return presence.members(of: name)
            }
            return (stored, members)
        } catch {
            if registry != nil, !presence.withLock({ $0.contains(connection, in: name) }) { releaseNames(of: connection, in: [name]) }
            throw error
        }
    }

    /// Puts a connection in a room (under the presence lock): it subscribes to the room, and the
    /// room gets a "joined" notice (on the user's first connection there) then the member list.
    func enter(_ room: String, _ identity: Identity, _ connection: ConnectionID, presence: inout Presence) {
        guard !presence.contains(connection, in: room) else { return }
        let first = presence.add(connection, identity, to: room)
        replicator?.publish(.entered(PresenceEntry(room: room, connection: connection, identity: identity)))
        sink.subscribe(connection, to: .room(room))
        let options = PublishOptions(author: connection)
        if first { sink.publish(.notice(room: room, kind: .joined, who: identity), to: .room(room), options: options) }
        sink.publish(.members(room: room, members: presence.members(of: room)), to: .room(room), options: options)
    }

    /// Takes a connection out of a room. An account that leaves stops being a member.
    public func leave(_ room: String, as identity: Identity, on connection: ConnectionID) async throws(ChatError) {
        let name = try Names.roomName(room)
        guard presence.withLock({ $0.contains(connection, in: name) }) else {
            throw ChatError(.notMember, "You are not in \(name).")
        }
        if identity.isAccount {
            try await storage { try await store.removeMember(room: name, user: identity.id) }
            conversationChanged(.members(room: name))
        }
        presence.withLock { presence in
            guard let removed = presence.remove(connection, from: name) else { return }
            replicator?.publish(.left(room: name, connection: connection))
            releaseNames(of: connection, in: [name])
            sink.unsubscribe(connection, from: .room(name))
            announceDeparture(removed, from: name, presence: presence)
        }
    }

    /// A connection went away: it leaves every room it was in (accounts stay members).
    public func disconnected(_ connection: ConnectionID) {
        if replicator != nil { accountConnections.withLock { _ = $0.removeValue(forKey: connection) } }
        presence.withLock { presence in
            let rooms = (presence.connections[connection] ?? []).sorted()
            for room in rooms {
                guard let removed = presence.remove(connection, from: room) else { continue }
                replicator?.publish(.left(room: room, connection: connection))
                announceDeparture(removed, from: room, presence: presence)
            }
            releaseNames(of: connection, in: rooms)
        }
    }

    private func announceDeparture(_ removed: (identity: Identity, last: Bool), from room: String, presence: Presence) {
        guard removed.last else { return }
        sink.publish(.notice(room: room, kind: .left, who: removed.identity), to: .room(room))
        sink.publish(.members(room: room, members: presence.members(of: room)), to: .room(room))
    }

    /// Whether someone uses `name` (ignoring case) in `room` right now.
    public func isNameTaken(_ name: String, in room: String) -> Bool {
        let key = name.lowercased()
        return presence.withLock { $0.members(of: room).contains { $0.name.lowercased() == key } }
    }

    /// The people present in a room; only for a connection in it.
    public func members(of room: String, on connection: ConnectionID) throws(ChatError) -> [Identity] {
        let name = try Names.roomName(room)
        return try presence.withLock { presence throws(ChatError) in
            guard presence.contains(connection, in: name) else { throw ChatError(.notMember, "You are not in \(name).") }
            return presence.members(of: name)
        }
    }

    // MARK: Messages

    /// Posts a text message to a room the connection is in. Returns the stored message; a
    /// retry with the same `clientID` returns the first one and sends nothing again.
    public func send(
        _ text: String, image: Data? = nil, to room: String, clientID: String?, from identity: Identity, on connection: ConnectionID
    ) async throws(ChatError) -> StoredMessage {
        let outcome = Outcome<StoredMessage>()
        try await submit(text, image: image, to: room, clientID: clientID, from: identity, on: connection, completion: outcome.settle)
        return try await outcome.value.get()
    }

    /// Posts a message like ``send(_:image:to:clientID:from:on:)`` without waiting for the store
    /// to commit it. The checks run first and throw; then the message is queued behind the ones
    /// submitted before it, published to the room once committed, and handed to `completion`
    /// (or the error is). A connection's next event can run meanwhile: a sender is limited by
    /// how fast the store writes, not by how long each commit takes.
    public func submit(
        _ text: String, image: Data? = nil, to room: String, clientID: String?, from identity: Identity, on connection: ConnectionID,
        completion: @escaping @Sendable (Result<StoredMessage, ChatError>) -> Void
    ) async throws(ChatError) {
        let name = try Names.roomName(room)
        let image = try image.map { (data) throws(ChatError) in try MessageImage.validated(data, limit: configuration.maxImageBytes) }
        try validate(text: text, clientID: clientID, withImage: image != nil)
        guard presence.withLock({ $0.contains(connection, in: name) }) else {
            throw ChatError(.notMember, "Join \(name) before writing to it.")
        }
        let recipients = try await memberAccounts(of: name).filter { $0 != identity.id }
        let sink = self.sink
        try await post(text, image: image, in: .room(name), clientID: clientID, from: identity, recipients: recipients) { result in
            if case .success((let stored, true)) = result { sink.publish(.message(stored), to: .room(name)) }
            completion(result.map(\.message))
        }
    }

    /// Returns 0 once every message posted so far is stored (or has failed) and published, or,
    /// if `limit` passes first, how many were still waiting to be stored: a server stopping
    /// calls it after closing its sessions, before closing the store.
    public func finishWrites(within limit: Duration? = nil) async -> Int {
        await store.finishWrites(within: limit)
    }

    /// A room's member accounts, from the cache when it has them.
    func memberAccounts(of room: String) async throws(ChatError) -> [UserID] {
        let (known, generation) = cache.withLock { ($0.members(of: room), $0.generation) }
        if let known { return known }
        let members = try await storage { try await store.members(of: room) }
        cache.withLock { $0.setMembers(members, of: room, readAt: generation) }
        return members
    }

    /// Checks a message's text (which may be empty under an image) and client id.
    func validate(text: String, clientID: String?, withImage: Bool = false) throws(ChatError) {
        guard withImage || !text.isBlank else { throw ChatError(.emptyMessage, "A message cannot be empty.") }
        guard text.hasAtMost(configuration.maxMessageLength) else {
            throw ChatError(.messageTooLong, "A message has at most \(configuration.maxMessageLength) characters.")
        }
        // PostgreSQL cannot store it in text, and SQLite's text ends at it.
        guard !text.utf8.contains(0) else { throw ChatError(.invalidArgument, "A message cannot contain the character U+0000.") }
        if let clientID, clientID.isEmpty || !clientID.hasAtMost(64) || clientID.unicodeScalars.contains(where: Names.isControlOrFormat) {
            throw ChatError(.invalidArgument, "clientId has 1 to 64 characters, none of them control characters.")
        }
    }

    /// The page size asked for, checked (50 when `nil`).
    func pageLimit(_ limit: Int?) throws(ChatError) -> Int {
        let limit = limit ?? 50
        guard (1...configuration.maxHistoryPage).contains(limit) else {
            throw ChatError(.invalidArgument, "limit is between 1 and \(configuration.maxHistoryPage).")
        }
        return limit
    }

    /// A page of a room's history, oldest first: up to `limit` messages before the message id
    /// `before` (the newest when `nil`), and whether older ones remain. Only for a connection in
    /// the room or an account that is a member.
    public func history(
        of room: String, before: Int64?, limit: Int?, for identity: Identity, on connection: ConnectionID
    ) async throws(ChatError) -> (messages: [StoredMessage], more: Bool) {
        let name = try Names.roomName(room)
        let limit = try pageLimit(limit)
        var allowed = presence.withLock { $0.contains(connection, in: name) }
        if !allowed, identity.isAccount {
            allowed = try await storage { try await store.isMember(room: name, user: identity.id) }
        }
        guard allowed else { throw ChatError(.notMember, "Only members of \(name) can read its history.") }
        let page = try await storage { try await store.messages(in: .room(name), before: before, limit: limit + 1) }
        return (Array(page.suffix(limit)), page.count > limit)
    }

    // MARK: Storage errors

    /// Runs a store operation; a ``ChatError`` passes through, anything else is logged and
    /// reported as an internal error.
    func storage<T>(_ operation: () async throws -> T) async throws(ChatError) -> T {
        do {
            return try await operation()
        } catch {
            throw storageError(error)
        }
    }

    /// A store's error as the client sees it: its own refusals as they are, anything else logged
    /// and reported as an internal error.
    func storageError(_ error: any Error) -> ChatError {
        if let error = error as? ChatError { return error }
        logger.error("storage failed", metadata: ["error": .string("\(error)")])
        return ChatError(.internalError, "The server could not complete this; nothing was changed.")
    }
}
