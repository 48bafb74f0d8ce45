import DequeModule
import EngineIO
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// What a client presented when it joined a namespace.
public struct Handshake: Sendable {
    /// The CONNECT packet's payload (`auth` on the client side).
    public let auth: JSONObject
    /// The HTTP request that opened the connection.
    let request: EngineHandshakeRequest

    /// The headers of the HTTP request that opened the connection (without those of the
    /// WebSocket upgrade: `Connection`, `Upgrade`, `Sec-WebSocket-*`).
    public var headers: HTTPHeaders { request.headers }
    /// The query parameters of that request.
    public var query: [String: String] { request.query }
    /// The client's address, when known.
    public var address: String? { request.remoteAddress?.ipAddress }
    /// The request URI.
    public var url: String { request.uri }
}

/// A client's presence in one namespace: receives its events, sends it events, joins rooms.
///
/// Event handlers of one socket run one at a time, in the order the events arrived, after the
/// namespace's connection handlers; different sockets run concurrently. Handlers registered on
/// the namespace (``Namespace/on(_:_:)``) run for every socket, after the socket's own.
///
/// ```swift
/// io.onConnection { socket in
///     socket.join("lobby")
///     socket.on("chat") { args, ack in
///         socket.to("lobby").emit("chat", args)
///         ack("ok")
///     }
///     socket.onDisconnect { reason in print(socket.id, "left:", reason) }
/// }
/// ```
public final class Socket: Sendable {
    /// Handles one event: its arguments and the acknowledgement the sender may wait for.
    public typealias EventHandler = @Sendable (_ args: [JSONValue], _ ack: Acknowledgement) async -> Void

    /// The socket's id in its namespace (not the Engine.IO session id). Each socket is a
    /// member of the room named by its id.
    public let id: String
    /// The private id a client presents to recover this socket's state.
    let pid: String?
    /// The namespace the socket belongs to.
    public let namespace: Namespace
    /// What the client presented when it connected.
    public let handshake: Handshake
    /// Whether this socket was restored by connection state recovery (its id, rooms and data
    /// are those of the previous connection, and the broadcasts it missed were replayed).
    public let recovered: Bool
    let connection: ClientConnection

    /// The namespace's logger with this socket's id. Made when something is logged, not kept:
    /// a logger with its own metadata costs each of thousands of sockets half a kilobyte.
    var logger: Logger {
        var logger = namespace.logger
        logger[metadataKey: "sio.sid"] = .string(id)
        return logger
    }

    private typealias Job = @Sendable () async -> Void

    private struct PendingAck {
        let continuation: CheckedContinuation<[JSONValue], any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        /// In the order added. A flat list, not a dictionary of lists: a socket has a few dozen
        /// handlers at most, and thousands of idle sockets each holding a hash table and an array
        /// per event cost more memory than a short scan costs time.
        var handlers: [(event: String, handler: EventHandler)] = []
        var anyHandlers: [@Sendable (String, [JSONValue]) async -> Void] = []
        var disconnectHandlers: [@Sendable (DisconnectReason) async -> Void] = []
        var data: JSONObject
        var pendingAcks: [Int: PendingAck] = [:]
        var nextAckID = 0
        var connected = true
        var inbox: Deque<Job> = []
        var draining = false
    }

    private let state: Mutex<State>

    init(
        id: String,
        pid: String?,
        namespace: Namespace,
        handshake: Handshake,
        recovered: Bool,
        data: JSONObject,
        connection: ClientConnection
    ) {
        self.id = id
        self.pid = pid
        self.namespace = namespace
        self.handshake = handshake
        self.recovered = recovered
        self.connection = connection
        self.state = Mutex(State(data: data))
    }

    /// Whether the socket is still in its namespace.
    public var connected: Bool { state.withLock { $0.connected } }

    /// Application data attached to the socket; kept across a recovered reconnection.
    public var data: JSONObject {
        get { state.withLock { $0.data } }
        set { state.withLock { $0.data = newValue } }
    }

    /// The Engine.IO session carrying this socket.
    public var engineSocket: EngineSocket { connection.engine }

