import DequeModule
import NIOCore

/// The transport a session is using.
public enum EngineTransport: String, Sendable, Hashable, CaseIterable {
    /// HTTP long-polling: the client GETs to receive and POSTs to send.
    case polling
    /// A WebSocket: one packet per frame in both directions.
    case websocket
}

/// The transport state of one Engine.IO session as a pure state machine: which transport
/// carries packets, the polling rule of one GET and one POST in flight, the outbound queue
/// and its bound, and the polling → WebSocket upgrade (`2probe`, `3probe`, noop to the
/// pending GET, `5`, flush).
///
/// The driver feeds it events and performs the returned actions; it never touches a socket.
public struct SessionStateMachine: Sendable {
    /// The phase of the session.
    public enum Phase: Sendable, Equatable {
        /// Packets travel over HTTP long-polling.
        case polling
        /// A WebSocket has answered a probe; polling still carries packets until `5`.
        case upgrading
        /// Packets travel over the WebSocket.
        case websocket
        /// The session is over.
        case closed
    }

    /// The answer to a long-poll GET.
    public enum PollAction: Sendable, Equatable {
        /// Respond at once with these packets.
        case respond([EnginePacket])
        /// Hold the request until there is something to send.
        case park
        /// A GET was already in flight: answer 400 and close the session.
        case rejectDuplicate
        /// The session does not poll (it upgraded or closed): answer 400.
        case rejectTransport
    }

    /// What to do with packets the application sends.
    public enum SendAction: Sendable, Equatable {
        /// Write these packets to the WebSocket.
        case writeWebSocket([EnginePacket])
        /// Answer the parked GET with these packets.
        case respondParkedPoll([EnginePacket])
        /// Kept in the queue until the next GET or the end of the upgrade.
        case queued
        /// Dropped: the session is closed, or a volatile packet met a full queue.
        case dropped
        /// The queue exceeded its bound: the client stays behind, close it.
        case overflow
    }

    /// What to do when a probe arrives on a candidate WebSocket.
    public enum ProbeAction: Sendable, Equatable {
        /// Answer `3probe` on the WebSocket, and answer the parked GET (if any) with a noop.
        case answerProbe(noopParkedPoll: Bool)
        /// The session cannot upgrade now: close that WebSocket.
        case reject
    }

    /// What to do when the client sends `5` on the probed WebSocket.
    public enum UpgradeAction: Sendable, Equatable {
        /// The WebSocket now carries the session: write these queued packets to it, and answer
        /// the parked GET (if any) with a noop.
        case flush([EnginePacket], noopParkedPoll: Bool)
        /// No upgrade was in progress: close that WebSocket.
        case reject
    }

    /// What to do when the session closes.
    public struct CloseAction: Sendable, Equatable {
        /// A GET was parked and must be answered (with a close packet).
        public var answerParkedPoll: Bool
        /// The session was open before this call; `false` when it was already closed.
        public var wasOpen: Bool
    }

    public private(set) var phase: Phase
    /// Whether a long-poll GET is parked, waiting for packets.
    public private(set) var pollParked = false
    /// Whether a GET is being answered or parked.
    public private(set) var getInFlight = false
    /// Whether a POST is being processed.
    public private(set) var postInFlight = false
    /// Packets waiting for the next GET or for the end of an upgrade.
    public private(set) var queue: Deque<EnginePacket> = []
    /// The bytes held in ``queue``.
    public private(set) var queuedBytes = 0
    /// The most bytes the queue may hold before the client counts as stalled.
    public let maxQueuedBytes: Int
    /// The most packets one poll response carries; the rest wait for the next poll.
    /// python-engineio's client refuses a payload of more than 16 packets (and drops the
    /// connection), so Parley never sends more.
    public static let maxPacketsPerPoll = 16

