import Synchronization

/// How many sockets of a server are running their event handlers, and who waits for none to be.
///
/// A stopping server closes every connection, but what each socket has already read is still
/// queued for its handlers (and its disconnect handlers after that); a handler that is waiting on
/// a database has not yet done what the event asked. ``SocketIOServer/finishHandlers(within:)``
/// waits for them before the server lets go of its store.
final class HandlerActivity: Sendable {
    private struct State {
        /// Sockets whose drain task is running.
        var busy = 0
        /// Who waits for `busy` to reach 0, by number, with the timer that gives up for them.
        var waiters: [Int: (continuation: CheckedContinuation<Void, Never>, timer: Task<Void, Never>?)] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    /// A socket's drain task starts.
    func begin() {
        state.withLock { $0.busy += 1 }
    }

    /// A socket's drain task has run its last job.
    func end() {
        let idle = state.withLock { state -> [(continuation: CheckedContinuation<Void, Never>, timer: Task<Void, Never>?)] in
            state.busy -= 1
            guard state.busy == 0, !state.waiters.isEmpty else { return [] }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in idle {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Waits until no socket is running handlers, or `limit` has passed; returns how many
    /// sockets still were then (0 when none).
    func idle(within limit: Duration) async -> Int {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiter = state.withLock { state -> Int? in
                guard state.busy > 0 else { return nil }
                let waiter = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[waiter] = (continuation, nil)
                return waiter
            }
            guard let waiter else { return continuation.resume() }
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                self.state.withLock { $0.waiters.removeValue(forKey: waiter) }?.continuation.resume()
            }
            // Kept so that the waiter's release cancels it, unless that release came first.
            let released = state.withLock { state -> Bool in
                guard state.waiters[waiter] != nil else { return true }
                state.waiters[waiter]?.timer = timer
                return false
            }
            if released { timer.cancel() }
        }
        return state.withLock { $0.busy }
    }
}
