import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization

/// A message an Engine.IO client sent: the payload of a `message` packet.
public enum EngineMessage: Sendable, Hashable {
    /// A text message.
    case text(String)
    /// A binary message.
    case binary(ByteBuffer)
}

/// Facts about the HTTP request that opened a session. Kept for as long as the session lives,
/// so it keeps only what may still mean something: not the headers of the WebSocket upgrade
/// itself, and the query parsed from ``uri`` when asked for.
public struct EngineHandshakeRequest: Sendable {
    /// The request headers, without `Connection`, `Upgrade` and `Sec-WebSocket-*`.
    public let headers: HTTPHeaders
    /// The client's address, when known.
    public let remoteAddress: SocketAddress?
    /// The request URI.
    public let uri: String

    /// The decoded query parameters of ``uri``.
    public var query: [String: String] { URIComponents.split(uri).query }

    init(headers: HTTPHeaders, remoteAddress: SocketAddress?, uri: String) {
        self.headers = HTTPHeaders(headers.filter { !Self.isUpgradeHeader($0.name) })
        self.remoteAddress = remoteAddress
        self.uri = uri
    }

    private static func isUpgradeHeader(_ name: String) -> Bool {
        let name = name.lowercased()
        return name == "connection" || name == "upgrade" || name.hasPrefix("sec-websocket-")
    }
}

/// One Engine.IO session: a client connection that survives polling requests and the upgrade
/// to WebSocket.
///
/// Register ``onMessage(_:)`` and ``onClose(_:)`` in the server's connection handler; both are
/// called on NIO threads and must not block. ``send(_:volatile:)`` may be called from anywhere
/// and never waits for the client: packets are queued or written asynchronously, a client whose
/// backlog passes ``EngineConfiguration/maxBufferedBytes`` is closed.
public final class EngineSocket: Sendable {
    /// The session id (`sid`).
    public let id: String
    /// The request that opened the session.
    public let handshake: EngineHandshakeRequest
    /// The event loop that runs this session's timers.
    public let eventLoop: any EventLoop
    /// The Engine.IO revision the client speaks.
    public let protocolVersion: EngineProtocolVersion
    /// A v3 polling client that asked (`b64=1`) for binary packets as base64 text.
    let base64Only: Bool

    private struct Handlers {
        var message: (@Sendable (EngineMessage) -> Void)?
        var close: (@Sendable (EngineCloseReason) -> Void)?
    }

    private struct State {
        var machine: SessionStateMachine
        var heartbeat: Heartbeat
        var parkedPoll: PollResponder?
        var webSocket: (any Channel)?
        var probe: (any Channel)?
        var upgradeTimer: Scheduled<Void>?
        var handlers = Handlers()
    }

    private let state: Mutex<State>
    /// Bytes handed to the WebSocket's event loop and not yet written into the channel.
    private let queuedBytes = Atomic<Int>(0)
    /// The server: its configuration, logger and metrics are shared, not copied into each of
    /// thousands of sessions. It keeps the session in its table until the session ends.
    private let server: EngineServer

    init(
        id: String,
        transport: EngineTransport,
        protocolVersion: EngineProtocolVersion,
        base64Only: Bool,
        handshake: EngineHandshakeRequest,
        eventLoop: any EventLoop,
        server: EngineServer
    ) {
        self.id = id
        self.handshake = handshake
        self.eventLoop = eventLoop
        self.protocolVersion = protocolVersion
        self.base64Only = base64Only
        self.server = server
        let configuration = server.configuration
        self.state = Mutex(
            State(
                machine: SessionStateMachine(transport: transport, maxQueuedBytes: configuration.maxBufferedBytes),
                heartbeat: Heartbeat(
                    pingInterval: configuration.pingInterval, pingTimeout: configuration.pingTimeout, now: .now(),
                    mode: protocolVersion == .v3 ? .clientPings : .serverPings
                )
            )
        )
    }

    /// The server's logger with this session's id. Made when something is logged, not kept: a
    /// logger with its own metadata costs each of thousands of sessions half a kilobyte.
    private var logger: Logger {
        var logger = server.logger
        logger[metadataKey: "eio.sid"] = .string(id)
        return logger
    }

    /// The transport currently carrying the session.
    public var transport: EngineTransport { state.withLock { $0.machine.transport } }

