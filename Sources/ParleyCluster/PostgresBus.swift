import Foundation
import Logging
import ParleyCore
import ParleyStorePostgres
import PostgresNIO
import Synchronization

/// The cluster bus on PostgreSQL: Socket.IO's ``ClusterMessage``s and the chat service's
/// ``PresenceChange``s go out with `NOTIFY` on one channel and come in by
/// `LISTEN`; a message too large for a notification (PostgreSQL's limit is 8,000 bytes) is
/// written to a table and the notification carries its row id. Every node also writes a
/// heartbeat row; nodes whose heartbeat is older than ``nodeTimeout`` are removed, and the node
/// that removes them reports them to ``onNodesDown``. A node that finds its own heartbeat was
/// removed (it was taken for gone) reports that to ``onRejoined``.
///
/// A node's messages reach the others in the order it published them: one task publishes them,
/// a batch per statement. Notifications are not stored: a node that loses its listening
/// connection misses what was published meanwhile (accounts catch up through store-and-forward
/// when they reconnect), and what a node fails to publish (the database was down) is lost. So
/// a node that listens again reports it to ``onResumed``, and one whose publishing failed
/// reports to ``onRejoined`` once its next heartbeat is written: each then makes the others'
/// view of it whole again.
public final class PostgresBus: ClusterBus, ClusterReplicator {
    /// This node's id (its name, or a random id); names must be unique in a cluster.
    public let nodeID: String
    /// This process's own random id: a node ignores its own messages by it, even if another
    /// node were given the same name.
    private let instance = PostgresBus.makeNodeID()
    /// How often this node writes its heartbeat.
    public let heartbeatInterval: Duration
    /// How old a heartbeat may be before its node counts as gone.
    public let nodeTimeout: Duration
    /// Called with the ids of nodes this node found gone.
    public let onNodesDown = Mutex<(@Sendable ([String]) -> Void)?>(nil)
    /// Called when the others may have missed this node's presence: it finds that they had
    /// taken it for gone, or it writes its heartbeat again after some of its messages could not
    /// be published.
    public let onRejoined = Mutex<(@Sendable () -> Void)?>(nil)
    /// Called when this node listens again after losing its listening connection: what the
    /// others published meanwhile (presence, cache changes, broadcasts) never reached it.
    public let onResumed = Mutex<(@Sendable () -> Void)?>(nil)
    /// Whether a batch could not be published since the last heartbeat written.
    private let droppedSome = Mutex(false)
    /// Called with each presence change another node publishes, and that node's id.
    public let onPresence = Mutex<(@Sendable (PresenceChange, String) -> Void)?>(nil)
    /// Called with each conversation change another node publishes.
    public let onConversationChange = Mutex<(@Sendable (ConversationChange) -> Void)?>(nil)

    static let channel = "parley_bus"
    /// Payloads above this many bytes go through the table.
    static let notifyLimit = 7_000

    let client: PostgresClient
    /// The client, for what a user waits on (names in rooms): no connection within
    /// `PostgresChatStore.connectionWait` is `store_unavailable`, as in the store.
    let pool: BoundedPool
    let logger: Logger
    private let adapters = Mutex<[String: ClusterAdapter]>([:])
    private let outbox = Mutex<(queue: [String], sequence: UInt64)>(([], 0))
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let known = Mutex<[String]>([])

    /// The nodes with a current heartbeat as of this node's last heartbeat, this one included.
    public var nodes: [String] { known.withLock { $0 } }

