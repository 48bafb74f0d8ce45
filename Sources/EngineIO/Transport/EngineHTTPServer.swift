import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// Serves an ``EngineServer`` over HTTP/1.1 and WebSocket on a listening socket, and hands
/// every request outside the engine path to an optional ``Fallback``.
public final class EngineHTTPServer: Sendable {
    /// Answers HTTP requests outside the engine path (health checks, REST, static files).
    public typealias Fallback = @Sendable (WebRequest) async -> WebResponse

    /// The engine served.
    public let engine: EngineServer
    /// The largest request body accepted outside the engine path. Default 16 MiB.
    public let maxRequestBodySize: Int
    private let group: any EventLoopGroup
    private let fallback: Fallback?
    private let listener = Mutex<(any Channel)?>(nil)

    /// - Parameters:
    ///   - engine: the engine to serve.
    ///   - group: the event loops; by default NIO's shared group with one loop per core.
    ///   - maxRequestBodySize: the largest body of a request outside the engine path.
    ///   - fallback: answers requests outside the engine path; without one they get 404.
    public init(
        engine: EngineServer,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        maxRequestBodySize: Int = 16 << 20,
        fallback: Fallback? = nil
    ) {
        self.engine = engine
        self.group = group
        self.maxRequestBodySize = maxRequestBodySize
        self.fallback = fallback
    }

    /// The port the server listens on, once started (useful after binding port 0).
    public var localPort: Int? {
        listener.withLock { $0?.localAddress?.port }
    }

    /// When a connection's channel turns unwritable (more than `high` bytes waiting for the
    /// socket) and writable again (fewer than `low`): NIO's defaults, set here so that
    /// ``EngineSocket`` may rely on them.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)

    /// Starts listening on `host`:`port`.
    public func start(host: String, port: Int) async throws {
        let engine = self.engine
        let fallback = self.fallback
        let maxBody = self.maxRequestBodySize
        let maxFrame = max(engine.configuration.maxPayload, 1024)
        Self.instantiateHandlerTypes()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            // NIO keeps each connection's receive buffer for reuse. Most connections of a chat
            // server are quiet (a pong every 25 s), so it starts at 128 bytes, not 2 KiB; the
            // allocator grows it for the connections that send more.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 128, maximum: 65536))
            .childChannelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, engine: engine, fallback: fallback, maxBody: maxBody, maxFrame: maxFrame)
                }
            }
            .bind(host: host, port: port)
            .get()
        listener.withLock { $0 = channel }
        engine.logger.info("listening", metadata: ["address": .string("\(host):\(channel.localAddress?.port ?? port)")])
    }

    static let httpHandlerName = "engineio.http"

    /// Creates one of each generic pipeline handler before any connection arrives. The first
    /// two connections of a fresh process used to build their pipelines on two event loops at
    /// once, and the concurrent first instantiation of the generic handler types' metadata
    /// crashed the Swift runtime (seen about once in two hundred starts). Doing it here, on one
    /// thread, leaves the loops only cached metadata to read.
    private static let instantiateHandlerTypesOnce: Void = {
        _ = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        _ = HTTPResponseEncoder()
        _ = HTTPServerPipelineHandler()
        _ = HTTPServerProtocolErrorHandler()
        let handlers: [any RemovableChannelHandler] = [HTTPServerPipelineHandler()]
        _ = handlers
    }()

    private static func instantiateHandlerTypes() {
        _ = instantiateHandlerTypesOnce
    }

    /// Builds a connection's pipeline: HTTP/1.1 with pipelining assistance, then a WebSocket
    /// upgrade handler, then the engine's handler. After an upgrade, the pipeline is the
    /// engine's WebSocket handler alone. NIO's upgrade handler only looks at the first
    /// request of a connection, but clients (aiohttp among them) upgrade on a reused keep-alive
    /// connection; so the engine's handler arms a fresh one before every request.
    private static func configure(
        _ channel: any Channel,
        engine: EngineServer,
        fallback: Fallback?,
        maxBody: Int,
        maxFrame: Int
    ) throws {
        let upgrader = EngineWebSocketUpgrader(engine: engine, maxMessageSize: maxFrame)
        let encoder = HTTPResponseEncoder()
        let httpHandlers: [any RemovableChannelHandler] = [
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
            HTTPServerPipelineHandler(),
            HTTPServerProtocolErrorHandler(),
        ]
        let makeUpgradeHandler = {
            HTTPServerUpgradeHandler(
                upgraders: [upgrader],
                httpEncoder: encoder,
                extraHTTPHandlers: httpHandlers,
                upgradeCompletionHandler: { context in
                    context.pipeline.removeHandler(name: EngineHTTPServer.httpHandlerName, promise: nil)
                }
            )
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(encoder)
        try sync.addHandlers(httpHandlers)
        try sync.addHandler(makeUpgradeHandler())
        try sync.addHandler(
            EngineHTTPHandler(engine: engine, fallback: fallback, maxRequestBodySize: maxBody, makeUpgradeHandler: makeUpgradeHandler),
            name: httpHandlerName
        )
    }

    /// Waits until the listening socket is closed by ``shutdown()``.
    public func run() async throws {
        guard let channel = listener.withLock({ $0 }) else { return }
        try await channel.closeFuture.get()
    }

    /// Stops accepting connections, then closes every session (clients are told the server
    /// is shutting down) and gives their last packets a moment to leave.
    public func shutdown(drain: TimeAmount = .milliseconds(200)) async {
        let channel = listener.withLock { $0 }
        try? await channel?.close()
        engine.closeAll(reason: .serverShuttingDown)
        try? await Task.sleep(nanoseconds: UInt64(drain.nanoseconds))
    }
}

extension EngineServer {
    /// Whether a WebSocket upgrade request is one the engine takes: at its path, and valid.
    func acceptsWebSocket(_ head: HTTPRequestHead, from remoteAddress: SocketAddress?) -> Bool {
        let (path, query) = URIComponents.split(head.uri)
        guard path == configuration.path || path + "/" == configuration.path else { return false }
        let kind = EngineRequestKind.classify(
            method: head.method.rawValue,
            query: query,
            isWebSocketUpgrade: true,
            origin: head.headers.first(name: "Origin"),
            configuration: configuration,
            sessionTransport: phase(ofSession:)
        )
        switch kind {
        // A server that may not take it answers the handshake over HTTP instead (``EngineHTTPHandler``).
        case .success(.handshake(.websocket)): return admissionRefusal(headers: head.headers, remoteAddress: remoteAddress) == nil
        case .success(.upgrade): return true
        default: return false
        }
    }
}