    // MARK: Handlers

    /// Adds a handler for `event`. Several handlers of one event run in the order added.
    public func on(_ event: String, _ handler: @escaping EventHandler) {
        state.withLock { $0.handlers.append((event, handler)) }
    }

    /// Removes every handler of `event`.
    public func off(_ event: String) {
        state.withLock { $0.handlers.removeAll { $0.event == event } }
    }

    /// Adds a handler that sees every incoming event, before its own handlers.
    public func onAny(_ handler: @escaping @Sendable (_ event: String, _ args: [JSONValue]) async -> Void) {
        state.withLock { $0.anyHandlers.append(handler) }
    }

    /// Adds a handler called once when the socket leaves the namespace, after the handlers of
    /// every event received before.
    public func onDisconnect(_ handler: @escaping @Sendable (DisconnectReason) async -> Void) {
        state.withLock { $0.disconnectHandlers.append(handler) }
    }

    // MARK: Emitting

    /// Sends an event to this client.
    public func emit(_ event: String, _ args: JSONValue...) {
        emit(event, args)
    }

    /// Sends an event to this client.
    public func emit(_ event: String, _ args: [JSONValue]) {
        send(.event(event, args, namespace: namespace.name))
    }

    /// Sends an event that may be dropped if the client cannot take it at once.
    public func emitVolatile(_ event: String, _ args: [JSONValue]) {
        send(.event(event, args, namespace: namespace.name), volatile: true)
    }

    /// Sends an event and waits for the client's acknowledgement.
    ///
    /// - Throws: ``AcknowledgementError/timeout`` when no ack comes within `timeout`,
    ///   ``AcknowledgementError/disconnected`` when the socket leaves first.
    public func emitWithAck(_ event: String, _ args: JSONValue..., timeout: TimeAmount = .seconds(10)) async throws -> [JSONValue] {
        try await emitWithAck(event, args, timeout: timeout)
    }

    /// Sends an event and waits for the client's acknowledgement.
    public func emitWithAck(_ event: String, _ args: [JSONValue], timeout: TimeAmount = .seconds(10)) async throws -> [JSONValue] {
        try await withCheckedThrowingContinuation { continuation in
            let id = state.withLock { state -> Int? in
                guard state.connected else { return nil }
                let id = state.nextAckID
                state.nextAckID += 1
                state.pendingAcks[id] = PendingAck(continuation: continuation)
                return id
            }
            guard let id else {
                continuation.resume(throwing: AcknowledgementError.disconnected)
                return
            }
            // Strong captures here and below: a weak one would give the socket a side table, which
            // slows every retain of it on the fan-out path. The timer goes with the ack.
            let timer = connection.engine.eventLoop.scheduleTask(in: timeout) { [self] in
                self.resolveAck(id, .failure(AcknowledgementError.timeout))
            }
            let settled = state.withLock { state -> Bool in
                guard state.pendingAcks[id] != nil else { return true }
                state.pendingAcks[id]?.timer = timer
                return false
            }
            if settled { timer.cancel() }
            send(.event(event, args, namespace: namespace.name, id: id))
        }
    }

    private func resolveAck(_ id: Int, _ result: Result<[JSONValue], any Error>) {
        guard let pending = state.withLock({ $0.pendingAcks.removeValue(forKey: id) }) else { return }
        pending.timer?.cancel()
        pending.continuation.resume(with: result)
    }

    func send(_ packet: SocketIOPacket, volatile: Bool = false) {
        connection.write(packet.encode(), volatile: volatile)
    }

    // MARK: Rooms

    /// Joins `rooms`.
    public func join(_ rooms: String...) {
        namespace.adapter.addAll(id, rooms: Set(rooms))
    }

    /// Joins `rooms`.
    public func join(_ rooms: Set<String>) {
        namespace.adapter.addAll(id, rooms: rooms)
    }

    /// Leaves `room`.
    public func leave(_ room: String) {
        namespace.adapter.remove(id, from: room)
    }