    /// A bus on the database `configuration` names. Call ``start()`` before publishing.
    public init(
        configuration: PostgresClient.Configuration, nodeID: String = PostgresBus.makeNodeID(),
        heartbeatInterval: Duration = .seconds(2), nodeTimeout: Duration = .seconds(10), logger: Logger
    ) {
        var configuration = configuration
        configuration.options.maximumConnections = 4
        // What pg_stat_activity shows for the bus's connections: which node's they are.
        configuration.options.additionalStartupParameters = [("application_name", "parley bus \(nodeID)")]
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.pool = BoundedPool(client: client, wait: PostgresChatStore.connectionWait, logger: logger)
        self.nodeID = nodeID
        self.heartbeatInterval = heartbeatInterval
        self.nodeTimeout = nodeTimeout
        self.logger = logger
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A random node id.
    public static func makeNodeID() -> String {
        "n_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Creates the bus's tables if needed, starts listening, and returns once this node hears the
    /// channel and has written its first heartbeat.
    public func start() async throws {
        let client = self.client
        let runner = Task { await client.run() }
        tasks.withLock { $0.append(runner) }
        // Lets the runner start before the first lease, which otherwise logs a warning that
        // `run()` has not been called yet.
        await Task.yield()
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Int64(0x7061_726c_6562)))", logger: logger)
            // Unlogged: what they hold is worth nothing after a crash of the database.
            try await connection.query("""
                CREATE UNLOGGED TABLE IF NOT EXISTS parley_bus_payload (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            try await connection.query("""
                CREATE UNLOGGED TABLE IF NOT EXISTS parley_node (
                    id TEXT PRIMARY KEY, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), seen_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            try await connection.query("""
                CREATE UNLOGGED TABLE IF NOT EXISTS parley_name_claim (
                    room TEXT NOT NULL, connection TEXT NOT NULL, name_key TEXT NOT NULL, user_id TEXT NOT NULL, node TEXT NOT NULL,
                    PRIMARY KEY (room, connection))
                """, logger: logger)
            try await connection.query(
                "CREATE INDEX IF NOT EXISTS parley_name_claim_by_name ON parley_name_claim (room, name_key)", logger: logger
            )
            // Claims left by an earlier run of a node with this name.
            try await connection.query("DELETE FROM parley_name_claim WHERE node = \(nodeID)", logger: logger)
        }
        _ = try await heartbeat()
        let (listening, ready) = AsyncStream.makeStream(of: Void.self)
        tasks.withLock { tasks in
            tasks.append(Task { await self.listen(ready: ready) })
            tasks.append(Task { await self.publishLoop() })
            tasks.append(Task { await self.heartbeatLoop() })
        }
        for await _ in listening { break }
    }

    /// Stops the bus and removes this node's heartbeat, so that the others see it gone at once;
    /// with the database out of reach for a second, they see it once the heartbeat is stale.
    public func shutdown() async {
        let quick = BoundedPool(client: client, wait: .seconds(1), logger: logger)
        _ = try? await quick.query("DELETE FROM parley_node WHERE id = \(nodeID)")
        let running = tasks.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in running { task.cancel() }
        wake.finish()
    }

    public func register(_ adapter: ClusterAdapter, for namespace: String) {
        adapters.withLock { $0[namespace] = adapter }
    }

    /// The ids of the nodes whose heartbeat is current, this one included.
    public func liveNodes() async throws -> [String] {
        let rows = try await client.query("""
            SELECT id FROM parley_node WHERE seen_at > now() - make_interval(secs => \(Self.seconds(nodeTimeout))) ORDER BY id
            """, logger: logger).collect()
        return try rows.map { try $0.decode(String.self) }
    }

    // MARK: Publishing

    private struct Envelope: Codable {
        /// The publishing node (``PostgresBus/nodeID``).
        var o: String
        /// Its sequence number: notifications identical within one transaction are merged by
        /// PostgreSQL, and this makes each one distinct.
        var s: UInt64
        /// A Socket.IO adapter's message, or
        var m: ClusterMessage?
        /// a presence change, or
        var p: PresenceChange?
        /// a conversation change.
        var c: ConversationChange?
    }

    public func publish(_ message: ClusterMessage) {
        enqueue(Envelope(o: nodeID, s: 0, m: message))
    }

    public func publish(_ change: PresenceChange) {
        enqueue(Envelope(o: nodeID, s: 0, p: change))
    }

    public func publish(_ change: ConversationChange) {
        enqueue(Envelope(o: nodeID, s: 0, c: change))
    }

    /// Queues a message behind the ones published before it, for ``publishLoop()``.
    private func enqueue(_ envelope: Envelope) {
        var envelope = envelope
        let queued = outbox.withLock { outbox -> Bool in
            outbox.sequence += 1
            envelope.s = outbox.sequence
            guard let data = try? JSONEncoder().encode(envelope) else { return false }
            outbox.queue.append(String(decoding: data, as: UTF8.self))
            return true
        }
        if queued { wake.yield() }
    }

