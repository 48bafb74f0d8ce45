import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// An Engine.IO v4 server: the sessions and the protocol rules, independent of any listening
/// socket. Serve it with ``EngineHTTPServer``.
///
/// ```swift
/// import EngineIO
///
/// // An echo server at /engine.io/ with a 10-second ping interval.
/// var configuration = EngineConfiguration(path: "/engine.io/")
/// configuration.pingInterval = .seconds(10)
/// let engine = EngineServer(configuration: configuration)
/// engine.onConnection { socket in
///     socket.onMessage { message in
///         switch message {
///         case .text(let text): socket.send(text)
///         case .binary(let bytes): socket.send(binary: bytes)
///         }
///     }
/// }
/// let server = EngineHTTPServer(engine: engine)
/// try await server.start(host: "127.0.0.1", port: 3000)
/// try await server.run()   // until shutdown() is called
/// ```
public final class EngineServer: Sendable {
    /// The engine's options.
    public let configuration: EngineConfiguration
    let logger: Logger
    let metrics = EngineMetrics()
    private let sessions = Mutex<[String: EngineSocket]>([:])
    /// The handler, boxed in a struct: a bare closure kept in a `Mutex` is re-abstracted on
    /// every `withLock` (the lock's value is generic and passed `inout`), each time wrapping one
    /// more thunk around it, which made every new connection slower than the one before.
    private struct ConnectionHandler {
        let call: @Sendable (EngineSocket) -> Void
    }

    private let connectionHandler = Mutex<ConnectionHandler?>(nil)

    /// An engine with `configuration`, logging to `logger`.
    public init(configuration: EngineConfiguration = EngineConfiguration(), logger: Logger = Logger(label: "engineio")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Sets the handler called for each new session, before any of its messages is delivered.
    public func onConnection(_ handler: @escaping @Sendable (EngineSocket) -> Void) {
        connectionHandler.withLock { $0 = ConnectionHandler(call: handler) }
    }

    /// The open session with this id.
    public func session(id: String) -> EngineSocket? {
        sessions.withLock { $0[id] }
    }

    /// The number of open sessions.
    public var sessionCount: Int {
        sessions.withLock { $0.count }
    }

    /// When a full server last said so in its log (uptime in nanoseconds): at most once every
    /// ten seconds, for a flood of refused handshakes would flood the log too.
    private let lastFullWarning = Atomic<UInt64>(0)

    /// Whether ``EngineConfiguration/maxSessions`` sessions are open.
    var isFull: Bool { sessionCount >= configuration.maxSessions }

    /// The refusal of a handshake while the server is full (``isFull``), logged; `nil` while
    /// there is room. Its answer is counted like every HTTP error, as `http_6`.
    func refusalWhenFull() -> EngineHTTPError? {
        guard isFull else { return nil }
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastFullWarning.load(ordering: .relaxed)
        if last == 0 || now - last >= 10_000_000_000,
           lastFullWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning(
                "the server is full: refusing new connections with 503",
                metadata: ["eio.sessions": .stringConvertible(configuration.maxSessions)]
            )
        }
        return EngineHTTPError(.serverFull)
    }

    /// Closes every session with `reason`.
    public func closeAll(reason: EngineCloseReason = .serverShuttingDown) {
        let all = sessions.withLock { Array($0.values) }
        for session in all { session.close(reason: reason) }
    }

    func phase(ofSession id: String) -> SessionStateMachine.Phase? {
        session(id: id)?.phase
    }

    /// Opens a session. `deliverOpen` must put the open packet on the wire before anything
    /// else; it runs before the connection handler sees the session.
    func openSession(
        transport: EngineTransport,
        handshake: EngineHandshakeRequest,
        eventLoop: any EventLoop,
        deliverOpen: (EngineSocket, EnginePacket) -> Void
    ) -> EngineSocket {
        let query = handshake.query
        let version = EngineRequestKind.version(of: query) ?? .v4
        let session = EngineSocket(
            id: SessionID.make(),
            transport: transport,
            protocolVersion: version,
            base64Only: query["b64"].map { $0 == "1" || $0 == "true" } ?? false,
            handshake: handshake,
            eventLoop: eventLoop,
            server: self
        )
        sessions.withLock { $0[session.id] = session }
        metrics.opened(transport)
        deliverOpen(session, openPacket(sid: session.id, transport: transport, version: version))
        logger.debug("session opened", metadata: ["eio.sid": .string(session.id), "eio.transport": .string(transport.rawValue)])
        connectionHandler.withLock { $0 }?.call(session)
        session.startHeartbeat()
        return session
    }

    /// A session closed: it leaves the table.
    func sessionEnded(_ session: EngineSocket, transport: EngineTransport) {
        sessions.withLock { _ = $0.removeValue(forKey: session.id) }
        metrics.closed(transport)
    }

    /// The open packet: v3 has no `maxPayload`.
    func openPacket(sid: String, transport: EngineTransport, version: EngineProtocolVersion = .v4) -> EnginePacket {
        let upgrades = transport == .polling && configuration.allowUpgrades && configuration.transports.contains(.websocket)
        var json = "{\"sid\":\"\(sid)\",\"upgrades\":[\(upgrades ? "\"websocket\"" : "")],"
            + "\"pingInterval\":\(configuration.pingInterval.milliseconds),"
            + "\"pingTimeout\":\(configuration.pingTimeout.milliseconds)"
        if version == .v4 { json += ",\"maxPayload\":\(configuration.maxPayload)" }
        return EnginePacket(.open, json + "}")
    }
}

extension TimeAmount {
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
