import ArgumentParser
import EngineIO
import Foundation
import Logging
import Metrics
import NIOCore
import ParleyCore
import ParleyServer
import ParleyStoreSQLite
import Prometheus
import ServiceLifecycle
import SocketIO

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Parley server (the default command).",
        discussion: "Every option has a default; PORT in the environment sets the port when --port is not given."
    )

    @Option(help: "The address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "The port to listen on (default: $PORT, else 3000).")
    var port: Int?

    @Option(help: "The Engine.IO path.")
    var path = "/socket.io/"

    @Option(help: "Milliseconds between server pings.")
    var pingInterval = 25_000

    @Option(help: "Milliseconds to wait for a pong before closing a session.")
    var pingTimeout = 20_000

    @Option(help: "Milliseconds a polling → WebSocket upgrade may take.")
    var upgradeTimeout = 10_000

    @Option(help: "The largest message or polling body a client may send, in bytes.")
    var maxPayload = 1_000_000

    @Option(help: "Milliseconds a new connection has to join a namespace.")
    var connectTimeout = 45_000

    @Option(help: "Seconds a disconnected client can come back and recover its id, rooms and missed broadcasts (0, the default, turns connection state recovery off: it appends an offset argument to every broadcast).")
    var recoveryWindow = 0

    @Option(name: .customLong("cors-origin"), help: "An origin allowed to reach the server from a browser page served elsewhere (repeatable; * for any).")
    var corsOrigins: [String] = []

    @Flag(name: .customLong("no-eio3"), help: "Refuse Engine.IO v3 clients (socket.io-client 1.x and 2.x) with error code 5.")
    var noEIO3 = false

    @Option(help: "Set this cookie on the response that opens a polling session, for a load balancer's sticky sessions; its value is --node-name if given, else the session id (socket.io's cookie option).")
    var cookie: String?

    @Option(help: "This node's name in a cluster (letters, digits, - and _; at most 32): the --cookie value and the node id in /healthz. Default: a random id.")
    var nodeName: String?

    @Option(help: "Transports clients may use: polling, websocket (repeatable).")
    var transport: [String] = ["polling", "websocket"]

    @Option(help: "A SQLite database file (:memory: keeps nothing) or a PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=disable), created or migrated on start. Default: $DATABASE_URL if set, else parley.sqlite.")
    var database: String?

    @Option(help: "When a SQLite database's commits are on disk: full (each commit is synced, so an acknowledged message survives a power loss) or normal (synced at checkpoints: survives a crash of parley, not of the machine; faster).")
    var sqliteSync = "full"

    @Option(help: "How long conversations that chose no policy keep messages: keep (history), until-delivered (deleted once every recipient has them), none (relayed, never stored).")
    var retention = "keep"

    @Option(help: "Seconds an until-delivered message waits for its recipients before it is deleted anyway.")
    var undeliveredMaxAge = 14 * 24 * 3600

    @Option(help: "The most entries the fourth tutorial's global chat history keeps (the newest).")
    var tutorial4HistoryCap = 1000

    @Option(help: "Seconds a stopping server (SIGTERM, SIGINT) waits for what its clients sent before the end to be handled and stored; what is still waiting then is lost, and the log says how much.")
    var shutdownTimeout = 8.0

    @Option(help: "The most connections open at once; past it, new clients are told the server is full (HTTP 503) and come back later. Default: what the open-file limit leaves room for (all but a quarter of it, at most 1,024 kept back).")
    var maxConnections: Int?

    @Option(help: "The most connections open at once from one client address; past it, that address gets HTTP 429 until one closes. Default: no limit (clients behind one NAT share an address).")
    var maxConnectionsPerAddress: Int?

    @Option(name: .customLong("trusted-proxy"), help: "The address of a reverse proxy whose X-Forwarded-For names the client, for the limits per client address (repeatable); from any other peer the header is ignored.")
    var trustedProxies: [String] = []

    @Option(help: "Sign-ins and registrations (POST /api/login, /api/register, and the third tutorial's /login, /register) a client address may make a minute, as many at once; each costs the server a slow password hash. 0 turns the limit off.")
    var signInLimit = 30

    @Option(help: "Network threads (event loops); default: one per CPU the process may run on.")
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard threads.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--threads is between 1 and 256") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        for name in transport where EngineTransport(rawValue: name) == nil {
            throw ValidationError("unknown transport '\(name)'")
        }
        guard pingInterval > 0, pingTimeout > 0, upgradeTimeout > 0, connectTimeout > 0 else {
            throw ValidationError("timeouts and intervals must be positive")
        }
        guard maxPayload > 0 else { throw ValidationError("--max-payload must be positive") }
        guard maxConnections.map({ $0 > 0 }) ?? true else { throw ValidationError("--max-connections must be positive") }
        guard signInLimit >= 0 else { throw ValidationError("--sign-in-limit must not be negative") }
        guard maxConnectionsPerAddress.map({ $0 > 0 }) ?? true else { throw ValidationError("--max-connections-per-address must be positive") }
        for proxy in trustedProxies where (try? SocketAddress(ipAddress: proxy, port: 0)) == nil {
            throw ValidationError("--trusted-proxy is an IP address, such as 127.0.0.1 or ::1, not '\(proxy)'")
        }
        guard recoveryWindow >= 0 else { throw ValidationError("--recovery-window must not be negative") }
        guard RetentionPolicy(rawValue: retention) != nil else {
            throw ValidationError("--retention is keep, until-delivered or none")
        }
        guard SQLiteChatStore.Sync(rawValue: sqliteSync) != nil else { throw ValidationError("--sqlite-sync is full or normal") }
        guard undeliveredMaxAge > 0 else { throw ValidationError("--undelivered-max-age must be positive") }
        guard (0...3600).contains(shutdownTimeout) else { throw ValidationError("--shutdown-timeout is between 0 and 3600 seconds") }
        guard tutorial4HistoryCap > 0 else { throw ValidationError("--tutorial4-history-cap must be positive") }
        if let cookie, cookie.isEmpty || !cookie.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) {
            throw ValidationError("--cookie is a cookie name: letters, digits, '.', '-' and '_'")
        }
        if let nodeName, !ParleyConfiguration.isValidNodeName(nodeName) {
            throw ValidationError("--node-name has 1 to 32 letters, digits, '-' and '_'")
        }
    }

    func makeConfiguration() throws -> ParleyConfiguration {
        var configuration = ParleyConfiguration()
        configuration.host = host
        if let port {
            configuration.port = port
        } else if let text = ProcessInfo.processInfo.environment["PORT"] {
            guard let value = Int(text), (0...65535).contains(value) else { throw ValidationError("PORT must be a port number") }
            configuration.port = value
        }
        var engine = EngineConfiguration(path: path)
        engine.pingInterval = .milliseconds(Int64(pingInterval))
        engine.pingTimeout = .milliseconds(Int64(pingTimeout))
        engine.upgradeTimeout = .milliseconds(Int64(upgradeTimeout))
        engine.maxPayload = maxPayload
        engine.transports = Set(transport.compactMap(EngineTransport.init(rawValue:)))
        engine.cors = CORSConfiguration(allowedOrigins: corsOrigins)
        engine.cookie = cookie.map { EngineCookie(name: $0, value: nodeName) }
        configuration.nodeName = nodeName
        engine.allowEIO3 = !noEIO3
        if let maxConnectionsPerAddress { engine.maxSessionsPerAddress = maxConnectionsPerAddress }
        // As the server will print a peer's address, so that the two compare equal.
        engine.trustedProxies = Set(trustedProxies.compactMap { try? SocketAddress(ipAddress: $0, port: 0).ipAddress })
        configuration.engine = engine
        configuration.socketIO.connectTimeout = .milliseconds(Int64(connectTimeout))
        configuration.socketIO.connectionStateRecovery =
            recoveryWindow == 0 ? nil : ConnectionStateRecovery(maxDisconnectionDuration: .seconds(Int64(recoveryWindow)))
        configuration.database = database ?? ProcessInfo.processInfo.environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "parley.sqlite"
        configuration.sqliteSync = SQLiteChatStore.Sync(rawValue: sqliteSync) ?? .full
        configuration.tutorial4HistoryCap = tutorial4HistoryCap
        configuration.chat.defaultRetention = RetentionPolicy(rawValue: retention) ?? .keep
        configuration.chat.undeliveredMaxAge = Int64(undeliveredMaxAge) * 1000
        configuration.chat.signInRate = signInLimit == 0 ? nil : RateLimit(perSecond: Double(signInLimit) / 60, burst: Double(signInLimit))
        configuration.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        configuration.shutdownTimeout = .milliseconds(Int64((shutdownTimeout * 1000).rounded()))
        if let threads { configuration.threads = threads }
        configuration.maxConnections = maxConnections
        return configuration
    }

    func run() async throws {
        let configuration = try makeConfiguration()
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Commits take a fraction of a millisecond on a quiet disk; a stall takes seconds.
        factory.durationHistogramBuckets[MessageWriteQueue.commitTimeMetric] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        ]
        MetricsSystem.bootstrap(factory)
        let logger = Logger(label: "parley")
        let app = try await buildApplication(configuration: configuration, logger: logger, metrics: registry)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
