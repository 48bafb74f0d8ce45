import Foundation
import GRDB
import Logging
import ParleyCore
import Synchronization

/// The ``ChatStore`` on an embedded SQLite database (GRDB): the default store of
/// `parley serve`. WAL journal, foreign keys on, and `secure_delete` on so that deleted
/// messages are overwritten in the file rather than left readable. The schema is created and
/// migrated on open by append-only named migrations.
public final class SQLiteChatStore: ChatStore {
    private let database: any DatabaseWriter
    private let inserts: MessageWriteQueue

    /// When a commit is on disk: SQLite's `synchronous` setting of the connection that writes.
    public enum Sync: String, Sendable, CaseIterable {
        /// Each commit syncs the write-ahead log before the messages in it are acknowledged, so
        /// that a message acknowledged as stored survives a power loss or a crash of the
        /// machine. Messages that arrive while one commit syncs share the next one.
        case full
        /// Commits reach the operating system, which writes them out in its own time; the log
        /// is synced only at checkpoints. A message acknowledged as stored survives a crash of
        /// Parley, but a power loss or a crash of the machine may lose the last ones.
        case normal

        var pragma: Int { self == .full ? 2 : 1 }
    }

    /// Opens (creating and migrating if needed) the database at `path`; `sync` says when a
    /// commit is on disk (default ``Sync/full``). Throws a ``ChatError`` that names the file and
    /// says why when it cannot be opened.
    public init(path: String, sync: Sync = .full) throws {
        let database: DatabasePool
        do {
            database = try DatabasePool(path: path, configuration: Self.configuration)
            try Self.migrator.migrate(database)
            // After opening: GRDB sets `synchronous = NORMAL` on the writer when it turns WAL on.
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(sync.pragma)") }
        } catch let error as DatabaseError {
            let why = if error.isLockHeldElsewhere {
                "another process held it locked for \(Int(Self.busyTimeout)) s"
            } else {
                switch error.resultCode {
                case .SQLITE_CANTOPEN: "it cannot be opened or created (does its directory exist, and may this user write there?)"
                case .SQLITE_NOTADB: "it is not a SQLite database"
                case .SQLITE_READONLY, .SQLITE_PERM: "this user may not write to it"
                default: error.message ?? "\(error)"
                }
            }
            throw ChatError(.internalError, "Could not open the SQLite database \(path): \(why).")
        }
        self.database = database
        self.inserts = Self.writeQueue(database)
    }

    /// When the writing connection's commits are on disk, as SQLite reports it (`nil` for an
    /// in-memory database, where they never are).
    public func sync() async throws -> Sync? {
        guard database is DatabasePool else { return nil }
        let level = try await database.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        return Sync.allCases.first { $0.pragma == level }
    }

    /// A private in-memory database, for tests.
    public init(inMemory: Void = ()) throws {
        let database = try DatabaseQueue(configuration: Self.configuration)
        try Self.migrator.migrate(database)
        self.database = database
        self.inserts = Self.writeQueue(database)
    }

    /// Where the store says why it refused a write.
    private static let logger = Logger(label: "parley.sqlite")

