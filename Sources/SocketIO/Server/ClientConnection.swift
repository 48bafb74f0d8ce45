import EngineIO
import Foundation
import Logging
import NIOCore
import Synchronization

/// One client's Engine.IO session seen from Socket.IO: decodes its packets, routes them to
/// its sockets (one per namespace it joined), and writes their packets.
final class ClientConnection: Sendable {
    let engine: EngineSocket
    private let server: SocketIOServer

    private struct State {
        var assembler: PacketAssembler
        var sockets: [String: Socket] = [:]
        /// Namespaces whose CONNECT is being handled (an array: rarely more than one, and an
        /// empty one keeps no storage).
        var connecting: [String] = []
        var connectTimer: Scheduled<Void>?
        var closed = false
    }

    private let state: Mutex<State>

    init(engine: EngineSocket, server: SocketIOServer) {
        self.engine = engine
        self.server = server
        self.state = Mutex(State(assembler: PacketAssembler(maxAttachments: server.configuration.maxAttachments)))
    }

    func start() {
        engine.onMessage { [self] message in receive(message) }
        engine.onClose { [self] reason in closed(reason) }
        // A strong capture (no weak reference, so no side table for the connection): the timer is
        // cancelled as soon as a namespace is joined or the connection closes.
        let timer = engine.eventLoop.scheduleTask(in: server.configuration.connectTimeout) { [self] in
            if self.state.withLock({ $0.sockets.isEmpty }) {
                self.server.logger.debug("no namespace joined in time", metadata: ["eio.sid": .string(self.engine.id)])
                self.engine.close(reason: .forcedClose)
            }
        }
        state.withLock { $0.connectTimer = timer }
        // v3 clients are in the main namespace from the start; the server connects them.
        if engine.protocolVersion == .v3 { connect(SocketIOPacket(.connect, namespace: "/")) }
    }

    /// Whether the client speaks the Socket.IO v4 protocol over Engine.IO v3.
    var isLegacy: Bool { engine.protocolVersion == .v3 }

    func handshake(auth: JSONObject) -> Handshake {
        Handshake(auth: auth, request: engine.handshake)
    }

    // MARK: Incoming

    private func receive(_ message: EngineMessage) {
        let decoded = state.withLock { state in
            Result { () throws(SocketIODecodingError) -> SocketIOPacket? in try state.assembler.feed(message) }
        }
        let packet: SocketIOPacket
        switch decoded {
        case .failure(let error):
            server.logger.debug("invalid packet, closing", metadata: ["eio.sid": .string(engine.id), "sio.error": .string(error.reason)])
            SocketIOMetrics.error("parse_error")
            engine.close(reason: .parseError)
            return
        case .success(nil):
            return
        case .success(let complete?):
            packet = complete
        }
        switch packet.kind {
        case .connect:
            connect(packet)
        case .disconnect:
            if let socket = detach(namespace: packet.namespace) {
                socket.left(reason: .clientNamespaceDisconnect)
            }
        case .event, .binaryEvent:
            guard let socket = socket(namespace: packet.namespace) else { return }
            socket.namespace.metrics.eventsReceived.increment()
            socket.receiveEvent(packet)
        case .ack, .binaryAck:
            socket(namespace: packet.namespace)?.receiveAck(packet)
        case .connectError:
            // Only servers send CONNECT_ERROR; a client that does is broken.
            SocketIOMetrics.error("unexpected_packet")
            engine.close(reason: .parseError)
        }
    }

    private func socket(namespace: String) -> Socket? {
        state.withLock { $0.sockets[namespace] }
    }

    private func connect(_ packet: SocketIOPacket) {
        // v3 clients put their auth in the namespace's query string: `/admin?token=x`.
        var name = packet.namespace
        var auth = packet.data?.objectValue ?? [:]
        if isLegacy, let question = name.firstIndex(of: "?") {
            auth = [:]
            for (key, value) in Self.queryItems(String(name[name.index(after: question)...])) { auth[key] = .string(value) }
            name = String(name[..<question])
        }
        guard let namespace = server.namespace(named: name) else {
            SocketIOMetrics.error("invalid_namespace")
            refuse(namespace: name, payload: ["message": "Invalid namespace"])
            return
        }
        let admitted = state.withLock { state -> Bool in
            guard !state.closed, state.sockets[namespace.name] == nil, !state.connecting.contains(namespace.name) else { return false }
            state.connecting.append(namespace.name)
            return true
        }
        guard admitted else { return }
        Task { await namespace.connect(self, auth: auth) }
    }

    static func queryItems(_ query: String) -> [(String, String)] {
        query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in (text.replacingOccurrences(of: "+", with: " ")).removingPercentEncoding ?? String(text) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// Answers a CONNECT with CONNECT_ERROR.
    func refuse(namespace: String, payload: JSONValue) {
        state.withLock { $0.connecting = $0.connecting.filter { $0 != namespace } }
        write(SocketIOPacket(.connectError, namespace: namespace, data: payload).encode(), volatile: false)
    }

    /// Registers a socket that passed its middlewares. Returns `false` if the connection
    /// closed meanwhile.
    func attach(_ socket: Socket) -> Bool {
        let timer = state.withLock { state -> Scheduled<Void>?? in
            state.connecting = state.connecting.filter { $0 != socket.namespace.name }
            guard !state.closed else { return .none }
            state.sockets[socket.namespace.name] = socket
            defer { state.connectTimer = nil }
            return .some(state.connectTimer)
        }
        guard let timer else { return false }
        timer?.cancel()
        return true
    }

    /// Unregisters the socket of `namespace`.
    @discardableResult
    func detach(namespace: String) -> Socket? {
        state.withLock { $0.sockets.removeValue(forKey: namespace) }
    }

    func detach(_ socket: Socket) {
        state.withLock { state in
            if state.sockets[socket.namespace.name] === socket { state.sockets[socket.namespace.name] = nil }
        }
    }

    // MARK: Outgoing

    func write(_ packets: [EnginePacket], volatile: Bool) {
        engine.send(packets, volatile: volatile)
    }

    /// Closes the whole connection.
    func close() {
        engine.close(reason: .forcedClose)
    }

    private func closed(_ reason: EngineCloseReason) {
        let (sockets, timer) = state.withLock { state in
            state.closed = true
            let sockets = Array(state.sockets.values)
            state.sockets.removeAll()
            let timer = state.connectTimer
            state.connectTimer = nil
            return (sockets, timer)
        }
        timer?.cancel()
        let reason = DisconnectReason(rawValue: reason.rawValue)
        for socket in sockets { socket.left(reason: reason) }
    }
}
