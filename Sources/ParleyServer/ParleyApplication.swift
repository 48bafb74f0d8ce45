import EngineIO
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import SocketIO

/// Builds the Parley server from its configuration: the engine, the Socket.IO server with
/// Parley's event API, and the HTTP routes.
///
/// - Parameters:
///   - configuration: what to serve and how.
///   - logger: where the server logs.
///   - metrics: the registry that `/metrics` renders; bootstrap swift-metrics with a
///     `PrometheusMetricsFactory` on the same registry to fill it.
public func buildApplication(
    configuration: ParleyConfiguration,
    logger: Logger = Logger(label: "parley"),
    metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) -> ParleyApplication {
    ParleyApplication(configuration: configuration, logger: logger, metrics: metrics)
}

/// The running Parley server, a `Service`: `run()` listens until a graceful shutdown (SIGINT or
/// SIGTERM under a `ServiceGroup`), then stops accepting, tells every client, and returns.
public final class ParleyApplication: Service, Sendable {
    public let configuration: ParleyConfiguration
    /// The Engine.IO server.
    public let engine: EngineServer
    /// The Socket.IO server.
    public let io: SocketIOServer
    private let http: EngineHTTPServer
    private let logger: Logger

    init(configuration: ParleyConfiguration, logger: Logger, metrics: PrometheusCollectorRegistry) {
        self.configuration = configuration
        self.logger = logger
        let engine = EngineServer(configuration: configuration.engine, logger: logger)
        let io = SocketIOServer(engine: engine, configuration: configuration.socketIO, logger: logger)
        self.engine = engine
        self.io = io
        let routes = HTTPRoutes(engine: engine, io: io, metrics: metrics)
        self.http = EngineHTTPServer(engine: engine, fallback: routes.respond)
        TutorialChat.install(on: io)
    }

    /// The port the server listens on, once started.
    public var port: Int? { http.localPort }

    /// Starts listening.
    public func start() async throws {
        try await http.start(host: configuration.host, port: configuration.port)
    }

    /// Stops accepting connections and closes every session.
    public func shutdown() async {
        logger.info("shutting down")
        await http.shutdown()
    }

    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}
