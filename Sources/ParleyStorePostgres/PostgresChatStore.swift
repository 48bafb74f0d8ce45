import Foundation
import Logging
import ParleyCore
import PostgresNIO

/// The ``ChatStore`` on PostgreSQL (postgres-nio): the store of several Parley nodes sharing one
/// database. Parameterised queries only, a pool of connections, and append-only named
/// migrations run on start (under an advisory lock, so that nodes starting together take turns).
///
/// Unlike the SQLite store, PostgreSQL keeps deleted rows in its data files until vacuum reclaims
/// them (autovacuum does so in the background); see docs/DEPLOYMENT.md.
public final class PostgresChatStore: ChatStore {
    private let client: PostgresClient
    /// The client, with each operation's wait for a connection bounded by ``connectionWait``.
    private let pool: BoundedPool
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let inserts: MessageWriteQueue

    /// How long an operation waits for a pooled connection before it fails with
    /// `store_unavailable` (the database is down, or every connection is busy), like the SQLite
    /// store's busy timeout.
    public static let connectionWait: Duration = .seconds(5)

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, with
    /// `?sslmode=disable|prefer|require`; `prefer` when not given), and migrates it.
    public convenience init(url: String, maxConnections: Int = 20, logger: Logger = Logger(label: "parley.postgres")) async throws {
        try await self.init(configuration: Self.configuration(url: url, maxConnections: maxConnections), logger: logger)
    }

