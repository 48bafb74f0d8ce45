import EngineIO
import Logging
import Synchronization

/// A Socket.IO v5 server on top of an ``EngineIO/EngineServer``.
///
/// ```swift
/// import EngineIO
/// import SocketIO
///
/// let engine = EngineServer()
/// let io = SocketIOServer(engine: engine)
/// io.onConnection { socket in
///     socket.on("join") { args, ack in
///         guard let room = args.first?.stringValue else { return ack(["error": "room expected"]) }
///         socket.join(room)
///         socket.to(room).emit("joined", .string(socket.id))
///         ack()
///     }
/// }
/// let http = EngineHTTPServer(engine: engine)
/// try await http.start(host: "127.0.0.1", port: 3000)
/// try await http.run()
/// ```
public final class SocketIOServer: Sendable {
    /// The engine carrying the connections.
    public let engine: EngineServer
    /// The server's options.
    public let configuration: SocketIOConfiguration
    let logger: Logger
    private let adapterFactory: @Sendable (AdapterContext) -> any Adapter
    private let namespaces = Mutex<[String: Namespace]>([:])
    /// Whose sockets, in every namespace, are running event handlers.
    let activity = HandlerActivity()

    /// A server on `engine`.
    ///
    /// - Parameters:
    ///   - adapterFactory: builds each namespace's adapter; the in-memory adapter by default.
    public init(
        engine: EngineServer,
        configuration: SocketIOConfiguration = SocketIOConfiguration(),
        logger: Logger = Logger(label: "socketio"),
        adapterFactory: @escaping @Sendable (AdapterContext) -> any Adapter = { context in
            InMemoryAdapter(namespace: context.namespace, sockets: context.sockets, recovery: context.recovery)
        }
    ) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.adapterFactory = adapterFactory
        _ = of("/")
        engine.onConnection { [self] session in
            ClientConnection(engine: session, server: self).start()
        }
    }

    /// Waits until no socket is running event handlers (disconnect handlers included), at most
    /// `limit`; returns how many sockets still were then, 0 when none. A stopping server calls
    /// it once every connection is closed, so that what its clients sent before the end is
    /// handled before the store is closed.
    public func finishHandlers(within limit: Duration) async -> Int {
        await activity.idle(within: limit)
    }

    /// The namespace `name`, created on first use. Clients may only join namespaces that exist.
    public func of(_ name: String) -> Namespace {
        let name = name.hasPrefix("/") ? name : "/" + name
        return namespaces.withLock { namespaces in
            if let existing = namespaces[name] { return existing }
            let namespace = Namespace(
                name: name,
                activity: activity,
                recovery: configuration.connectionStateRecovery,
                logger: logger,
                adapterFactory: adapterFactory
            )
            namespaces[name] = namespace
            return namespace
        }
    }

    func namespace(named name: String) -> Namespace? {
        namespaces.withLock { $0[name] }
    }

    /// The main namespace, `/`.
    public var sockets: Namespace { of("/") }

    /// Adds a middleware to the main namespace.
    public func use(_ middleware: @escaping Namespace.Middleware) { sockets.use(middleware) }

    /// Adds a connection handler to the main namespace.
    public func onConnection(_ handler: @escaping Namespace.ConnectionHandler) { sockets.onConnection(handler) }

    /// A broadcast to members of `rooms` in the main namespace.
    public func to(_ rooms: String...) -> BroadcastOperator { sockets.broadcast.to(Set(rooms)) }

    /// Same as ``to(_:)``.
    public func `in`(_ rooms: String...) -> BroadcastOperator { sockets.broadcast.to(Set(rooms)) }

    /// Emits an event to every socket of the main namespace.
    public func emit(_ event: String, _ args: JSONValue...) { sockets.broadcast.emit(event, args) }

    /// The number of sockets in each namespace on this node.
    public var socketCounts: [String: Int] {
        namespaces.withLock { $0.mapValues(\.socketCount) }
    }
}
