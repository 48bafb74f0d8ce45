import Synchronization

/// How many sockets of a server are running their event handlers, and who waits for none to be.
///
/// A stopping server closes every connection, but what each socket has already read is still
/// queued for its handlers (and its disconnect handlers after that); a handler that is waiting on
/// a database has not yet done what the event asked. ``SocketIOServer/finishHandlers(within:)``
/// waits for them before the server lets go of its store.
final class HandlerActivity: Sendable {
    private typealias Waiter = (continuation: CheckedContinuation<Void, Never>, timer: Task<Void, Never>?)

    /// Sockets whose drain task is running. An atomic, not under the waiters' lock: every
    /// socket's drain on every event loop counts itself here, and no one waits but a server
    /// stopping.
    private let busy = Atomic<Int>(0)
    /// Who waits for `busy` to reach 0, by number, with the timer that gives up for them.
    private let waiters = Mutex<(byNumber: [Int: Waiter], next: Int)>(([:], 0))

    /// A socket's drain task starts.
    func begin() {
        busy.add(1, ordering: .sequentiallyConsistent)
    }

    /// A socket's drain task has run its last job.
    func end() {
        guard busy.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 else { return }
        let idle = waiters.withLock { waiters in
            defer { waiters.byNumber.removeAll() }
            return Array(waiters.byNumber.values)
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
            // Checked under the lock: an `end` that reaches 0 after this takes the lock next
            // and finds the waiter.
            let waiter = waiters.withLock { waiters -> Int? in
                guard busy.load(ordering: .sequentiallyConsistent) > 0 else { return nil }
                let waiter = waiters.next
                waiters.next += 1
                waiters.byNumber[waiter] = (continuation, nil)
                return waiter
            }
            guard let waiter else { return continuation.resume() }
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                self.waiters.withLock { $0.byNumber.removeValue(forKey: waiter) }?.continuation.resume()
            }
            // Kept so that the waiter's release cancels it, unless that release came first.
            let released = waiters.withLock { waiters -> Bool in
                guard waiters.byNumber[waiter] != nil else { return true }
                waiters.byNumber[waiter]?.timer = timer
                return false
            }
            if released { timer.cancel() }
        }
        return busy.load(ordering: .sequentiallyConsistent)
    }
}
