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

    /// Open sessions by client address, kept only under ``EngineConfiguration/maxSessionsPerAddress``.
    private let sessionsByAddress = Mutex<[String: Int]>([:])

    private var limitsAddresses: Bool { configuration.maxSessionsPerAddress != .max }

    /// Where a handshake comes from: the peer's IP address or, from a trusted proxy, the last
    /// address in `X-Forwarded-For` that is not one (``EngineConfiguration/trustedProxies``).
    func clientAddress(_ handshake: EngineHandshakeRequest) -> String? {
        clientAddress(headers: handshake.headers, remoteAddress: handshake.remoteAddress)
    }

    /// Where a request of the server's other routes comes from, by the same rule: for limits
    /// of its own by client address.
    public func clientAddress(of request: WebRequest) -> String? {
        clientAddress(headers: request.headers, remoteAddress: request.remoteAddress)
    }

    func clientAddress(headers: HTTPHeaders, remoteAddress: SocketAddress?) -> String? {
        guard let peer = remoteAddress?.ipAddress else { return nil }
        guard configuration.trustedProxies.contains(peer) else { return peer }
        let forwarded = headers["X-Forwarded-For"].flatMap { $0.split(separator: ",") }.compactMap { entry -> String? in
            let address = entry.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
            return address.isEmpty ? nil : String(address)
        }
        return forwarded.last { !configuration.trustedProxies.contains($0) } ?? forwarded.first ?? peer
    }

    /// Why a handshake from `remoteAddress` with `headers` may not open a session just now (the
    /// server is full, or its address holds as many sessions as it may); `nil` when it may.
    func admissionRefusal(headers: HTTPHeaders, remoteAddress: SocketAddress?) -> EngineHTTPError? {
        if sessionCount >= configuration.maxSessions { return EngineHTTPError(.serverFull) }
        guard limitsAddresses, let address = clientAddress(headers: headers, remoteAddress: remoteAddress) else { return nil }
        let open = sessionsByAddress.withLock { $0[address] ?? 0 }
        return open >= configuration.maxSessionsPerAddress ? EngineHTTPError(.tooManyFromAddress) : nil
    }

    /// ``admissionRefusal(headers:remoteAddress:)``, logged: a full server says so at most every
    /// ten seconds (a flood of refused handshakes would flood the log too), an address at its
    /// limit at level debug. The answer is counted like every HTTP error, as `http_6` or `http_7`.
    func refuseAdmission(headers: HTTPHeaders, remoteAddress: SocketAddress?) -> EngineHTTPError? {
        guard let refusal = admissionRefusal(headers: headers, remoteAddress: remoteAddress) else { return nil }
        if refusal.code == .tooManyFromAddress {
            logger.debug("too many connections from one address", metadata: [
                "eio.address": .string(clientAddress(headers: headers, remoteAddress: remoteAddress) ?? "?"),
            ])
            return refusal
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastFullWarning.load(ordering: .relaxed)
        if last == 0 || now - last >= 10_000_000_000,
           lastFullWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
            logger.warning(
                "the server is full: refusing new connections with 503",
                metadata: ["eio.sessions": .stringConvertible(configuration.maxSessions)]
            )
        }
        return refusal
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
        if limitsAddresses, let address = clientAddress(handshake) {
            sessionsByAddress.withLock { $0[address, default: 0] += 1 }
        }
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
        if limitsAddresses, let address = clientAddress(session.handshake) {
            sessionsByAddress.withLock { counts in
                if let open = counts[address], open > 1 { counts[address] = open - 1 } else { counts[address] = nil }
            }
        }
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