    /// Connects with a postgres-nio configuration, and migrates the database. Throws if that
    /// has not succeeded within `startTimeout`. Afterwards, an operation that has no connection
    /// within `connectionWait` fails with `store_unavailable`.
    public init(
        configuration: PostgresClient.Configuration, startTimeout: Duration = .seconds(15), connectionWait: Duration = connectionWait,
        logger: Logger = Logger(label: "parley.postgres")
    ) async throws {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let pool = BoundedPool(client: client, wait: connectionWait, logger: logger)
        StoreRefusal.declare(store: "postgres", [.noConnection, .cannotWrite])
        self.client = client
        self.pool = pool
        self.logger = logger
        self.runner = Task { await client.run() }
        self.inserts = MessageWriteQueue(label: "parley.postgres.completions", store: "postgres") { [logger] batch in
            do {
                return try await pool.transaction { connection in try await Self.insert(batch, on: connection, logger: logger) }
            } catch let error as ChatError where error.code == .storeUnavailable {
                // Without a connection for the batch, or room for it, each message alone would
                // wait as long again, or fail the same way.
                throw MessageWriteQueue.Unavailable(error)
            }
        }
        let target = "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"
        do {
            // The pool retries a refused connection forever; a server that cannot start says so.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.migrate() }
                group.addTask {
                    try await Task.sleep(for: startTimeout)
                    throw ChatError(.internalError, "Could not reach PostgreSQL at \(target) within \(startTimeout) (the log says why).")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            runner.cancel()
            throw error
        }
    }

    deinit { runner.cancel() }

    /// Closes the pool's connections. The store cannot be used afterwards.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// A client configuration from a `postgres://` URL.
    public static func configuration(url: String, maxConnections: Int = 20) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else { throw ChatError(.invalidArgument, "A PostgreSQL URL looks like postgres://user:password@host:5432/database.") }
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw ChatError(.invalidArgument, "sslmode is disable, prefer or require, not \(mode).")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres",
            password: components.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
            database: components.path.count > 1 ? String(components.path.dropFirst()).removingPercentEncoding : nil,
            tls: tls
        )
        configuration.options.maximumConnections = max(1, maxConnections)
        // What pg_stat_activity shows for the store's connections.
        configuration.options.additionalStartupParameters = [("application_name", "parley")]
        return configuration
    }

    // MARK: Migrations

    /// Every migration, in order: a name and its SQL. Append new ones at the end; never edit
    /// one that has shipped.
    static let migrations: [(name: String, sql: [String])] = [
        ("2026-11-22-schema", [
            """
            CREATE TABLE account (
                id TEXT PRIMARY KEY,
                handle TEXT NOT NULL,
                handle_key TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE session (
                token_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE TABLE room (name TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at BIGINT NOT NULL)",
            """
            CREATE TABLE room_member (
                room TEXT NOT NULL REFERENCES room(name) ON DELETE CASCADE,
                user_id TEXT NOT NULL,
                PRIMARY KEY (room, user_id)
            )
            """,
            "CREATE INDEX room_member_by_user ON room_member(user_id)",
            """
            CREATE TABLE message (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                conversation TEXT NOT NULL,
                sender_id TEXT NOT NULL,
                sender_name TEXT NOT NULL,
                sender_kind TEXT NOT NULL,
                body TEXT NOT NULL,
                client_id TEXT,
                sent_at BIGINT NOT NULL,
                retention TEXT NOT NULL DEFAULT 'keep'
            )
            """,
            "CREATE INDEX message_by_conversation ON message(conversation, id)",
            "CREATE UNIQUE INDEX message_by_client_id ON message(sender_id, client_id) WHERE client_id IS NOT NULL",
            "CREATE INDEX message_until_delivered ON message(sent_at) WHERE retention = 'until-delivered'",
            """
            CREATE TABLE message_image (
                message_id BIGINT PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                size INTEGER NOT NULL,
                bytes BYTEA NOT NULL
            )
            """,
            """
            CREATE TABLE inbox (
                user_id TEXT NOT NULL,
                message_id BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                PRIMARY KEY (user_id, message_id)
            )
            """,
            "CREATE INDEX inbox_by_message ON inbox(message_id)",
            "CREATE TABLE conversation_policy (conversation TEXT PRIMARY KEY, retention TEXT NOT NULL)",
            """
            CREATE TABLE friend_request (
                user_low TEXT NOT NULL,
                user_high TEXT NOT NULL,
                from_id TEXT NOT NULL,
                to_id TEXT NOT NULL,
                status TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (user_low, user_high)
            )
            """,
            "CREATE INDEX friend_request_by_high ON friend_request(user_high)",
            "CREATE TABLE block (blocker TEXT NOT NULL, blocked TEXT NOT NULL, PRIMARY KEY (blocker, blocked))",
        ]),
        ("2026-11-22-devices", [
            """
            CREATE TABLE device (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                public_key BYTEA NOT NULL,
                published_at BIGINT NOT NULL,
                position BIGINT GENERATED ALWAYS AS IDENTITY,
                PRIMARY KEY (user_id, device_id)
            )
            """,
        ]),
        ("2026-11-22-e2e", [
            // An end-to-end encrypted message's sealed copies (JSON); NULL for the others.
            "ALTER TABLE message ADD COLUMN e2e BYTEA",
        ]),
        ("2026-12-01-inbox-device", [
            // The devices that have yet to acknowledge an `until-delivered` encrypted message; its
            // `inbox` row stays while any is left.
            """
            CREATE TABLE inbox_device (
                user_id TEXT NOT NULL,
                message_id BIGINT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                device_id TEXT NOT NULL,
                PRIMARY KEY (user_id, message_id, device_id)
            )
            """,
            "CREATE INDEX inbox_device_by_message ON inbox_device(message_id)",
        ]),
    ]

    /// The names of every migration this version knows, oldest first.
    public static var migrationNames: [String] { migrations.map(\.name) }

    /// A key for `pg_advisory_xact_lock`, so that nodes starting together migrate one at a time.
    private static let migrationLock: Int64 = 0x7061_726c_6579

    private func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS parley_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger
            )
            var applied = Set<String>()
            for try await name in try await connection.query("SELECT name FROM parley_migration", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                for statement in migration.sql {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                // clock_timestamp(), not now(): migrations applied in one transaction keep their order.
                try await connection.query(
                    "INSERT INTO parley_migration (name, applied_at) VALUES (\(migration.name), clock_timestamp())", logger: logger
                )
                logger.info("applied migration", metadata: ["name": .string(migration.name)])
            }
        }
    }

    /// The names of the migrations applied so far, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await all("SELECT name FROM parley_migration ORDER BY applied_at, name", as: String.self)
    }

    // MARK: Query helpers

    /// Runs a statement, discarding rows.
    private func run(_ query: PostgresQuery) async throws {
        _ = try await pool.query(query)
    }

    /// Every row of a one-column query.
    private func all<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type) async throws -> [T] {
        try await pool.query(query).map { try $0.decode(T.self) }
    }

    /// Whether a query returns any row.
    private func exists(_ query: PostgresQuery) async throws -> Bool {
        try await !pool.query(query).isEmpty
    }

    /// The number of rows a query returns.
    private func count(_ query: PostgresQuery) async throws -> Int {
        try await pool.query(query).count
    }

    // MARK: Accounts and sessions

    public func createAccount(_ account: Account) async throws {
        let inserted = try await count("""
            INSERT INTO account (id, handle, handle_key, password_hash, created_at)
            VALUES (\(account.id.rawValue), \(account.handle), \(account.handleKey), \(account.passwordHash), \(account.createdAt))
            ON CONFLICT (handle_key) DO NOTHING RETURNING id
            """)
        guard inserted == 1 else { throw ChatError(.handleTaken, "That handle is taken.") }
    }

    public func account(handleKey: String) async throws -> Account? {
        try await accounts("SELECT id, handle, handle_key, password_hash, created_at FROM account WHERE handle_key = \(handleKey)").first
    }

    public func account(id: UserID) async throws -> Account? {
        try await accounts("SELECT id, handle, handle_key, password_hash, created_at FROM account WHERE id = \(id.rawValue)").first
    }

    private func accounts(_ query: PostgresQuery) async throws -> [Account] {
        try await pool.query(query).map { row in
            let (id, handle, key, hash, created) = try row.decode((String, String, String, String, Int64).self)
            return Account(id: UserID(rawValue: id), handle: handle, handleKey: key, passwordHash: hash, createdAt: created)
        }
    }

    public func createSession(tokenHash: String, user: UserID, createdAt: Timestamp) async throws {
        try await run("INSERT INTO session (token_hash, user_id, created_at) VALUES (\(tokenHash), \(user.rawValue), \(createdAt))")
    }

    public func sessionUser(tokenHash: String) async throws -> UserID? {
        try await all("SELECT user_id FROM session WHERE token_hash = \(tokenHash)", as: String.self).first.map(UserID.init)
    }

    public func deleteSession(tokenHash: String) async throws {
        try await run("DELETE FROM session WHERE token_hash = \(tokenHash)")
    }

    // MARK: Rooms

    public func room(named name: String) async throws -> Room? {
        try await pool.query("SELECT name, owner, created_at FROM room WHERE name = \(name)").first.map { row in
            let (name, owner, created) = try row.decode((String, String, Int64).self)
            return Room(name: name, owner: UserID(rawValue: owner), createdAt: created)
        }
    }

    public func createRoom(_ room: Room) async throws -> Room {
        try await run("""
            INSERT INTO room (name, owner, created_at) VALUES (\(room.name), \(room.owner.rawValue), \(room.createdAt))
            ON CONFLICT (name) DO NOTHING
            """)
        return try await self.room(named: room.name) ?? room
    }

    public func addMember(room: String, user: UserID) async throws {
        try await run("INSERT INTO room_member (room, user_id) VALUES (\(room), \(user.rawValue)) ON CONFLICT DO NOTHING")
    }

    public func removeMember(room: String, user: UserID) async throws {
        try await run("DELETE FROM room_member WHERE room = \(room) AND user_id = \(user.rawValue)")
    }

    public func isMember(room: String, user: UserID) async throws -> Bool {
        try await exists("SELECT 1 FROM room_member WHERE room = \(room) AND user_id = \(user.rawValue)")
    }

    public func members(of room: String) async throws -> [UserID] {
        try await all("SELECT user_id FROM room_member WHERE room = \(room) ORDER BY user_id COLLATE \"C\"", as: String.self)
            .map(UserID.init)
    }

    public func rooms(of user: UserID) async throws -> [String] {
        try await all("SELECT room FROM room_member WHERE user_id = \(user.rawValue) ORDER BY room COLLATE \"C\"", as: String.self)
    }

    // MARK: Friends and blocks

    private static func pair(_ a: UserID, _ b: UserID) -> (String, String) {
        a < b ? (a.rawValue, b.rawValue) : (b.rawValue, a.rawValue)
    }

    public func friendRequest(between a: UserID, and b: UserID) async throws -> FriendRequest? {
        let (low, high) = Self.pair(a, b)
        return try await friendRequests("""
            SELECT from_id, to_id, status, updated_at FROM friend_request WHERE user_low = \(low) AND user_high = \(high)
            """).first
    }

    public func saveFriendRequest(_ request: FriendRequest) async throws {
        let (low, high) = Self.pair(request.from, request.to)
        try await run("""
            INSERT INTO friend_request (user_low, user_high, from_id, to_id, status, updated_at)
            VALUES (\(low), \(high), \(request.from.rawValue), \(request.to.rawValue), \(request.status.rawValue), \(request.updatedAt))
            ON CONFLICT (user_low, user_high) DO UPDATE SET
                from_id = excluded.from_id, to_id = excluded.to_id, status = excluded.status, updated_at = excluded.updated_at
            """)
    }

    public func deleteFriendRequest(between a: UserID, and b: UserID) async throws {
        let (low, high) = Self.pair(a, b)
        try await run("DELETE FROM friend_request WHERE user_low = \(low) AND user_high = \(high)")
    }

    public func friendRequests(of user: UserID) async throws -> [FriendRequest] {
        try await friendRequests("""
            SELECT from_id, to_id, status, updated_at FROM friend_request WHERE user_low = \(user.rawValue) OR user_high = \(user.rawValue)
            ORDER BY updated_at, from_id COLLATE "C", to_id COLLATE "C"
            """)
    }

    private func friendRequests(_ query: PostgresQuery) async throws -> [FriendRequest] {
        try await pool.query(query).map { row in
            let (from, to, status, updated) = try row.decode((String, String, String, Int64).self)
            return FriendRequest(
                from: UserID(rawValue: from), to: UserID(rawValue: to), status: FriendStatus(rawValue: status) ?? .rejected, updatedAt: updated
            )
        }
    }

    public func block(_ blocked: UserID, by blocker: UserID) async throws {
        try await run("INSERT INTO block (blocker, blocked) VALUES (\(blocker.rawValue), \(blocked.rawValue)) ON CONFLICT DO NOTHING")
    }

    public func unblock(_ blocked: UserID, by blocker: UserID) async throws {
        try await run("DELETE FROM block WHERE blocker = \(blocker.rawValue) AND blocked = \(blocked.rawValue)")
    }

    public func isBlocked(_ blocked: UserID, by blocker: UserID) async throws -> Bool {
        try await exists("SELECT 1 FROM block WHERE blocker = \(blocker.rawValue) AND blocked = \(blocked.rawValue)")
    }

    public func putDevice(_ device: DeviceKey) async throws {
        _ = try await pool.query("""
            INSERT INTO device (user_id, device_id, public_key, published_at)
            VALUES (\(device.user.rawValue), \(device.deviceID), \(device.publicKey), \(device.publishedAt))
            ON CONFLICT (user_id, device_id) DO UPDATE SET public_key = excluded.public_key, published_at = excluded.published_at
            """)
    }

    public func devices(of user: UserID) async throws -> [DeviceKey] {
        try await pool.query("""
            SELECT device_id, public_key, published_at FROM device WHERE user_id = \(user.rawValue) ORDER BY position
            """).map { row in
            let (id, key, published) = try row.decode((String, Data, Int64).self)
            return DeviceKey(user: user, deviceID: id, publicKey: key, publishedAt: published)
        }
    }

    public func blocked(by blocker: UserID) async throws -> [UserID] {
        try await all("SELECT blocked FROM block WHERE blocker = \(blocker.rawValue) ORDER BY blocked COLLATE \"C\"", as: String.self)
            .map(UserID.init)
    }

    // MARK: Messages

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

    /// Inserts a batch in the caller's transaction with a handful of statements, whatever its
    /// size: ids are taken from the sequence first, then every message goes in one `INSERT`, and
    /// the inbox rows in one more per kind of conversation. A message whose client id is taken
    /// (by an earlier message, or by one before it in this batch) finds that one instead; a
    /// second insert under the same client id from another node at the same moment waits on the
    /// unique index for the first transaction, then does nothing.
    private static func insert(
        _ batch: [MessageWriteQueue.Insert], on connection: PostgresConnection, logger: Logger
    ) async throws -> [MessageWriteQueue.Inserted] {
        let ids = try await connection.query(
            "SELECT nextval(pg_get_serial_sequence('message', 'id')) FROM generate_series(1, \(batch.count))", logger: logger
        ).collect().map { try $0.decode(Int64.self) }.sorted()
        let messages = batch.map(\.message)
        // A client id is 1 to 64 characters, so an empty one stands for none.
        let inserted = try await connection.query("""
            INSERT INTO message (id, conversation, sender_id, sender_name, sender_kind, body, client_id, sent_at, retention, e2e)
            OVERRIDING SYSTEM VALUE
            SELECT id, conversation, sender_id, sender_name, sender_kind, body, NULLIF(client_id, ''), sent_at, retention,
                   convert_to(NULLIF(e2e, ''), 'UTF8')
            FROM unnest(\(ids)::bigint[], \(messages.map(\.conversation.rawValue))::text[], \(messages.map(\.sender.id.rawValue))::text[],
                        \(messages.map(\.sender.name))::text[], \(messages.map(\.sender.kind.rawValue))::text[],
                        \(messages.map(\.text))::text[], \(messages.map { $0.clientID ?? "" })::text[],
                        \(messages.map(\.sentAt))::bigint[], \(messages.map(\.retention.rawValue))::text[],
                        \(messages.map { $0.encrypted.map { String(decoding: $0.stored, as: UTF8.self) } ?? "" })::text[])
                AS t(id, conversation, sender_id, sender_name, sender_kind, body, client_id, sent_at, retention, e2e)
            ORDER BY id
            ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
            RETURNING id
            """, logger: logger).collect().map { try $0.decode(Int64.self) }
        let stored = Set(inserted)
        var results: [MessageWriteQueue.Inserted] = []
        var roomMessages: (ids: [Int64], rooms: [String], senders: [String]) = ([], [], [])
        var directRows: (users: [String], ids: [Int64]) = ([], [])
        var deviceRows: (users: [String], ids: [Int64], devices: [String]) = ([], [], [])
        for (insert, id) in zip(batch, ids) {
            let message = insert.message
            guard stored.contains(id) else {
                let existing = try await connection.query(
                    "\(unescaped: messageSelect) WHERE m.sender_id = \(message.sender.id.rawValue) AND m.client_id = \(message.clientID)",
                    logger: logger
                ).collect()
                guard let first = existing.first else { throw ChatError(.internalError, "A message with this client id vanished.") }
                results.append((try Self.message(first), false))
                continue
            }
            if let image = message.image, let data = image.data {
                try await connection.query("""
                    INSERT INTO message_image (message_id, type, size, bytes) VALUES (\(id), \(image.type), \(image.size), \(data))
                    """, logger: logger)
            }
            if let room = message.conversation.roomName {
                roomMessages.ids.append(id)
                roomMessages.rooms.append(room)
                roomMessages.senders.append(message.sender.id.rawValue)
            } else {
                for recipient in insert.recipients {
                    directRows.users.append(recipient.rawValue)
                    directRows.ids.append(id)
                    for device in message.inboxDevices {
                        deviceRows.users.append(recipient.rawValue)
                        deviceRows.ids.append(id)
                        deviceRows.devices.append(device)
                    }
                }
            }
            results.append((StoredMessage(id: id, message), true))
        }
        if !roomMessages.ids.isEmpty {
            // As for one message: a room's recipients are its member accounts as of this commit.
            try await connection.query("""
                INSERT INTO inbox (user_id, message_id)
                SELECT room_member.user_id, t.id FROM unnest(\(roomMessages.ids)::bigint[], \(roomMessages.rooms)::text[], \(roomMessages.senders)::text[])
                    AS t(id, room, sender) JOIN room_member ON room_member.room = t.room AND room_member.user_id <> t.sender
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        if !directRows.ids.isEmpty {
            try await connection.query("""
                INSERT INTO inbox (user_id, message_id) SELECT * FROM unnest(\(directRows.users)::text[], \(directRows.ids)::bigint[])
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        if !deviceRows.ids.isEmpty {
            try await connection.query("""
                INSERT INTO inbox_device (user_id, message_id, device_id)
                SELECT * FROM unnest(\(deviceRows.users)::text[], \(deviceRows.ids)::bigint[], \(deviceRows.devices)::text[])
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
        return results
    }

    public func message(id: Int64) async throws -> StoredMessage? {
        try await messages("\(unescaped: Self.messageSelect) WHERE m.id = \(id)").first
    }

    public func image(ofMessage id: Int64) async throws -> MessageImage? {
        try await pool.query("SELECT type, size, bytes FROM message_image WHERE message_id = \(id)").first
            .map { row in
                let (type, size, bytes) = try row.decode((String, Int, Data).self)
                return MessageImage(type: type, size: size, data: bytes)
            }
    }

    public func pendingMessages(for user: UserID, after: Int64?, limit: Int) async throws -> [StoredMessage] {
        try await messages("""
            \(unescaped: Self.messageSelect) JOIN inbox ON m.id = inbox.message_id
            WHERE inbox.user_id = \(user.rawValue) AND inbox.message_id > \(after ?? 0) ORDER BY inbox.message_id LIMIT \(limit)
            """)
    }

    /// Takes the messages out of the account's inbox and deletes the `until-delivered` ones that
    /// are then in nobody's. The messages' rows are locked first, in id order: two recipients
    /// acknowledging the same message on two nodes take turns, and the second sees the first's
    /// inbox row gone, so the message is deleted by whichever comes last.
    public func markDelivered(_ ids: [Int64], for user: UserID, device: String?) async throws -> [StoredMessage] {
        guard !ids.isEmpty else { return [] }
        return try await pool.transaction { [logger] connection in
            try await connection.query("SELECT id FROM message WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE", logger: logger)
            func idSet(_ query: PostgresQuery) async throws -> Set<Int64> {
                Set(try await connection.query(query, logger: logger).collect().map { try $0.decode(Int64.self) })
            }
            var tookDevice = Set<Int64>()
            if let device {
                tookDevice = try await idSet("""
                    DELETE FROM inbox_device WHERE user_id = \(user.rawValue) AND device_id = \(device) AND message_id = ANY(\(ids))
                    RETURNING message_id
                    """)
            }
            let waiting = try await idSet(
                "SELECT DISTINCT message_id FROM inbox_device WHERE user_id = \(user.rawValue) AND message_id = ANY(\(ids))"
            )
            let free = Array(Set(ids).subtracting(waiting))
            var taken = free.isEmpty ? [] : try await idSet(
                "DELETE FROM inbox WHERE user_id = \(user.rawValue) AND message_id = ANY(\(free)) RETURNING message_id"
            )
            taken.formUnion(tookDevice)
            guard !taken.isEmpty else { return [] }
            let found = try await connection.query(
                "\(unescaped: Self.messageSelect) WHERE m.id = ANY(\(Array(taken)))", logger: logger
            ).collect().map(Self.message)
            let byID = Dictionary(found.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var seen = Set<Int64>()
            let delivered = ids.compactMap { id in seen.insert(id).inserted ? byID[id] : nil }
            let ephemeral = delivered.filter { $0.retention == .untilDelivered }.map(\.id)
            if !ephemeral.isEmpty {
                try await connection.query("""
                    DELETE FROM message WHERE id = ANY(\(ephemeral)) AND NOT EXISTS (SELECT 1 FROM inbox WHERE inbox.message_id = message.id)
                    """, logger: logger)
            }
            return delivered
        }
    }

    public func deleteUndelivered(sentBefore time: Timestamp) async throws -> Int {
        try await count("DELETE FROM message WHERE retention = 'until-delivered' AND sent_at < \(time) RETURNING id")
    }

    public func deleteMessages(in conversation: ConversationKey) async throws -> Int {
        try await count("DELETE FROM message WHERE conversation = \(conversation.rawValue) RETURNING id")
    }

    public func retention(of conversation: ConversationKey) async throws -> RetentionPolicy? {
        try await all("SELECT retention FROM conversation_policy WHERE conversation = \(conversation.rawValue)", as: String.self)
            .first.flatMap(RetentionPolicy.init(rawValue:))
    }

    public func setRetention(_ policy: RetentionPolicy, for conversation: ConversationKey) async throws {
        try await run("""
            INSERT INTO conversation_policy (conversation, retention) VALUES (\(conversation.rawValue), \(policy.rawValue))
            ON CONFLICT (conversation) DO UPDATE SET retention = excluded.retention
            """)
    }

    public func messages(in conversation: ConversationKey, before: Int64?, limit: Int) async throws -> [StoredMessage] {
        try await messages("""
            \(unescaped: Self.messageSelect) WHERE m.conversation = \(conversation.rawValue) AND m.id < \(before ?? Int64.max)
            ORDER BY m.id DESC LIMIT \(limit)
            """).reversed()
    }

    private func messages(_ query: PostgresQuery) async throws -> [StoredMessage] {
        try await pool.query(query).map(Self.message)
    }

    /// Messages with their image's type and size (never its bytes), in the column order
    /// ``message(_:)`` decodes.
    private static let messageSelect = """
        SELECT m.id, m.conversation, m.sender_id, m.sender_name, m.sender_kind, m.body, m.client_id, m.sent_at, m.retention,
               i.type, i.size, m.e2e
        FROM message m LEFT JOIN message_image i ON i.message_id = m.id
        """

    private static func message(_ row: PostgresRow) throws -> StoredMessage {
        let (id, conversation, senderID, senderName, senderKind, body, clientID, sentAt, retention, imageType, imageSize, e2e) =
            try row.decode((Int64, String, String, String, String, String, String?, Int64, String, String?, Int?, Data?).self)
        return StoredMessage(
            id: id,
            conversation: ConversationKey(rawValue: conversation),
            sender: Identity(id: UserID(rawValue: senderID), name: senderName, kind: Identity.Kind(rawValue: senderKind) ?? .guest),
            text: body,
            clientID: clientID,
            sentAt: sentAt,
            retention: RetentionPolicy(rawValue: retention) ?? .keep,
            image: imageType.map { MessageImage(type: $0, size: imageSize ?? 0, data: nil) },
            encrypted: EncryptedBody(stored: e2e)
        )
    }
}
