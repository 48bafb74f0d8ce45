import EngineIO
import Logging
import Synchronization

/// What an adapter is built from: its namespace's name, the directory of its local sockets,
/// the recovery options, and the handlers of events other servers send
/// (``Namespace/serverSideEmit(_:_:)``).
public struct AdapterContext: Sendable {
    public let namespace: String
    public let sockets: any LocalSocketDirectory
    public let recovery: ConnectionStateRecovery?
    public let serverSideEvents: ServerSideEvents

    public init(
        namespace: String, sockets: any LocalSocketDirectory, recovery: ConnectionStateRecovery?,
        serverSideEvents: ServerSideEvents = ServerSideEvents()
    ) {
        self.namespace = namespace
        self.sockets = sockets
        self.recovery = recovery
        self.serverSideEvents = serverSideEvents
    }
}

/// The handlers of events that other servers of a cluster send to a namespace
/// (``Namespace/onServerSideEmit(_:_:)``).
public final class ServerSideEvents: Sendable {
    /// Handles an event's arguments.
    public typealias Handler = @Sendable ([JSONValue]) -> Void
    private let handlers = Mutex<[String: [Handler]]>([:])

    public init() {}

    /// Adds a handler of `event`.
    public func on(_ event: String, _ handler: @escaping Handler) {
        handlers.withLock { $0[event, default: []].append(handler) }
    }

    /// Runs the handlers of an event another server sent.
    public func dispatch(_ event: String, _ args: [JSONValue]) {
        for handler in handlers.withLock({ $0[event] ?? [] }) { handler(args) }
    }
}

/// A namespace: a separate channel of communication multiplexed over each connection, with
/// its own middlewares, connection handlers, sockets and rooms.
///
/// ```swift
/// let admin = io.of("/admin")
/// admin.use { socket in
///     guard socket.handshake.auth["token"] == "secret" else {
///         throw ConnectionRefused("not authorized", data: ["code": 401])
///     }
/// }
/// admin.onConnection { socket in socket.emit("welcome", "admin") }
/// ```
public final class Namespace: Sendable {
    /// A middleware runs for each connecting socket before its connection handlers; throwing
    /// refuses the connection (with ``ConnectionRefused`` to choose the message and data).
    public typealias Middleware = @Sendable (Socket) async throws -> Void
    /// Called for each socket that joined the namespace.
    public typealias ConnectionHandler = @Sendable (Socket) async -> Void
    /// Handles one event of any socket of the namespace: the socket, the event's arguments and
    /// the acknowledgement its sender may wait for.
    public typealias SocketEventHandler = @Sendable (_ socket: Socket, _ args: [JSONValue], _ ack: Acknowledgement) async -> Void
    /// Called once for each socket that leaves the namespace.
    public typealias DisconnectHandler = @Sendable (_ socket: Socket, _ reason: DisconnectReason) async -> Void

    /// The name, such as `/` or `/admin`.
    public let name: String
    /// The adapter keeping this namespace's rooms and carrying its broadcasts.
    public let adapter: any Adapter
    let local: LocalSockets
    let recovery: ConnectionStateRecovery?
    let logger: Logger
    let metrics: SocketIOMetrics
    /// The server's count of sockets running handlers.
    let activity: HandlerActivity
    private let serverSideEvents = ServerSideEvents()
    private struct Handlers {
        var middlewares: [Middleware] = []
        var connection: [ConnectionHandler] = []
        /// By event; shared by every socket, so they cost an idle socket nothing.
        var events: [String: [SocketEventHandler]] = [:]
        var disconnect: [DisconnectHandler] = []
    }

    private let handlers = Mutex(Handlers())

    init(
        name: String,
        activity: HandlerActivity,
        recovery: ConnectionStateRecovery?,
        logger: Logger,
        adapterFactory: @Sendable (AdapterContext) -> any Adapter
    ) {
        self.name = name
        self.activity = activity
        self.recovery = recovery
        var logger = logger
        logger[metadataKey: "sio.nsp"] = .string(name)
        self.logger = logger
        self.metrics = SocketIOMetrics(namespace: name)
        let local = LocalSockets()
        self.local = local
        self.adapter = adapterFactory(AdapterContext(namespace: name, sockets: local, recovery: recovery, serverSideEvents: serverSideEvents))
    }