    /// Whether the session has ended.
    public var isClosed: Bool { state.withLock { $0.machine.phase == .closed } }

    var phase: SessionStateMachine.Phase { state.withLock { $0.machine.phase } }

    /// Sets the handler of incoming messages. Set it in the connection handler: messages that
    /// arrive before are dropped.
    public func onMessage(_ handler: @escaping @Sendable (EngineMessage) -> Void) {
        state.withLock { $0.handlers.message = handler }
    }

    /// Sets the handler called once when the session ends. If it has already ended, the
    /// handler is called at once.
    public func onClose(_ handler: @escaping @Sendable (EngineCloseReason) -> Void) {
        let closed = state.withLock { state -> Bool in
            if state.machine.phase == .closed { return true }
            state.handlers.close = handler
            return false
        }
        if closed { handler(.transportClose) }
    }

    // MARK: Sending

    /// Sends a text message.
    public func send(_ text: String) {
        send([.message(text)])
    }

    /// Sends a binary message.
    public func send(binary bytes: ByteBuffer) {
        send([.message(binary: bytes)])
    }

    /// Sends packets, in order. A `volatile` send is dropped instead of queued when the client
    /// cannot take it at once (a polling client between two GETs, a WebSocket whose buffer is
    /// full). Returns `false` when the packets were dropped.
    @discardableResult
    public func send(_ packets: [EnginePacket], volatile: Bool = false) -> Bool {
        let bytes = packets.reduce(0) { $0 + $1.byteCount }
        switch admit(packets, bytes: bytes, volatile: volatile) {
        case .webSocket(let channel):
            server.metrics.sent(packets)
            let version = protocolVersion
            let flusher = LoopFlusher.of(channel.eventLoop)
            // Through the loop's inbox, like broadcasts: one queue keeps a thread's emits and
            // broadcasts in the order it made them.
            LoopInbox.of(channel.eventLoop).submit { [self] in
                flusher.write(packets.map { Self.frame($0, version: version) }, bytes: bytes, to: channel, session: self)
            }
            return true
        case .handled:
            server.metrics.sent(packets)
            return true
        case .dropped:
            return false
        }
    }

    /// Sends the same packets to many sessions: the fan-out of a broadcast. Each frame is built
    /// once (per protocol revision) and its bytes shared by every recipient; the writes are
    /// grouped by event loop, so a broadcast costs one task per loop and one flush per recipient,
    /// not a task per recipient. Volatile packets are dropped for sessions that cannot take them.
    public static func send(_ packets: [EnginePacket], to sessions: some Sequence<EngineSocket>, volatile: Bool = false) {
        let bytes = packets.reduce(0) { $0 + $1.byteCount }
        // One batch per event loop; a server has a loop or two per core, so a linear search of
        // a short array, and each batch sized for every recipient at once rather than grown.
        var batches: [(loop: any EventLoop, writes: [(EngineSocket, any Channel)])] = []
        var sent = 0
        var server: EngineServer?
        for session in sessions {
            if server == nil { server = session.server }
            switch session.admit(packets, bytes: bytes, volatile: volatile) {
            case .webSocket(let channel):
                sent += 1
                let loop = channel.eventLoop
                if let index = batches.firstIndex(where: { $0.loop === loop }) {
                    batches[index].writes.append((session, channel))
                } else {
                    var writes: [(EngineSocket, any Channel)] = []
                    writes.reserveCapacity(sessions.underestimatedCount)
                    writes.append((session, channel))
                    batches.append((loop, writes))
                }
            case .handled:
                sent += 1
            case .dropped:
                continue
            }
        }
        server?.metrics.sent(packets, recipients: sent)
        guard !batches.isEmpty else { return }
        let frames = packets.map { frame($0, version: .v4) }
        let legacyFrames = packets.contains(where: \.isBinary) ? packets.map { frame($0, version: .v3) } : frames
        for batch in batches {
            let flusher = LoopFlusher.of(batch.loop)
            LoopInbox.of(batch.loop).submit {
                for (session, channel) in batch.writes {
                    flusher.write(session.protocolVersion == .v3 ? legacyFrames : frames, bytes: bytes, to: channel, session: session)
                }
            }
        }
    }