    /// Runs `updates` in a write transaction. Another process holding the file's write lock past
    /// the busy timeout, or a disk that takes no more, is `store_unavailable`, as for messages:
    /// the transaction did nothing.
    private func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await database.write(updates)
        } catch let error as DatabaseError {
            throw Self.refusal(for: error) ?? error
        }
    }

    /// The `store_unavailable` refusal for a write that failed without changing anything and may
    /// succeed later, logged for the operator; `nil` for any other failure. Such a write either
    /// waited out the busy timeout for another process's lock, or could not write its file: a
    /// full disk (`SQLITE_FULL`) or a failed write, which is how a file that may not grow (past
    /// `RLIMIT_FSIZE`, say) shows (`SQLITE_IOERR`). SQLite rolls the transaction back either way.
    private static func refusal(for error: DatabaseError) -> ChatError? {
        if error.isLockHeldElsewhere {
            logger.warning(
                "another process kept the database locked for \(Int(busyTimeout)) s; answering store_unavailable",
                metadata: ["error": .string("\(error)")]
            )
            StoreRefusal.locked.count(store: "sqlite")
            return ChatError.storeUnavailable
        }
        if error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR {
            logger.error(
                "could not write to the database file (is its disk full?); nothing was stored, answering store_unavailable",
                metadata: ["error": .string("\(error)")]
            )
            StoreRefusal.cannotWrite.count(store: "sqlite")
            return ChatError.storeCannotWrite
        }
        return nil
    }

    private static func writeQueue(_ database: any DatabaseWriter) -> MessageWriteQueue {
        StoreRefusal.declare(store: "sqlite", [.locked, .cannotWrite])
        return MessageWriteQueue(label: "parley.sqlite.writes", store: "sqlite", writeBlocking: { batch in
            do {
                return try write(batch, to: database)
            } catch let error as DatabaseError {
                // Nothing was written, and trying each message alone would fail (or wait out
                // the lock) once per message.
                guard let refusal = refusal(for: error) else { throw error }
                throw MessageWriteQueue.Unavailable(refusal)
            }
        })
    }

    /// Writes a batch of messages in one transaction.
    private static func write(_ batch: [MessageWriteQueue.Insert], to database: any DatabaseWriter) throws -> [MessageWriteQueue.Inserted] {
        try database.writeWithoutTransaction { db in
            // BEGIN and COMMIT as cached statements: GRDB's `write` prepares both anew for
            // each transaction, which when messages arrive one at a time (a transaction
            // each) was a sixth of the writer's time.
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let statements = try InsertStatements(db)
                let inserted = try batch.map { try insert($0.message, recipients: $0.recipients, with: statements, in: db) }
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return inserted
            } catch {
                try? db.rollback()
                throw error
            }
        }
    }

    /// How long a statement waits for a lock another process holds on the database (an
    /// operator's `sqlite3` shell in a write transaction, say) before it fails. Without it, every
    /// message sent meanwhile failed at once with "database is locked".
    public static let busyTimeout: TimeInterval = 5

    private static var configuration: Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        return configuration
    }

    /// The names of the migrations applied so far, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await database.read { db in try Self.migrator.appliedMigrations(db) }
    }

    /// The names of every migration this version knows, oldest first.
    public static var migrationNames: [String] { migrator.migrations }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Append new migrations at the end; never edit one that has shipped.
        migrator.registerMigration("2026-11-22-accounts-rooms-messages") { db in
            try db.execute(sql: """
                CREATE TABLE account (
                    id TEXT PRIMARY KEY,
                    handle TEXT NOT NULL,
                    handle_key TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE session (
                    token_hash TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE room (
                    name TEXT PRIMARY KEY,
                    owner TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE room_member (
                    room TEXT NOT NULL REFERENCES room(name) ON DELETE CASCADE,
                    user_id TEXT NOT NULL,
                    PRIMARY KEY (room, user_id)
                );
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    conversation TEXT NOT NULL,
                    sender_id TEXT NOT NULL,
                    sender_name TEXT NOT NULL,
                    sender_kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    client_id TEXT,
                    sent_at INTEGER NOT NULL
                );
                CREATE INDEX message_by_conversation ON message(conversation, id);
                CREATE UNIQUE INDEX message_by_client_id ON message(sender_id, client_id) WHERE client_id IS NOT NULL;
                """)
        }
        migrator.registerMigration("2026-11-22-friends-blocks") { db in
            try db.execute(sql: """
                CREATE TABLE friend_request (
                    user_low TEXT NOT NULL,
                    user_high TEXT NOT NULL,
                    from_id TEXT NOT NULL,
                    to_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (user_low, user_high)
                );
                CREATE INDEX friend_request_by_high ON friend_request(user_high);
                CREATE TABLE block (
                    blocker TEXT NOT NULL,
                    blocked TEXT NOT NULL,
                    PRIMARY KEY (blocker, blocked)
                );
                """)
        }
        migrator.registerMigration("2026-11-22-inbox") { db in
            try db.execute(sql: """
                CREATE TABLE inbox (
                    user_id TEXT NOT NULL,
                    message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                    PRIMARY KEY (user_id, message_id)
                ) WITHOUT ROWID;
                CREATE INDEX inbox_by_message ON inbox(message_id);
                CREATE INDEX room_member_by_user ON room_member(user_id);
                """)
        }
        migrator.registerMigration("2026-11-22-retention") { db in
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN retention TEXT NOT NULL DEFAULT 'keep';
                CREATE INDEX message_until_delivered ON message(sent_at) WHERE retention = 'until-delivered';
                CREATE TABLE conversation_policy (
                    conversation TEXT PRIMARY KEY,
                    retention TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("2026-11-22-images") { db in
            try db.execute(sql: """
                CREATE TABLE message_image (
                    message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
                    type TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    bytes BLOB NOT NULL
                );
                """)
        }
        migrator.registerMigration("2026-11-22-devices") { db in
            // `first_published` keeps a device's place in its account's list when its key changes.
            try db.execute(sql: """
                CREATE TABLE device (
                    user_id TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    public_key BLOB NOT NULL,
                    published_at INTEGER NOT NULL,
                    first_published INTEGER NOT NULL,
                    PRIMARY KEY (user_id, device_id)
                );
                """)
        }
        migrator.registerMigration("2026-11-22-e2e") { db in
            // An end-to-end encrypted message's sealed copies (JSON); NULL for the others.
            try db.execute(sql: "ALTER TABLE message ADD COLUMN e2e BLOB")
        }
        migrator.registerMigration("2026-12-01-inbox-device") { db in
            // The devices that have yet to acknowledge an `until-delivered` encrypted message; its
            // `inbox` row stays while any is left.
            try db.execute(sql: """
                CREATE TABLE inbox_device (
                    user_id TEXT NOT NULL,
                    message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                    device_id TEXT NOT NULL,
                    PRIMARY KEY (user_id, message_id, device_id)
                ) WITHOUT ROWID;
                CREATE INDEX inbox_device_by_message ON inbox_device(message_id);
                """)
        }
        return migrator
    }

    // MARK: Images

    public func image(ofMessage id: Int64) async throws -> MessageImage? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT type, size, bytes FROM message_image WHERE message_id = ?", arguments: [id]).map { row in
                MessageImage(type: row["type"], size: row["size"], data: row["bytes"])
            }
        }
    }

    // MARK: Retention

    public func retention(of conversation: ConversationKey) async throws -> RetentionPolicy? {
        try await database.read { db in
            try String.fetchOne(db, sql: "SELECT retention FROM conversation_policy WHERE conversation = ?", arguments: [conversation.rawValue])
                .flatMap(RetentionPolicy.init(rawValue:))
        }
    }

    public func setRetention(_ policy: RetentionPolicy, for conversation: ConversationKey) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO conversation_policy (conversation, retention) VALUES (?, ?) ON CONFLICT(conversation) DO UPDATE SET retention = excluded.retention",
                arguments: [conversation.rawValue, policy.rawValue]
            )
        }
    }

    public func deleteUndelivered(sentBefore time: Timestamp) async throws -> Int {
        let deleted = try await write { db in
            try db.execute(sql: "DELETE FROM message WHERE retention = 'until-delivered' AND sent_at < ?", arguments: [time])
            return db.changesCount
        }
        if deleted > 0 { try await scrubJournal() }
        return deleted
    }

    public func deleteMessages(in conversation: ConversationKey) async throws -> Int {
        let deleted = try await write { db in
            try db.execute(sql: "DELETE FROM message WHERE conversation = ?", arguments: [conversation.rawValue])
            return db.changesCount
        }
        if deleted > 0 { try await scrubJournal() }
        return deleted
    }

    /// Deleted rows are overwritten in the database file (`secure_delete`), but the write-ahead
    /// log still holds the pages as they were. A truncating checkpoint copies the scrubbed pages
    /// into the database file and empties the log, so that no copy of deleted content remains.
    private func scrubJournal() async throws {
        try await database.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    // MARK: Friends and blocks

    private static func pair(_ a: UserID, _ b: UserID) -> (String, String) {
        a < b ? (a.rawValue, b.rawValue) : (b.rawValue, a.rawValue)
    }

    public func friendRequest(between a: UserID, and b: UserID) async throws -> FriendRequest? {
        let (low, high) = Self.pair(a, b)
        return try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM friend_request WHERE user_low = ? AND user_high = ?", arguments: [low, high])
                .map(Self.friendRequest)
        }
    }

    public func saveFriendRequest(_ request: FriendRequest) async throws {
        let (low, high) = Self.pair(request.from, request.to)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO friend_request (user_low, user_high, from_id, to_id, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(user_low, user_high) DO UPDATE SET
                        from_id = excluded.from_id, to_id = excluded.to_id, status = excluded.status, updated_at = excluded.updated_at
                    """,
                arguments: [low, high, request.from.rawValue, request.to.rawValue, request.status.rawValue, request.updatedAt]
            )
        }
    }

    public func deleteFriendRequest(between a: UserID, and b: UserID) async throws {
        let (low, high) = Self.pair(a, b)
        try await write { db in
            try db.execute(sql: "DELETE FROM friend_request WHERE user_low = ? AND user_high = ?", arguments: [low, high])
        }
    }

    public func friendRequests(of user: UserID) async throws -> [FriendRequest] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM friend_request WHERE user_low = ? OR user_high = ? ORDER BY updated_at, from_id, to_id",
                arguments: [user.rawValue, user.rawValue]
            ).map(Self.friendRequest)
        }
    }

    private static func friendRequest(_ row: Row) -> FriendRequest {
        FriendRequest(
            from: UserID(rawValue: row["from_id"]), to: UserID(rawValue: row["to_id"]),
            status: FriendStatus(rawValue: row["status"]) ?? .rejected, updatedAt: row["updated_at"]
        )
    }

    public func block(_ blocked: UserID, by blocker: UserID) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO block (blocker, blocked) VALUES (?, ?)", arguments: [blocker.rawValue, blocked.rawValue])
        }
    }

    public func unblock(_ blocked: UserID, by blocker: UserID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM block WHERE blocker = ? AND blocked = ?", arguments: [blocker.rawValue, blocked.rawValue])
        }
    }

    public func isBlocked(_ blocked: UserID, by blocker: UserID) async throws -> Bool {
        try await database.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM block WHERE blocker = ? AND blocked = ?", arguments: [blocker.rawValue, blocked.rawValue]) ?? false
        }
    }

    public func putDevice(_ device: DeviceKey) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO device (user_id, device_id, public_key, published_at, first_published) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (user_id, device_id) DO UPDATE SET public_key = excluded.public_key, published_at = excluded.published_at
                """, arguments: [device.user.rawValue, device.deviceID, device.publicKey, device.publishedAt, device.publishedAt])
        }
    }

    public func devices(of user: UserID) async throws -> [DeviceKey] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT device_id, public_key, published_at FROM device WHERE user_id = ? ORDER BY first_published, rowid
                """, arguments: [user.rawValue]).map { row in
                DeviceKey(user: user, deviceID: row[0], publicKey: row[1], publishedAt: row[2])
            }
        }
    }

    public func blocked(by blocker: UserID) async throws -> [UserID] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT blocked FROM block WHERE blocker = ? ORDER BY blocked", arguments: [blocker.rawValue]).map(UserID.init)
        }
    }

    // MARK: Accounts and sessions

    public func createAccount(_ account: Account) async throws {
        try await write { db in
            let taken = try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE handle_key = ?", arguments: [account.handleKey]) ?? false
            guard !taken else { throw ChatError(.handleTaken, "That handle is taken.") }
            try db.execute(
                sql: "INSERT INTO account (id, handle, handle_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [account.id.rawValue, account.handle, account.handleKey, account.passwordHash, account.createdAt]
            )
        }
    }

    public func account(handleKey: String) async throws -> Account? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM account WHERE handle_key = ?", arguments: [handleKey]).map(Self.account)
        }
    }

    public func account(id: UserID) async throws -> Account? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM account WHERE id = ?", arguments: [id.rawValue]).map(Self.account)
        }
    }

    private static func account(_ row: Row) -> Account {
        Account(
            id: UserID(rawValue: row["id"]), handle: row["handle"], handleKey: row["handle_key"],
            passwordHash: row["password_hash"], createdAt: row["created_at"]
        )
    }

    public func createSession(tokenHash: String, user: UserID, createdAt: Timestamp) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO session (token_hash, user_id, created_at) VALUES (?, ?, ?)",
                arguments: [tokenHash, user.rawValue, createdAt]
            )
        }
    }

    public func sessionUser(tokenHash: String) async throws -> UserID? {
        try await database.read { db in
            try String.fetchOne(db, sql: "SELECT user_id FROM session WHERE token_hash = ?", arguments: [tokenHash]).map(UserID.init)
        }
    }

    public func deleteSession(tokenHash: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM session WHERE token_hash = ?", arguments: [tokenHash])
        }
    }

    // MARK: Rooms

    public func room(named name: String) async throws -> Room? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM room WHERE name = ?", arguments: [name]).map(Self.room)
        }
    }

    public func createRoom(_ room: Room) async throws -> Room {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO room (name, owner, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
                arguments: [room.name, room.owner.rawValue, room.createdAt]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM room WHERE name = ?", arguments: [room.name]).map(Self.room) ?? room
        }
    }

    private static func room(_ row: Row) -> Room {
        Room(name: row["name"], owner: UserID(rawValue: row["owner"]), createdAt: row["created_at"])
    }

    public func addMember(room: String, user: UserID) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO room_member (room, user_id) VALUES (?, ?)", arguments: [room, user.rawValue])
        }
    }

    public func removeMember(room: String, user: UserID) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM room_member WHERE room = ? AND user_id = ?", arguments: [room, user.rawValue])
        }
    }

    public func isMember(room: String, user: UserID) async throws -> Bool {
        try await database.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM room_member WHERE room = ? AND user_id = ?", arguments: [room, user.rawValue]) ?? false
        }
    }

    // MARK: Messages

    public func members(of room: String) async throws -> [UserID] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT user_id FROM room_member WHERE room = ? ORDER BY user_id", arguments: [room]).map(UserID.init)
        }
    }

    public func rooms(of user: UserID) async throws -> [String] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT room FROM room_member WHERE user_id = ? ORDER BY room", arguments: [user.rawValue])
        }
    }

    public func message(id: Int64) async throws -> StoredMessage? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "\(Self.messageSelect) WHERE message.id = ?", arguments: [id]).map(Self.message)
        }
    }

    public func pendingMessages(for user: UserID, after: Int64?, limit: Int) async throws -> [StoredMessage] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    \(Self.messageSelect) JOIN inbox ON message.id = inbox.message_id
                    WHERE inbox.user_id = ? AND inbox.message_id > ? ORDER BY inbox.message_id LIMIT ?
                    """,
                arguments: [user.rawValue, after ?? 0, limit]
            ).map(Self.message)
        }
    }

    public func markDelivered(_ ids: [Int64], for user: UserID, device: String?) async throws -> [StoredMessage] {
        let (delivered, deleted) = try await write { db in
            var delivered: [StoredMessage] = []
            var deleted = 0
            for id in ids {
                var tookDevice = false
                if let device {
                    try db.execute(
                        sql: "DELETE FROM inbox_device WHERE user_id = ? AND message_id = ? AND device_id = ?",
                        arguments: [user.rawValue, id, device]
                    )
                    tookDevice = db.changesCount > 0
                }
                // The account's inbox row goes once no device is left to acknowledge.
                let waiting = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM inbox_device WHERE user_id = ? AND message_id = ?)", arguments: [user.rawValue, id]
                ) ?? false
                var tookInbox = false
                if !waiting {
                    try db.execute(sql: "DELETE FROM inbox WHERE user_id = ? AND message_id = ?", arguments: [user.rawValue, id])
                    tookInbox = db.changesCount > 0
                }
                guard tookInbox || tookDevice,
                      let row = try Row.fetchOne(db, sql: "\(Self.messageSelect) WHERE message.id = ?", arguments: [id])
                else { continue }
                let message = Self.message(row)
                delivered.append(message)
                if tookInbox, message.retention == .untilDelivered {
                    try db.execute(
                        sql: "DELETE FROM message WHERE id = ? AND NOT EXISTS (SELECT 1 FROM inbox WHERE message_id = ?)",
                        arguments: [id, id]
                    )
                    deleted += db.changesCount
                }
            }
            return (delivered, deleted)
        }
        if deleted > 0 { try await scrubJournal() }
        return delivered
    }

    /// Stores a message and its recipients' inbox rows, committed with the inserts that arrive
    /// meanwhile (see ``MessageWriteQueue``); returns once it is committed.
    public func insertMessage(_ message: NewMessage, recipients: [UserID]) async throws -> (message: StoredMessage, inserted: Bool) {
        try await inserts.insert(message, recipients: recipients)
    }

    /// Queues the insert and returns at once, unless 4,096 inserts are already waiting (see
    /// ``MessageWriteQueue/submit(_:recipients:completion:)``).
    public func submitMessage(_ message: NewMessage, recipients: [UserID], completion: @escaping MessageCompletion) async {
        await inserts.submit(message, recipients: recipients, completion: completion)
    }

    /// Returns 0 once the messages submitted so far are committed (or have failed) and completed,
    /// or how many were not yet when `limit` passed (see ``MessageWriteQueue/finish(within:)``).
    public func finishWrites(within limit: Duration?) async -> Int {
        await inserts.finish(within: limit)
    }

    /// The statements of a message insert, looked up once per batch: under load, parsing SQL,
    /// and then finding it in the connection's cache by its text, was a large part of the
    /// writer's time.
    private struct InsertStatements {
        let byClientID: Statement
        let message: Statement
        let inbox: Statement
        let inboxDevice: Statement

        init(_ db: Database) throws {
            byClientID = try db.cachedStatement(sql: "\(SQLiteChatStore.messageSelect) WHERE sender_id = ? AND client_id = ?")
            message = try db.cachedStatement(sql: """
                INSERT INTO message (conversation, sender_id, sender_name, sender_kind, body, client_id, sent_at, retention, e2e)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            inbox = try db.cachedStatement(sql: "INSERT OR IGNORE INTO inbox (user_id, message_id) VALUES (?, ?)")
            inboxDevice = try db.cachedStatement(sql: "INSERT OR IGNORE INTO inbox_device (user_id, message_id, device_id) VALUES (?, ?, ?)")
        }
    }

    private static func insert(
        _ message: NewMessage, recipients: [UserID], with statements: InsertStatements, in db: Database
    ) throws -> (message: StoredMessage, inserted: Bool) {
        if let clientID = message.clientID,
           let row = try Row.fetchOne(statements.byClientID, arguments: [message.sender.id.rawValue, clientID]) {
            return (Self.message(row), false)
        }
        try DirectInsert.run(statements.message, in: db) { row in
            row.text(message.conversation.rawValue)
            row.text(message.sender.id.rawValue)
            row.text(message.sender.name)
            row.text(message.sender.kind.rawValue)
            row.text(message.text)
            row.text(message.clientID)
            row.integer(message.sentAt)
            row.text(message.retention.rawValue)
            row.blob(message.encrypted?.stored)
        }
        let stored = StoredMessage(id: db.lastInsertedRowID, message)
        if let image = message.image, let data = image.data {
            try db.execute(
                sql: "INSERT INTO message_image (message_id, type, size, bytes) VALUES (?, ?, ?, ?)",
                arguments: [stored.id, image.type, image.size, data]
            )
        }
        for recipient in recipients {
            try DirectInsert.run(statements.inbox, in: db) { row in
                row.text(recipient.rawValue)
                row.integer(stored.id)
            }
            for device in message.inboxDevices {
                try DirectInsert.run(statements.inboxDevice, in: db) { row in
                    row.text(recipient.rawValue)
                    row.integer(stored.id)
                    row.text(device)
                }
            }
        }
        return (stored, true)
    }

    public func messages(in conversation: ConversationKey, before: Int64?, limit: Int) async throws -> [StoredMessage] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "\(Self.messageSelect) WHERE conversation = ? AND message.id < ? ORDER BY message.id DESC LIMIT ?",
                arguments: [conversation.rawValue, before ?? Int64.max, limit]
            )
            return rows.reversed().map(Self.message)
        }
    }

    /// Messages with their image's type and size (never its bytes).
    private static let messageSelect = """
        SELECT message.*, message_image.type AS image_type, message_image.size AS image_size
        FROM message LEFT JOIN message_image ON message_image.message_id = message.id
        """

    private static func message(_ row: Row) -> StoredMessage {
        StoredMessage(
            id: row["id"],
            conversation: ConversationKey(rawValue: row["conversation"]),
            sender: Identity(
                id: UserID(rawValue: row["sender_id"]), name: row["sender_name"],
                kind: Identity.Kind(rawValue: row["sender_kind"]) ?? .guest
            ),
            text: row["body"],
            clientID: row["client_id"],
            sentAt: row["sent_at"],
            retention: RetentionPolicy(rawValue: row["retention"]) ?? .keep,
            image: (row["image_type"] as String?).map { MessageImage(type: $0, size: row["image_size"], data: nil) },
            encrypted: EncryptedBody(stored: row["e2e"])
        )
    }
}

extension DatabaseError {
    /// Another connection held the lock this statement needed past the busy timeout.
    var isLockHeldElsewhere: Bool { resultCode == .SQLITE_BUSY || resultCode == .SQLITE_LOCKED }
}