    /// Adds a middleware.
    public func use(_ middleware: @escaping Middleware) {
        handlers.withLock { $0.middlewares.append(middleware) }
    }

    /// Adds a connection handler.
    public func onConnection(_ handler: @escaping ConnectionHandler) {
        handlers.withLock { $0.connection.append(handler) }
    }

    /// Adds a handler for `event` from any socket of the namespace. It runs on the socket's
    /// serial queue like the socket's own handlers (``Socket/on(_:_:)``), after them, in the
    /// order added.
    ///
    /// Prefer these to per-socket handlers for a server with many connections: a closure
    /// registered on each socket costs memory for as long as the socket lives, one registered
    /// here costs it once.
    ///
    /// ```swift
    /// io.sockets.on("chat") { socket, args, ack in
    ///     socket.to("lobby").emit("chat", args)
    ///     ack("ok")
    /// }
    /// ```
    public func on(_ event: String, _ handler: @escaping SocketEventHandler) {
        handlers.withLock { $0.events[event, default: []].append(handler) }
    }

    /// Adds a handler called once for each socket that leaves the namespace, after the socket's
    /// own disconnect handlers (``Socket/onDisconnect(_:)``).
    public func onDisconnect(_ handler: @escaping DisconnectHandler) {
        handlers.withLock { $0.disconnect.append(handler) }
    }

    /// Sends an event to this namespace on every other server of a cluster (socket.io's
    /// `serverSideEmit`); their ``onServerSideEmit(_:_:)`` handlers get it. On a single server
    /// it goes nowhere.
    public func serverSideEmit(_ event: String, _ args: JSONValue...) {
        adapter.serverSideEmit(event, args)
    }

    /// Adds a handler of an event another server of the cluster sends with
    /// ``serverSideEmit(_:_:)``.
    public func onServerSideEmit(_ event: String, _ handler: @escaping ServerSideEvents.Handler) {
        serverSideEvents.on(event, handler)
    }

    /// The namespace's handlers of `event`.
    func eventHandlers(_ event: String) -> [SocketEventHandler] {
        handlers.withLock { $0.events[event] ?? [] }
    }

    /// The namespace's disconnect handlers.
    var disconnectHandlers: [DisconnectHandler] {
        handlers.withLock { $0.disconnect }
    }

    /// The sockets of this namespace on this node.
    public var sockets: [Socket] { local.all }

    /// The number of sockets of this namespace on this node.
    public var socketCount: Int { local.count }

    /// The local socket with this id.
    public func socket(id: String) -> Socket? { local.socket(id: id) }

    func sockets(ids: Set<String>) -> [Socket] { local.sockets(ids: ids) }

    // MARK: Broadcasting

    /// A broadcast to every socket of the namespace.
    public var broadcast: BroadcastOperator { BroadcastOperator(namespace: self) }

    /// A broadcast to the members of `rooms`.
    public func to(_ rooms: String...) -> BroadcastOperator { broadcast.to(Set(rooms)) }

    /// Same as ``to(_:)``.
    public func `in`(_ rooms: String...) -> BroadcastOperator { broadcast.to(Set(rooms)) }

    /// A broadcast to every socket except the members of `rooms`.
    public func except(_ rooms: String...) -> BroadcastOperator { broadcast.except(Set(rooms)) }

    /// A volatile broadcast to every socket.
    public var volatile: BroadcastOperator { broadcast.volatile }

    /// Emits an event to every socket of the namespace.
    public func emit(_ event: String, _ args: JSONValue...) {
        broadcast.emit(event, args)
    }

    // MARK: Connecting