    /// The rooms the socket is in, including the room of its own id.
    public var rooms: Set<String> {
        namespace.adapter.rooms(of: id)
    }

    /// A broadcast to the members of `rooms`, this socket excluded.
    public func to(_ rooms: String...) -> BroadcastOperator {
        broadcast.to(Set(rooms))
    }

    /// A broadcast to every other socket of the namespace.
    public var broadcast: BroadcastOperator {
        BroadcastOperator(namespace: namespace, options: BroadcastOptions(except: [id]))
    }

    // MARK: Incoming

    /// Runs `job` after every job queued before it; one drain task at a time, none while idle.
    ///
    /// The drain task starts on the calling thread (the connection's event loop) and stays
    /// there until a job really suspends, e.g. on a database read. Most events (a message to
    /// a room whose members are cached, a typing notice) never suspend, so they are handled
    /// without a hop to the concurrency pool and back (about 5% of the server's CPU at 5,000
    /// deliveries/s, benchmarks/README.md).
    func enqueue(_ job: @escaping @Sendable () async -> Void) {
        let start = state.withLock { state -> Bool in
            state.inbox.append(job)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        guard start else { return }
        namespace.activity.begin()
        Task.immediate { await self.drain() }
    }

    private func drain() async {
        while let job = state.withLock({ state -> Job? in
            if let job = state.inbox.popFirst() { return job }
            state.draining = false
            return nil
        }) {
            await job()
        }
        namespace.activity.end()
    }

    func receiveEvent(_ packet: SocketIOPacket) {
        guard let name = packet.eventName else { return }
        let args = packet.arguments
        let ack = Acknowledgement.answering(packet) { [self] reply in self.send(reply) }
        enqueue { [self] in
            let (handlers, anyHandlers) = state.withLock { state in
                (state.handlers.compactMap { $0.event == name ? $0.handler : nil }, state.anyHandlers)
            }
            for handler in anyHandlers { await handler(name, args) }
            for handler in handlers { await handler(args, ack) }
            for handler in namespace.eventHandlers(name) { await handler(self, args, ack) }
        }
    }

    func receiveAck(_ packet: SocketIOPacket) {
        guard let id = packet.id else { return }
        resolveAck(id, .success(packet.arguments))
    }

    // MARK: Leaving

    /// Removes the socket from its namespace. With `close`, the whole connection (every
    /// namespace of this client) is closed too.
    public func disconnect(close: Bool = false) {
        guard connected else { return }
        // Leave first: a client that closes its transport as soon as it reads the DISCONNECT
        // packet must find the socket gone already, not make it leave for "transport close".
        connection.detach(self)
        left(reason: .serverNamespaceDisconnect)
        send(SocketIOPacket(.disconnect, namespace: namespace.name))
        if close { connection.close() }
    }

    /// The socket left its namespace: tables updated, session kept for recovery when the
    /// reason allows, pending acks failed, disconnect handlers queued.
    func left(reason: DisconnectReason) {
        let pending = state.withLock { state -> [PendingAck]? in
            guard state.connected else { return nil }
            state.connected = false
            let pending = Array(state.pendingAcks.values)
            state.pendingAcks.removeAll()
            return pending
        }
        guard let pending else { return }
        logger.debug("socket left", metadata: ["sio.reason": .string(reason.rawValue)])
        if reason.isRecoverable, let pid {
            namespace.adapter.persistSession(PersistedSession(id: id, pid: pid, rooms: rooms, data: data))
        }
        namespace.adapter.removeAll(id)
        namespace.removeSocket(self)
        for ack in pending {
            ack.timer?.cancel()
            ack.continuation.resume(throwing: AcknowledgementError.disconnected)
        }
        enqueue { [self] in
            let handlers = state.withLock { state in
                let handlers = state.disconnectHandlers
                state.handlers.removeAll()
                state.anyHandlers.removeAll()
                state.disconnectHandlers.removeAll()
                return handlers
            }
            for handler in handlers { await handler(reason) }
            for handler in namespace.disconnectHandlers { await handler(self, reason) }
        }
    }
}
