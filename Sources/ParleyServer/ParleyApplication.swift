import EngineIO
import Logging
import NIOCore
import NIOPosix
import ParleyCluster
import ParleyCore
import ParleyStorePostgres
import ParleyStoreSQLite
import Prometheus
import ServiceLifecycle
import SocketIO

/// Builds the Parley server from its configuration: the store (opened and migrated), the chat
/// service, the engine, the Socket.IO server with Parley's event APIs, and the HTTP routes.
///
/// - Parameters:
///   - configuration: what to serve and how.
///   - logger: where the server logs.
///   - metrics: the registry that `/metrics` renders; bootstrap swift-metrics with a
///     `PrometheusMetricsFactory` on the same registry to fill it.
/// - Throws: when the database cannot be opened or migrated.
public func buildApplication(
    configuration: ParleyConfiguration,
    logger: Logger = Logger(label: "parley"),
    metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) async throws -> ParleyApplication {
    let store: any ChatStore
    var closers: [@Sendable () async -> Void] = []
    var bus: PostgresBus?
    if ParleyConfiguration.isPostgresURL(configuration.database) {
        let postgres = try await PostgresChatStore(url: configuration.database, logger: logger)
        store = postgres
        // Nodes sharing the database: the cluster bus carries broadcasts, presence and cache
        // invalidations between them.
        let cluster = PostgresBus(
            configuration: try PostgresChatStore.configuration(url: configuration.database),
            nodeID: configuration.nodeName ?? PostgresBus.makeNodeID(), logger: logger
        )
        do {
            try await cluster.start()
        } catch {
            await postgres.close()
            throw error
        }
        bus = cluster
        closers = [{ await cluster.shutdown() }, { await postgres.close() }]
        logger.info("store: PostgreSQL; cluster node \(cluster.nodeID)")
    } else if configuration.database == ":memory:" {
        store = try SQLiteChatStore()
    } else {
        let sqlite = try SQLiteChatStore(path: configuration.database, sync: configuration.sqliteSync)
        store = sqlite
        let sync = try await sqlite.sync()
        logger.info("store: SQLite \(configuration.database); commits synced: \(sync?.rawValue ?? "never")")
    }
    let closeAll: @Sendable () async -> Void = { [closers] in
        for close in closers { await close() }
    }
    return ParleyApplication(configuration: configuration, store: store, bus: bus, closeStore: closeAll, logger: logger, metrics: metrics)
}

/// The running Parley server, a `Service`: `run()` listens until a graceful shutdown (SIGINT or
/// SIGTERM under a `ServiceGroup`), then stops accepting, tells every client, and returns.
public final class ParleyApplication: Service, Sendable {
    public let configuration: ParleyConfiguration
    /// The Engine.IO server.
    public let engine: EngineServer
    /// The Socket.IO server.
    public let io: SocketIOServer
    /// The chat service.
    public let chat: ChatService
    private let http: EngineHTTPServer
    private let logger: Logger
    /// The event loops, when not NIO's shared group (whose size is the machine's core count).
    private let ownGroup: MultiThreadedEventLoopGroup?
    /// Stops the cluster bus and closes the store's connections, for a store that has any.
    private let closeStore: (@Sendable () async -> Void)?