    /// Runs the connection of `connection` to this namespace: recovery, middlewares, the
    /// CONNECT answer, missed packets, then the connection handlers.
    func connect(_ connection: ClientConnection, auth: JSONObject) async {
        var restored: RecoveredSession?
        if recovery != nil, let pid = auth["pid"]?.stringValue, let offset = auth["offset"]?.stringValue {
            restored = adapter.restoreSession(pid: pid, offset: offset)
        }
        // A v3 client derives its socket id from the engine id, so it must be that.
        let legacyID = name == "/" ? connection.engine.id : name + "#" + connection.engine.id
        let socket = Socket(
            id: restored?.session.id ?? (connection.isLegacy ? legacyID : SessionID.make()),
            pid: recovery == nil || connection.isLegacy ? nil : (restored?.session.pid ?? SessionID.make()),
            namespace: self,
            handshake: connection.handshake(auth: auth),
            recovered: restored != nil,
            data: restored?.session.data ?? [:],
            connection: connection
        )
        let (middlewares, connectionHandlers) = handlers.withLock { ($0.middlewares, $0.connection) }
        if restored == nil || recovery?.skipMiddlewares == false {
            for middleware in middlewares {
                do {
                    try await middleware(socket)
                } catch {
                    let refusal = (error as? ConnectionRefused) ?? ConnectionRefused("\(error)")
                    logger.debug("connection refused", metadata: ["sio.error": .string(refusal.message)])
                    SocketIOMetrics.error("connection_refused")
                    connection.refuse(namespace: name, payload: connection.isLegacy ? (refusal.data ?? .string(refusal.message)) : refusal.payload)
                    return
                }
            }
        }
        guard connection.attach(socket) else { return }
        local.insert(socket)
        adapter.addAll(socket.id, rooms: Set([socket.id]).union(restored?.session.rooms ?? []))
        metrics.sockets.increment()
        // The CONNECT answer and the connection handlers run as the socket's first job: events
        // the client sends once it has the answer queue behind the handlers that listen to them.
        let connect: SocketIOPacket
        if connection.isLegacy {
            connect = SocketIOPacket(.connect, namespace: name)
        } else {
            var reply: JSONObject = ["sid": .string(socket.id)]
            if let pid = socket.pid { reply["pid"] = .string(pid) }
            connect = SocketIOPacket(.connect, namespace: name, data: .object(reply))
        }
        let missed = restored?.missedPackets ?? []
        logger.debug("socket connected", metadata: ["sio.sid": .string(socket.id), "sio.recovered": .stringConvertible(restored != nil)])
        socket.enqueue {
            socket.send(connect)
            for packets in missed { connection.write(packets, volatile: false) }
            for handler in connectionHandlers { await handler(socket) }
        }
    }

    func removeSocket(_ socket: Socket) {
        if local.remove(socket) { metrics.sockets.decrement() }
    }
}

/// The sockets of one namespace on this node, by id: the table an adapter delivers through.
final class LocalSockets: LocalSocketDirectory {
    private let table = Mutex<[String: Socket]>([:])

    var all: [Socket] { table.withLock { Array($0.values) } }
    var count: Int { table.withLock { $0.count } }

    func socket(id: String) -> Socket? { table.withLock { $0[id] } }

    func sockets(ids: some Sequence<String>) -> [Socket] {
        table.withLock { table in ids.compactMap { table[$0] } }
    }

    func insert(_ socket: Socket) {
        table.withLock { $0[socket.id] = socket }
    }

    /// Removes `socket` if it is the one registered under its id.
    func remove(_ socket: Socket) -> Bool {
        table.withLock { table in
            guard table[socket.id] === socket else { return false }
            table[socket.id] = nil
            return true
        }
    }

    func recipients(_ ids: some Sequence<String>) -> LocalRecipients {
        table.withLock { table in
            var found: [String] = []
            var sessions: [EngineSocket] = []
            for id in ids {
                guard let socket = table[id] else { continue }
                found.append(id)
                sessions.append(socket.connection.engine)
            }
            return LocalRecipients(ids: found, sessions: sessions)
        }
    }

    func deliver(_ packets: [EnginePacket], to recipients: LocalRecipients, volatile: Bool) {
        EngineSocket.send(packets, to: recipients.sessions, volatile: volatile)
    }

    func disconnect(_ ids: some Sequence<String>, close: Bool) {
        for socket in sockets(ids: ids) {
            socket.disconnect(close: close)
        }
    }
}