    /// What became of packets offered to the session.
    private enum Admission {
        /// To be written to this WebSocket, on its event loop; their bytes are counted as queued.
        case webSocket(any Channel)
        /// Queued for the next poll or handed to a parked one.
        case handled
        /// Dropped: volatile and the client could not take them, the session is closed, or the
        /// client fell too far behind (the session is being closed).
        case dropped
    }

    /// Runs the session's state machine for an outgoing send, under its lock. A WebSocket send
    /// is left to the caller to write; the bytes are counted against the client's budget first.
    private func admit(_ packets: [EnginePacket], bytes: Int, volatile: Bool) -> Admission {
        let (action, poll, channel) = state.withLock { state -> (SessionStateMachine.SendAction, PollResponder?, (any Channel)?) in
            let action = state.machine.send(packets, volatile: volatile)
            switch action {
            case .writeWebSocket:
                guard let channel = state.webSocket else { return (.dropped, nil, nil) }
                if volatile, !channel.isWritable || queuedBytes.load(ordering: .relaxed) > Self.volatileBacklog {
                    return (.dropped, nil, nil)
                }
                guard queuedBytes.add(bytes, ordering: .relaxed).newValue <= server.configuration.maxBufferedBytes else {
                    queuedBytes.subtract(bytes, ordering: .relaxed)
                    return (.overflow, nil, nil)
                }
                return (action, nil, channel)
            case .respondParkedPoll:
                let poll = state.parkedPoll
                state.parkedPoll = nil
                return (action, poll, nil)
            case .queued, .dropped, .overflow:
                return (action, nil, nil)
            }
        }
        switch action {
        case .writeWebSocket:
            return channel.map { .webSocket($0) } ?? .dropped
        case .respondParkedPoll(let packets):
            poll?.respond(packets: packets)
            return .handled
        case .queued:
            return .handled
        case .dropped:
            if volatile { server.metrics.droppedVolatile.increment() }
            return .dropped
        case .overflow:
            logger.notice("client is not keeping up, closing")
            server.metrics.error("slow_client")
            close(reason: .slowClient)
            return .dropped
        }
    }

    /// The backlog waiting for a WebSocket's event loop past which volatile packets are dropped.
    static let volatileBacklog = 64 * 1024

    /// Writes frames handed to `flusher` into the channel and flushes it; runs on the
    /// WebSocket's event loop, when the loop's flusher gets to the channel.
    func writeAndFlush(_ frames: [ByteBuffer], bytes: Int, to channel: any Channel) {
        for frame in frames { channel.write(frame, promise: nil) }
        channel.flush()
        queuedBytes.subtract(bytes, ordering: .relaxed)
        flushed(channel)
    }