    /// Sends what is queued, in order, a batch per statement, until the bus stops.
    private func publishLoop() async {
        for await _ in wakes {
            while true {
                let batch = outbox.withLock { outbox in
                    defer { outbox.queue.removeAll() }
                    return outbox.queue
                }
                guard !batch.isEmpty else { break }
                do {
                    try await send(batch)
                } catch {
                    droppedSome.withLock { $0 = true }
                    logger.error("cluster bus: could not publish", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
                }
            }
        }
    }

    private func send(_ batch: [String]) async throws {
        var payloads: [String] = []
        payloads.reserveCapacity(batch.count)
        // Each notification starts with the publishing process's id and a space, so that a node
        // skips its own notifications without decoding them (or reading their table rows).
        for body in batch {
            if body.utf8.count <= Self.notifyLimit {
                payloads.append(instance + " " + body)
            } else {
                let row = try await client.query("INSERT INTO parley_bus_payload (body) VALUES (\(body)) RETURNING id", logger: logger)
                    .collect()
                guard let id = try row.first?.decode(Int64.self) else { continue }
                payloads.append(instance + " @\(id)")
            }
        }
        try await client.query("""
            SELECT pg_notify(\(Self.channel), payload) FROM unnest(\(payloads)::text[]) WITH ORDINALITY AS t(payload, n) ORDER BY n
            """, logger: logger)
    }

    // MARK: Receiving

    /// Listens on the channel until cancelled, connecting again after a failure.
    private func listen(ready: AsyncStream<Void>.Continuation) async {
        var lost = false
        while !Task.isCancelled {
            do {
                let resumed = lost
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        ready.yield()
                        if resumed {
                            logger.warning("cluster bus: listening again; catching up with the other nodes")
                            onResumed.withLock { $0 }?()
                        }
                        for try await notification in notifications {
                            await self.receive(notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                lost = true
                logger.error("cluster bus: listening failed; listening again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        ready.finish()
    }

    private func receive(_ notification: String) async {
        guard let space = notification.firstIndex(of: " ") else {
            logger.warning("cluster bus: ignored a malformed message")
            return
        }
        guard notification[..<space] != instance else { return }
        let payload = notification[notification.index(after: space)...]
        var body = String(payload)
        if payload.hasPrefix("@"), let id = Int64(payload.dropFirst()) {
            do {
                let rows = try await client.query("SELECT body FROM parley_bus_payload WHERE id = \(id)", logger: logger).collect()
                guard let stored = try rows.first?.decode(String.self) else {
                    logger.warning("cluster bus: a large message expired before it was read", metadata: ["id": "\(id)"])
                    return
                }
                body = stored
            } catch {
                logger.error("cluster bus: could not read a large message", metadata: ["error": "\(error)"])
                return
            }
        }
        guard let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body.utf8)) else {
            logger.warning("cluster bus: ignored a malformed message")
            return
        }
        if let message = envelope.m {
            adapters.withLock { $0[message.namespace] }?.receive(message)
        }
        if let change = envelope.p {
            onPresence.withLock { $0 }?(change, envelope.o)
        }
        if let change = envelope.c {
            onConversationChange.withLock { $0 }?(change)
        }
    }

    // MARK: Heartbeats

    /// Writes this node's heartbeat. Returns whether its row was missing (written anew).
    private func heartbeat() async throws -> Bool {
        let rows = try await client.query("""
            INSERT INTO parley_node (id) VALUES (\(nodeID)) ON CONFLICT (id) DO UPDATE SET seen_at = now() RETURNING (xmax = 0)
            """, logger: logger).collect()
        let current = try await liveNodes()
        known.withLock { $0 = current }
        return try rows.first?.decode(Bool.self) ?? false
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: heartbeatInterval)
            guard !Task.isCancelled else { break }
            do {
                // This node's own heartbeat first, so that it never finds itself gone.
                let missing = try await heartbeat()
                let dropped = droppedSome.withLock { dropped in
                    defer { dropped = false }
                    return dropped
                }
                if missing || dropped {
                    logger.warning(
                        missing
                            ? "cluster: the other nodes had taken this node for gone; announcing its presence again"
                            : "cluster: some messages could not be published; announcing this node's presence again"
                    )
                    onRejoined.withLock { $0 }?()
                }
                let gone = try await client.query("""
                    DELETE FROM parley_node WHERE seen_at < now() - make_interval(secs => \(Self.seconds(nodeTimeout))) RETURNING id
                    """, logger: logger).collect().map { try $0.decode(String.self) }.filter { $0 != nodeID }
                try await client.query("DELETE FROM parley_bus_payload WHERE created_at < now() - interval '1 minute'", logger: logger)
                if !gone.isEmpty {
                    logger.warning("cluster: nodes stopped sending heartbeats", metadata: ["nodes": "\(gone)"])
                    try await client.query("DELETE FROM parley_name_claim WHERE node = ANY(\(gone))", logger: logger)
                    onNodesDown.withLock { $0 }?(gone)
                }
            } catch {
                logger.error("cluster bus: heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
