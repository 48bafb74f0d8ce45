import NIOCore

/// The server side of the Engine.IO v4 heartbeat as a pure state machine.
///
/// The server sends a ping every `pingInterval`; the client must answer with a pong within
/// `pingTimeout`. One timer is ever in flight: the driver schedules it at the deadline of each
/// action and reports ``timerFired(now:)``; a pong only moves the next deadline, and an early
/// firing simply asks to be scheduled again.
public struct Heartbeat: Sendable, Equatable {
    /// What the driver must do after a transition.
    public enum Action: Sendable, Equatable {
        /// Send a ping now, and fire the timer again at `deadline`.
        case sendPing(timerAt: NIODeadline)
        /// Nothing to send; fire the timer again at `deadline`.
        case schedule(timerAt: NIODeadline)
        /// The client missed its pong: close the session with the `ping timeout` reason.
        case timedOut
        /// Nothing to do (the heartbeat is stopped).
        case none
    }

    enum State: Sendable, Equatable {
        case idle(nextPingAt: NIODeadline)
        case awaitingPong(deadline: NIODeadline)
        case stopped
    }

    /// Who sends pings.
    public enum Mode: Sendable, Equatable {
        /// Engine.IO v4: the server pings, the client answers.
        case serverPings
        /// Engine.IO v3: the client pings and the server answers; a client that sends no ping
        /// for `pingInterval + pingTimeout` is gone.
        case clientPings
    }

    public let pingInterval: TimeAmount
    public let pingTimeout: TimeAmount
    public let mode: Mode
    private(set) var state: State

    /// Starts the heartbeat at `now`. With server pings the first is due one interval later;
    /// with client pings the first must arrive within an interval and a timeout.
    public init(pingInterval: TimeAmount, pingTimeout: TimeAmount, now: NIODeadline, mode: Mode = .serverPings) {
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.mode = mode
        switch mode {
        case .serverPings: self.state = .idle(nextPingAt: now + pingInterval)
        case .clientPings: self.state = .awaitingPong(deadline: now + pingInterval + pingTimeout)
        }
    }

    /// A client ping arrived at `now` (client-ping mode): the next one is due within an
    /// interval and a timeout. Returns whether the driver should answer with a pong.
    public mutating func pingReceived(now: NIODeadline) -> Bool {
        guard mode == .clientPings, case .awaitingPong = state else { return false }
        state = .awaitingPong(deadline: now + pingInterval + pingTimeout)
        return true
    }

    /// When the driver should first fire the timer.
    public var firstTimerDeadline: NIODeadline {
        switch state {
        case .idle(let at), .awaitingPong(let at): at
        case .stopped: .distantFuture
        }
    }

    /// Whether the heartbeat is waiting for a pong.
    public var isAwaitingPong: Bool {
        if case .awaitingPong = state { return true }
        return false
    }

    /// The timer fired at `now`.
    public mutating func timerFired(now: NIODeadline) -> Action {
        switch state {
        case .idle(let nextPingAt):
            guard now >= nextPingAt else { return .schedule(timerAt: nextPingAt) }
            let deadline = now + pingTimeout
            state = .awaitingPong(deadline: deadline)
            return .sendPing(timerAt: deadline)
        case .awaitingPong(let deadline):
            guard now >= deadline else { return .schedule(timerAt: deadline) }
            state = .stopped
            return .timedOut
        case .stopped:
            return .none
        }
    }

    /// A pong arrived at `now`. Returns `false` when no pong was expected (the driver may
    /// ignore it, as the reference server does).
    @discardableResult
    public mutating func pongReceived(now: NIODeadline) -> Bool {
        guard mode == .serverPings, case .awaitingPong = state else { return false }
        state = .idle(nextPingAt: now + pingInterval)
        return true
    }

    /// Stops the heartbeat; later timer firings do nothing.
    public mutating func stop() {
        state = .stopped
    }
}
