/// Where the chat service keeps what must survive a restart. One implementation per database
/// (SQLite today, PostgreSQL later); every implementation passes the same test suite.
///
/// Methods throw ``ChatError`` for refusals the protocol names (a taken handle) and any other
/// error for a storage failure, which the service reports as ``ChatError/Code/internalError``.
public protocol ChatStore: Sendable {
    /// Stores a new account. Throws ``ChatError/Code/handleTaken`` if its handle key exists.
    func createAccount(_ account: Account) async throws
    /// The account with this handle key.
    func account(handleKey: String) async throws -> Account?
    /// The account with this id.
    func account(id: UserID) async throws -> Account?

    /// Keeps a session: the hash of its token and its user.
    func createSession(tokenHash: String, user: UserID, createdAt: Timestamp) async throws
    /// The user of the session with this token hash.
    func sessionUser(tokenHash: String) async throws -> UserID?
    /// Revokes a session.
    func deleteSession(tokenHash: String) async throws

    /// The room with this name.
    func room(named name: String) async throws -> Room?
    /// Creates the room unless it exists; returns the room as stored (the first creator owns it).
    func createRoom(_ room: Room) async throws -> Room
    /// Records that an account belongs to a room (idempotent).
    func addMember(room: String, user: UserID) async throws
    /// Records that an account left a room.
    func removeMember(room: String, user: UserID) async throws
    /// Whether an account belongs to a room.
    func isMember(room: String, user: UserID) async throws -> Bool

    /// The latest friend request between two accounts, either way round.
    func friendRequest(between a: UserID, and b: UserID) async throws -> FriendRequest?
    /// Replaces whatever request stood between the two accounts with `request`.
    func saveFriendRequest(_ request: FriendRequest) async throws
    /// Removes any request between the two accounts (a block ends a friendship).
    func deleteFriendRequest(between a: UserID, and b: UserID) async throws
    /// Every request that involves `user`, sent or received, in any status.
    func friendRequests(of user: UserID) async throws -> [FriendRequest]
    /// Records that `blocker` blocks `blocked` (idempotent).
    func block(_ blocked: UserID, by blocker: UserID) async throws
    /// Lifts a block.
    func unblock(_ blocked: UserID, by blocker: UserID) async throws
    /// Whether `blocker` blocks `blocked`.
    func isBlocked(_ blocked: UserID, by blocker: UserID) async throws -> Bool
    /// The accounts `blocker` blocks.
    func blocked(by blocker: UserID) async throws -> [UserID]

    /// Publishes a device's key, replacing the key the account's device of that id had.
    func putDevice(_ device: DeviceKey) async throws
    /// An account's devices, in the order they were first published.
    func devices(of user: UserID) async throws -> [DeviceKey]

    /// The accounts that are members of a room.
    func members(of room: String) async throws -> [UserID]
    /// The rooms an account is a member of, by name.
    func rooms(of user: UserID) async throws -> [String]

    /// Stores a message and puts it in the inbox of each of `recipients` (accounts), unless the
    /// same sender already stored one with the same client id: then returns that one with
    /// `inserted == false` and changes nothing. For a room's message, `recipients` are the room's
    /// member accounts other than the sender, as the service knows them; a store that several
    /// nodes share reads them itself as of the commit instead.
    func insertMessage(_ message: NewMessage, recipients: [UserID]) async throws -> (message: StoredMessage, inserted: Bool)
    /// Does what ``insertMessage(_:recipients:)`` does without making the caller wait for the
    /// commit: it returns once the message is queued, and `completion` runs once it is committed
    /// (or has failed). Messages submitted one after another are stored, and their completions
    /// run, in that order. A store that has fallen far behind may make the caller wait.
    func submitMessage(_ message: NewMessage, recipients: [UserID], completion: @escaping MessageCompletion) async
    /// Returns 0 once every message submitted before it is stored (or has failed) and its
    /// completion has run; or, if `limit` (when given) passes first, how many were still waiting
    /// to be stored then.
    func finishWrites(within limit: Duration?) async -> Int
    /// The message with this id.
    func message(id: Int64) async throws -> StoredMessage?
    /// The image of the message with this id, with its bytes.
    func image(ofMessage id: Int64) async throws -> MessageImage?
    /// Up to `limit` messages waiting in an account's inbox with ids above `after`, oldest first.
    func pendingMessages(for user: UserID, after: Int64?, limit: Int) async throws -> [StoredMessage]
    /// Takes messages out of an account's inbox; returns those that were in it. A message that
    /// waits for the account's devices (``NewMessage/inboxDevices``) only leaves it once each of
    /// them acknowledged: `device` ticks one off (and the message is returned), an
    /// acknowledgement without one does nothing to it. Messages kept `until-delivered` that are
    /// then in nobody's inbox are deleted, so that their content is gone from storage.
    func markDelivered(_ ids: [Int64], for user: UserID, device: String?) async throws -> [StoredMessage]
    /// Deletes `until-delivered` messages sent before `time` (delivered or not), with their
    /// inbox entries. Returns how many were deleted.
    func deleteUndelivered(sentBefore time: Timestamp) async throws -> Int

    /// Deletes every message of a conversation (with their inbox entries), scrubbing their
    /// content from storage. Returns how many were deleted.
    func deleteMessages(in conversation: ConversationKey) async throws -> Int

    /// The retention policy set for a conversation, if one was set.
    func retention(of conversation: ConversationKey) async throws -> RetentionPolicy?
    /// Sets a conversation's retention policy for the messages sent from now on.
    func setRetention(_ policy: RetentionPolicy, for conversation: ConversationKey) async throws
    /// Up to `limit` messages of a conversation with ids below `before` (all when `nil`), the
    /// newest ones, in ascending id order.
    func messages(in conversation: ConversationKey, before: Int64?, limit: Int) async throws -> [StoredMessage]
}

extension ChatStore {
    /// Takes messages out of an account's inbox, for no device in particular.
    public func markDelivered(_ ids: [Int64], for user: UserID) async throws -> [StoredMessage] {
        try await markDelivered(ids, for: user, device: nil)
    }

    /// Stores a message for nobody's inbox.
    public func insertMessage(_ message: NewMessage) async throws -> (message: StoredMessage, inserted: Bool) {
        try await insertMessage(message, recipients: [])
    }
}

/// What became of a message submitted to a store: stored (or found stored under its client id,
/// `inserted == false`), or an error.
public typealias MessageCompletion = @Sendable (Result<(message: StoredMessage, inserted: Bool), any Error>) -> Void

extension ChatStore {
    /// Inserts and waits, then completes: in order, without the overlap a store with a write
    /// queue of its own can give.
    public func submitMessage(_ message: NewMessage, recipients: [UserID], completion: @escaping MessageCompletion) async {
        do {
            completion(.success(try await insertMessage(message, recipients: recipients)))
        } catch {
            completion(.failure(error))
        }
    }

    /// Nothing to wait for: ``submitMessage(_:recipients:completion:)`` completes before it
    /// returns.
    public func finishWrites(within limit: Duration?) async -> Int { 0 }
}