    /// Checks the bound once a channel is flushed: the bytes waiting for the loop plus those NIO
    /// holds for the socket may not pass ``EngineConfiguration/maxBufferedBytes``; a client that
    /// lets them is closed.
    private func flushed(_ channel: any Channel) {
        let waiting = queuedBytes.load(ordering: .relaxed)
        // A writable channel holds at most the high water mark: then the bound cannot be passed
        // and the option lookup (a sixtieth of the server's time at 5,000 deliveries/s) is spared.
        if channel.isWritable, waiting + EngineHTTPServer.writeBufferWaterMark.high <= server.configuration.maxBufferedBytes { return }
        let buffered = (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        if waiting + buffered > server.configuration.maxBufferedBytes {
            logger.notice("client is not keeping up, closing", metadata: ["eio.buffered": .stringConvertible(waiting + buffered)])
            server.metrics.error("slow_client")
            close(reason: .slowClient)
        }
    }

    /// Writes frames to a WebSocket on its event loop, then flushes once. Always deferred to
    /// the loop, through its inbox like every send, so that no channel event runs while a session
    /// lock is held and the frames keep their place among the sends made before and after.
    static func write(_ packets: [EnginePacket], to channel: any Channel, version: EngineProtocolVersion) {
        LoopInbox.of(channel.eventLoop).submit {
            LoopFlusher.of(channel.eventLoop).writePending(to: channel)
            for packet in packets {
                channel.write(frame(packet, version: version), promise: nil)
            }
            channel.flush()
        }
    }

    /// The WebSocket frame of a packet, whole (header and payload): the wire form as is, except
    /// that v3 binary frames start with the packet type byte.
    static func frame(_ packet: EnginePacket, version: EngineProtocolVersion) -> ByteBuffer {
        guard packet.isBinary else { return WebSocketWire.frame(.text, packet.wire) }
        guard version == .v3 else { return WebSocketWire.frame(.binary, packet.wire) }
        var data = ByteBuffer()
        data.reserveCapacity(packet.wire.readableBytes + 1)
        data.writeInteger(EnginePacketType.message.rawValue)
        data.writeImmutableBuffer(packet.wire)
        return WebSocketWire.frame(.binary, data)
    }

    // MARK: Closing

    /// Closes the session: the client is told (a close packet to a pending long-poll, a close
    /// frame on a WebSocket: 1001 "going away" when the server shuts down, 1000 otherwise) and
    /// ``onClose(_:)`` runs once with `reason`.
    public func close(reason: EngineCloseReason = .forcedClose) {
        let taken = state.withLock { state -> (State, Bool)? in
            let action = state.machine.close()
            guard action.wasOpen else { return nil }
            state.heartbeat.stop()
            let snapshot = state
            state.upgradeTimer = nil
            state.parkedPoll = nil
            state.webSocket = nil
            state.probe = nil
            state.handlers = Handlers()
            return (snapshot, action.answerParkedPoll)
        }
        guard let (closed, answerPoll) = taken else { return }
        logger.debug("session closed", metadata: ["eio.reason": .string(reason.rawValue)])
        closed.upgradeTimer?.cancel()
        if answerPoll { closed.parkedPoll?.respond(packets: [EnginePacket(.close)]) }
        let code: WebSocketErrorCode = reason == .serverShuttingDown ? .goingAway : .normalClosure
        if let channel = closed.webSocket { Self.closeWebSocket(channel, code: code) }
        if let channel = closed.probe { Self.closeWebSocket(channel, code: code) }
        server.sessionEnded(self, transport: closed.machine.transport)
        closed.handlers.close?(reason)
    }

    static func closeWebSocket(_ channel: any Channel, code: WebSocketErrorCode = .normalClosure) {
        LoopInbox.of(channel.eventLoop).submit {
            // What was sent before the close goes out before the close frame.
            LoopFlusher.of(channel.eventLoop).writePending(to: channel)
            channel.writeAndFlush(WebSocketWire.closeFrame(code)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    // MARK: Receiving

    /// Handles packets that arrived over either transport.
    func receive(_ packets: [EnginePacket]) {
        for packet in packets {
            server.metrics.received(packet)
            switch packet.type {
            case .message:
                let handler = state.withLock { $0.handlers.message }
                handler?(packet.isBinary ? .binary(packet.wire) : .text(packet.text))
            case .pong:
                let now = NIODeadline.now()
                state.withLock { _ = $0.heartbeat.pongReceived(now: now) }
            case .ping where protocolVersion == .v3:
                // v3 clients ping; the server answers with the same payload.
                let now = NIODeadline.now()
                if state.withLock({ $0.heartbeat.pingReceived(now: now) }) {
                    send([EnginePacket(.pong, packet.text)])
                }
            case .close:
                close(reason: .transportClose)
                return
            case .ping, .noop, .open, .upgrade:
                // Clients of v4 do not ping; the rest are not for the server. Tolerated, as the
                // reference server does.
                continue
            }
        }
    }

    // MARK: Heartbeat

    func startHeartbeat() {
        let deadline = state.withLock { $0.heartbeat.firstTimerDeadline }
        scheduleHeartbeat(at: deadline)
    }

    /// Sets the heartbeat's timer, one of its event loop's ``HeartbeatTimers``.
    private func scheduleHeartbeat(at deadline: NIODeadline) {
        if eventLoop.inEventLoop {
            HeartbeatTimers.of(eventLoop).schedule(self, at: deadline)
        } else {
            eventLoop.execute { HeartbeatTimers.of(self.eventLoop).schedule(self, at: deadline) }
        }
    }

    func heartbeatFired() {
        let action = state.withLock { $0.heartbeat.timerFired(now: .now()) }
        switch action {
        case .sendPing(let next):
            send([EnginePacket(.ping)])
            scheduleHeartbeat(at: next)
        case .schedule(let next):
            scheduleHeartbeat(at: next)
        case .timedOut:
            logger.debug("ping timeout")
            close(reason: .pingTimeout)
        case .none:
            break
        }
    }

    // MARK: Polling

    /// A long-poll GET arrived; it is answered now or parked.
    func poll(_ responder: PollResponder) {
        let action = state.withLock { state -> SessionStateMachine.PollAction in
            let action = state.machine.pollRequested()
            if action == .park { state.parkedPoll = responder }
            return action
        }
        switch action {
        case .respond(let packets):
            responder.respond(packets: packets)
        case .park:
            break
        case .rejectDuplicate:
            responder.fail(EngineHTTPError(.badRequest, "Overlap from client"))
            server.metrics.error("duplicate_poll")
            close(reason: .transportError)
        case .rejectTransport:
            responder.fail(EngineHTTPError(.badRequest))
        }
    }

    /// The response to a GET has been written.
    func pollCompleted() {
        state.withLock { $0.machine.pollFinished() }
    }

    /// The connection of a parked GET went away before it was answered.
    func pollAborted(_ responder: PollResponder) {
        let wasParked = state.withLock { state -> Bool in
            guard state.parkedPoll === responder else { return false }
            state.parkedPoll = nil
            state.machine.pollFinished()
            return true
        }
        if wasParked { close(reason: .transportClose) }
    }

    /// A POST began. Returns `false` (and closes the session) if one was already in flight.
    func beginPost() -> Bool {
        let began = state.withLock { $0.machine.postBegan() }
        if !began {
            server.metrics.error("duplicate_post")
            close(reason: .transportError)
        }
        return began
    }

    func endPost() {
        state.withLock { $0.machine.postFinished() }
    }

    // MARK: WebSocket

    /// The session was opened over this WebSocket.
    func attach(webSocket channel: any Channel) {
        state.withLock { $0.webSocket = channel }
    }

    /// A probe arrived on a WebSocket opened to upgrade this session.
    func probe(from channel: any Channel) {
        let result = state.withLock { state -> (answer: Bool, noop: PollResponder?) in
            switch state.machine.probeReceived() {
            case .reject:
                return (false, nil)
            case .answerProbe(let noopParked):
                state.probe = channel
                Self.write([EnginePacket(.pong, "probe")], to: channel, version: protocolVersion)
                let poll = noopParked ? state.parkedPoll : nil
                if noopParked { state.parkedPoll = nil }
                return (true, poll)
            }
        }
        guard result.answer else {
            Self.closeWebSocket(channel, code: .policyViolation)
            return
        }
        result.noop?.respond(packets: [EnginePacket(.noop)])
        // Strong: no side table for the session (see HeartbeatTimers); cancelled with the upgrade.
        let timer = eventLoop.scheduleTask(in: server.configuration.upgradeTimeout) { [self] in
            self.abandonUpgrade(channel)
        }
        state.withLock { $0.upgradeTimer = timer }
    }

    /// The client sent `5` on the probed WebSocket: it now carries the session.
    func completeUpgrade(on channel: any Channel) -> Bool {
        let result = state.withLock { state -> (ok: Bool, noop: PollResponder?, timer: Scheduled<Void>?) in
            guard state.probe === channel else { return (false, nil, nil) }
            switch state.machine.upgradeReceived() {
            case .reject:
                return (false, nil, nil)
            case .flush(let packets, let noopParked):
                state.probe = nil
                state.webSocket = channel
                if !packets.isEmpty { Self.write(packets, to: channel, version: protocolVersion) }
                let poll = noopParked ? state.parkedPoll : nil
                state.parkedPoll = nil
                let timer = state.upgradeTimer
                state.upgradeTimer = nil
                return (true, poll, timer)
            }
        }
        result.timer?.cancel()
        result.noop?.respond(packets: [EnginePacket(.noop)])
        if result.ok {
            server.metrics.upgraded()
            logger.debug("upgraded to websocket")
        }
        return result.ok
    }

    /// The probe WebSocket closed or timed out before `5`: stay on polling.
    func abandonUpgrade(_ channel: any Channel) {
        let abandoned = state.withLock { state -> Bool in
            guard state.probe === channel else { return false }
            state.probe = nil
            state.machine.upgradeAbandoned()
            return true
        }
        if abandoned { Self.closeWebSocket(channel) }
    }

    /// The WebSocket carrying the session closed.
    func webSocketClosed(_ channel: any Channel) {
        let isCurrent = state.withLock { $0.webSocket === channel }
        if isCurrent { close(reason: .transportClose) } else { abandonUpgrade(channel) }
    }

}