    init(
        configuration: ParleyConfiguration, store: any ChatStore, bus: PostgresBus?, closeStore: (@Sendable () async -> Void)?,
        logger: Logger, metrics: PrometheusCollectorRegistry
    ) {
        self.configuration = configuration
        self.closeStore = closeStore
        self.logger = logger
        var engineConfiguration = configuration.engine
        let openFiles = OpenFiles.raiseLimit()
        let maxSessions = configuration.maxConnections ?? openFiles.map(OpenFiles.sessions(allowedBy:))
        engineConfiguration.maxSessions = maxSessions ?? .max
        logger.info(
            "open-file limit \(openFiles.map(String.init) ?? "unlimited"); accepting at most \(maxSessions.map(String.init) ?? "any number of") connections"
        )
        let engine = EngineServer(configuration: engineConfiguration, logger: logger)
        let io: SocketIOServer
        if let bus {
            io = SocketIOServer(engine: engine, configuration: configuration.socketIO, logger: logger) { context in
                ClusterAdapter(context: context, bus: bus)
            }
        } else {
            io = SocketIOServer(engine: engine, configuration: configuration.socketIO, logger: logger)
        }
        let dialects = DialectTable()
        let ownGroup = configuration.threads == System.coreCount ? nil : MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        let group = ownGroup ?? MultiThreadedEventLoopGroup.singleton
        let sink = SocketIOEventSink(namespace: io.sockets, dialects: dialects, committed: LoopInbox.of(group.next()))
        let chat = ChatService(
            store: store, sink: sink, replicator: bus, names: bus, configuration: configuration.chat, logger: logger
        )
        if let bus {
            // Presence is cluster-wide: each node keeps a copy of the others', asks for it now,
            // and drops a node's connections when that node stops.
            bus.onPresence.withLock { $0 = { [weak chat] change, node in chat?.applyPresence(change, from: node) } }
            bus.onConversationChange.withLock { $0 = { [weak chat] change in chat?.apply(change) } }
            bus.onNodesDown.withLock { $0 = { [weak chat] nodes in chat?.nodesDown(nodes) } }
            bus.onRejoined.withLock { $0 = { [weak chat] in chat?.announcePresence(askingOthers: false) } }
            bus.onResumed.withLock { $0 = { [weak chat] in chat?.catchUpWithOtherNodes() } }
            chat.announcePresence(askingOthers: true)
        }
        self.engine = engine
        self.io = io
        self.chat = chat
        // One budget per client address for every route that signs in or registers.
        let signIns = SignInLimiter(limit: configuration.chat.signInRate) { [engine] in engine.clientAddress(of: $0) }
        let routes = HTTPRoutes(
            engine: engine, io: io, metrics: metrics, accounts: AccountRoutes(service: chat, signIns: signIns), tutorial3: Tutorial3Routes(service: chat, signIns: signIns),
            bus: bus
        )
        self.ownGroup = ownGroup
        self.http = EngineHTTPServer(engine: engine, group: group, fallback: routes.respond)
        NativeChat.install(on: io.sockets, service: chat, dialects: dialects)
        Tutorial1Dialect.install(on: io.sockets, service: chat, dialects: dialects)
        Tutorial2Dialect.install(on: io.sockets, service: chat, dialects: dialects)
        Tutorial3Chat.install(on: io, dialects: dialects)
        Tutorial4Chat(io: io, cap: configuration.tutorial4HistoryCap).install(on: io.sockets, dialects: dialects)
    }

    /// The port the server listens on, once started.
    public var port: Int? { http.localPort }

    /// Starts listening.
    public func start() async throws {
        try await http.start(host: configuration.host, port: configuration.port)
    }

    /// Stops accepting connections, closes every session, lets the sockets' handlers finish what
    /// their clients sent before the end, and stores the messages it took before closing the
    /// store: all of it within ``ParleyConfiguration/shutdownTimeout``.
    public func shutdown() async {
        logger.info("shutting down")
        await http.shutdown()
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.shutdownTimeout
        // A handler waiting on the store (a join, say) has not yet submitted the messages read
        // after it; finishing the writes before it would let them go.
        let busy = await io.finishHandlers(within: configuration.shutdownTimeout)
        if busy > 0 {
            logger.error(
                "stopping while \(busy) connections were still handling what their clients sent: the shutdown timeout passed",
                metadata: ["timeout": "\(configuration.shutdownTimeout)"]
            )
        }
        let unstored = await chat.finishWrites(within: max(.zero, deadline - clock.now))
        if unstored > 0 {
            logger.error(
                "stopping without storing \(unstored) received messages: the store did not take them within the shutdown timeout",
                metadata: ["timeout": "\(configuration.shutdownTimeout)"]
            )
        }
        await closeStore?()
        try? await ownGroup?.shutdownGracefully()
    }

    public func run() async throws {
        try await start()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sweepUndelivered() }
            group.addTask { await self.returnMemoryAfterDepartures() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await shutdown()
    }

    /// Hands freed memory back to the operating system once many clients have left (see
    /// ``MemoryReturnPolicy``), checking the session count every ping interval plus ping
    /// timeout, until cancelled.
    private func returnMemoryAfterDepartures() async {
        var policy = MemoryReturnPolicy(threshold: configuration.memoryReturnThreshold)
        let interval = configuration.engine.pingInterval + configuration.engine.pingTimeout
        while !Task.isCancelled {
            try? await Task.sleep(for: .nanoseconds(max(interval.nanoseconds, 100_000_000)))
            guard policy.observe(sessions: engine.sessionCount) else { continue }
            let before = ProcessMemory.residentBytes()
            let clock = ContinuousClock()
            let started = clock.now
            let returned = ProcessMemory.returnFreeMemory()
            let took = clock.now - started
            guard returned, let before, let after = ProcessMemory.residentBytes() else { continue }
            logger.info("returned memory to the system after clients left", metadata: [
                "sessions": "\(engine.sessionCount)",
                "resident": "\(before / 1_048_576) MB → \(after / 1_048_576) MB",
                "took": "\(Int((took / .milliseconds(1)).rounded())) ms",
            ])
        }
    }

    /// Deletes `until-delivered` messages past their maximum age, every sweep interval, until
    /// cancelled.
    private func sweepUndelivered() async {
        while !Task.isCancelled {
            do {
                let deleted = try await chat.sweepUndelivered()
                if deleted > 0 { logger.info("deleted undelivered messages past their maximum age", metadata: ["count": "\(deleted)"]) }
            } catch {
                logger.error("retention sweep failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.sweepInterval)
        }
    }
}