    /// A session that starts on `transport`.
    public init(transport: EngineTransport, maxQueuedBytes: Int) {
        self.phase = transport == .polling ? .polling : .websocket
        self.transport = transport
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// The transport carrying packets to the client (the last one, once closed).
    public private(set) var transport: EngineTransport

    // MARK: Polling

    /// A long-poll GET arrived.
    public mutating func pollRequested() -> PollAction {
        switch phase {
        case .websocket, .closed:
            return .rejectTransport
        case .polling, .upgrading:
            guard !getInFlight else { return .rejectDuplicate }
            getInFlight = true
            if queue.isEmpty {
                // During an upgrade the client waits for its poll to end before it sends `5`:
                // a poll that would park is ended at once with a noop.
                if phase == .upgrading { return .respond([EnginePacket(.noop)]) }
                pollParked = true
                return .park
            }
            return .respond(drainForPoll())
        }
    }

    /// The response to the current GET has been written (or its request went away).
    public mutating func pollFinished() {
        getInFlight = false
        pollParked = false
    }

    /// A POST arrived. Returns `false` when one is already in flight (answer 400, close).
    public mutating func postBegan() -> Bool {
        guard !postInFlight else { return false }
        postInFlight = true
        return true
    }

    /// The current POST has been processed.
    public mutating func postFinished() {
        postInFlight = false
    }

    // MARK: Sending

    /// The application (or the heartbeat) sends packets. A `volatile` send is dropped
    /// rather than queued when the client is not ready to receive it at once.
    public mutating func send(_ packets: [EnginePacket], volatile: Bool = false) -> SendAction {
        switch phase {
        case .closed:
            return .dropped
        case .websocket:
            return .writeWebSocket(packets)
        case .polling, .upgrading:
            if pollParked, queue.isEmpty, packets.count <= Self.maxPacketsPerPoll {
                pollParked = false
                return .respondParkedPoll(packets)
            }
            if volatile { return .dropped }
            let bytes = packets.reduce(0) { $0 + $1.byteCount }
            guard queuedBytes + bytes <= maxQueuedBytes else { return .overflow }
            queue.append(contentsOf: packets)
            queuedBytes += bytes
            if pollParked {
                pollParked = false
                return .respondParkedPoll(drainForPoll())
            }
            return .queued
        }
    }

    /// What one poll response carries: the oldest packets, at most ``maxPacketsPerPoll``.
    private mutating func drainForPoll() -> [EnginePacket] {
        guard queue.count > Self.maxPacketsPerPoll else { return drain() }
        let packets = Array(queue.prefix(Self.maxPacketsPerPoll))
        queue.removeFirst(Self.maxPacketsPerPoll)
        queuedBytes -= packets.reduce(0) { $0 + $1.byteCount }
        return packets
    }

    private mutating func drain() -> [EnginePacket] {
        let packets = Array(queue)
        queue.removeAll(keepingCapacity: false)
        queuedBytes = 0
        return packets
    }

    // MARK: Upgrade

    /// A candidate WebSocket sent `2probe`.
    public mutating func probeReceived() -> ProbeAction {
        guard phase == .polling else { return .reject }
        phase = .upgrading
        let noop = pollParked
        if noop { pollParked = false }
        return .answerProbe(noopParkedPoll: noop)
    }

    /// The probed WebSocket sent `5`: it now carries the session.
    public mutating func upgradeReceived() -> UpgradeAction {
        guard phase == .upgrading else { return .reject }
        phase = .websocket
        transport = .websocket
        let noop = pollParked
        pollParked = false
        return .flush(drain(), noopParkedPoll: noop)
    }

    /// The probed WebSocket went away, or the upgrade timed out: stay on polling.
    public mutating func upgradeAbandoned() {
        if phase == .upgrading { phase = .polling }
    }

    // MARK: Closing

    /// The session ends.
    public mutating func close() -> CloseAction {
        guard phase != .closed else { return CloseAction(answerParkedPoll: false, wasOpen: false) }
        phase = .closed
        let answer = pollParked
        pollParked = false
        queue.removeAll()
        queuedBytes = 0
        return CloseAction(answerParkedPoll: answer, wasOpen: true)
    }
}
