import Foundation
import Metrics
import Synchronization

/// A store's queue of message inserts, committed in batches (group commit): inserts that arrive
/// while a batch is being written are written together in the next transaction, so that under
/// load one commit covers many messages. Every insert still completes only once committed, and
/// completions run in submission order.
///
/// A store gives it one function that writes a batch in one transaction, either blocking
/// (SQLite: each batch is written and completed on one thread of the queue's own, so a message
/// crosses threads only to reach it and to go back to the event loops) or asynchronous
/// (PostgreSQL: completions run on a serial queue of their own while the next batch is
/// written). Should a batch fail, its inserts are retried one by one, so that one bad message
/// fails alone, unless the store was unavailable (``Unavailable``): then the whole batch fails.
///
/// Each batch's transaction is timed, commit included, as `parley_store_commit_seconds` (a
/// histogram) and its inserts counted as `parley_store_messages_written_total`, both by `store`,
/// so that an operator can tell a stalling disk (or database) from a busy server. On PostgreSQL
/// the time includes waiting for a pooled connection.
public final class MessageWriteQueue: Sendable {
    /// One insert: what to store, and for whose inbox.
    public struct Insert: Sendable {
        public let message: NewMessage
        public let recipients: [UserID]
    }

    /// The result of one insert, as ``ChatStore/insertMessage(_:recipients:)`` returns it.
    public typealias Inserted = (message: StoredMessage, inserted: Bool)

    /// Writes a batch in one transaction, returning one result per insert, in order.
    public typealias WriteBatch = @Sendable ([Insert]) async throws -> [Inserted]
    /// Writes a batch in one transaction, blocking the calling thread until it is committed.
    public typealias BlockingWriteBatch = @Sendable ([Insert]) throws -> [Inserted]

    private enum Writer {
        case async(WriteBatch)
        case blocking(BlockingWriteBatch)
    }

    private struct Pending: Sendable {
        let insert: Insert
        let completion: MessageCompletion
        /// A submitter waiting for the commit because the queue was full.
        var admitted: CheckedContinuation<Void, Never>?

        func complete(_ result: Result<Inserted, any Error>) {
            completion(result)
            admitted?.resume()
        }
    }

    /// What a batch writer throws when the store cannot write at all just now (a lock held by
    /// another process past the store's timeout, say): every insert of the batch fails with
    /// `underlying` at once, instead of each waiting out the timeout again alone.
    public struct Unavailable: Error {
        public let underlying: any Error
        public init(_ underlying: any Error) { self.underlying = underlying }
    }

    /// How many inserts may wait before ``submit(_:recipients:completion:)`` waits for its commit.
    public let maxQueued: Int
    private let writer: Writer
    private let state = Mutex<State>(State())
    private struct State {
        var queue: [Pending] = []
        var writing = false
        /// The inserts of the batch being written.
        var inFlight = 0
        /// Who waits in ``finish(within:)`` for the writer to go idle, by number.
        var idle: [Int: CheckedContinuation<Int, Never>] = [:]
        var nextWaiter = 0
    }
    /// Where completions run (asynchronous writer), or where batches are written and completed
    /// (blocking writer).
    private let thread: DispatchQueue
    private let commitTime: Metrics.Timer
    private let written: Counter

    /// The label of the histogram of batch transaction times, for a metrics backend's buckets.
    public static let commitTimeMetric = "parley_store_commit_seconds"
    /// The label of the counter of inserts in committed transactions.
    public static let writtenMetric = "parley_store_messages_written_total"

    /// A queue that writes with `write`; `label` names its completion queue, `store` its metrics
    /// (made by `metrics`, by default the bootstrapped system's).
    public convenience init(
        label: String, store: String, maxQueued: Int = 4096, metrics: any MetricsFactory = MetricsSystem.factory,
        write: @escaping WriteBatch
    ) {
        self.init(label: label, store: store, maxQueued: maxQueued, metrics: metrics, writer: .async(write))
    }

    /// A queue that writes with `write`, which blocks until the batch is committed, on a serial
    /// queue labelled `label`, where completions run too; `store` names its metrics (made by
    /// `metrics`, by default the bootstrapped system's).
    public convenience init(
        label: String, store: String, maxQueued: Int = 4096, metrics: any MetricsFactory = MetricsSystem.factory,
        writeBlocking write: @escaping BlockingWriteBatch
    ) {
        self.init(label: label, store: store, maxQueued: maxQueued, metrics: metrics, writer: .blocking(write))
    }

    private init(label: String, store: String, maxQueued: Int, metrics: any MetricsFactory, writer: Writer) {
        self.maxQueued = maxQueued
        self.writer = writer
        self.thread = DispatchQueue(label: label)
        let dimensions = [("store", store)]
        self.commitTime = Metrics.Timer(label: Self.commitTimeMetric, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: metrics)
        self.written = Counter(label: Self.writtenMetric, dimensions: dimensions, factory: metrics)
    }

    /// Runs `write`, a transaction of `count` inserts, and times it if it commits.
    private func timed<T>(_ count: Int, _ write: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        let value = try await write()
        committed(count, since: start)
        return value
    }

    /// Runs `write`, a blocking transaction of `count` inserts, and times it if it commits.
    private func timed<T>(_ count: Int, _ write: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        let value = try write()
        committed(count, since: start)
        return value
    }

    private func committed(_ count: Int, since start: ContinuousClock.Instant) {
        commitTime.record(duration: ContinuousClock.now - start)
        written.increment(by: count)
    }

    /// Queues the insert and returns once it is committed.
    public func insert(_ message: NewMessage, recipients: [UserID]) async throws -> Inserted {
        try await withCheckedThrowingContinuation { continuation in
            _ = enqueue(Pending(insert: Insert(message: message, recipients: recipients), completion: { continuation.resume(with: $0) }))
        }
    }

    /// Queues the insert and returns at once, unless ``maxQueued`` inserts are already waiting:
    /// then it returns once this one is committed, so that senders faster than the database are
    /// slowed down instead of queueing without bound. `completion` runs once it is committed.
    public func submit(_ message: NewMessage, recipients: [UserID], completion: @escaping MessageCompletion) async {
        await withCheckedContinuation { (admitted: CheckedContinuation<Void, Never>) in
            let pending = Pending(insert: Insert(message: message, recipients: recipients), completion: completion)
            if enqueue(pending, admitted: admitted) { admitted.resume() }
        }
    }

    /// Appends to the queue, starting the writer if it is idle. With `admitted`, the insert keeps
    /// it to resume on commit when the queue is full; returns whether it did not.
    private func enqueue(_ pending: Pending, admitted: CheckedContinuation<Void, Never>? = nil) -> Bool {
        var pending = pending
        let (startWriter, queued) = state.withLock { state -> (Bool, Bool) in
            let full = admitted != nil && state.queue.count >= maxQueued
            if full { pending.admitted = admitted }
            state.queue.append(pending)
            guard !state.writing else { return (false, !full) }
            state.writing = true
            return (true, !full)
        }
        if startWriter {
            switch writer {
            case .async(let write): Task { await self.drain(write) }
            case .blocking(let write): thread.async { self.drain(write) }
            }
        }
        return queued
    }

    /// Returns once every insert submitted before it is written (or has failed) and its
    /// completion has run: a server stopping waits for it before it closes the store, so that a
    /// message it took is not lost on the way out.
    public func finish() async {
        _ = await finish(within: nil)
    }

    /// Does what ``finish()`` does, but waits at most `limit`: returns 0 once every insert
    /// submitted before it is written (or has failed) and completed, or, when `limit` passes
    /// first, how many were still waiting or being written then (a database that stays locked
    /// must not keep a server from stopping).
    public func finish(within limit: Duration?) async -> Int {
        await withCheckedContinuation { (finished: CheckedContinuation<Int, Never>) in
            let waiter = state.withLock { state -> Int? in
                guard state.writing else { return nil }
                let waiter = state.nextWaiter
                state.nextWaiter += 1
                state.idle[waiter] = finished
                return waiter
            }
            guard let waiter else { return finished.resume(returning: 0) }
            guard let limit else { return }
            // Left to run out when the writer goes idle first: it then finds nothing to expire.
            Task {
                try? await Task.sleep(for: limit)
                let expired = self.state.withLock { state in
                    state.idle.removeValue(forKey: waiter).map { ($0, state.queue.count + state.inFlight) }
                }
                if let (continuation, unwritten) = expired { continuation.resume(returning: unwritten) }
            }
        }
    }

    /// Takes every waiting insert, or marks the writer idle when there are none; then resumes
    /// whoever waits in ``finish(within:)`` (on `thread`, after the completions queued there).
    private func nextBatch() -> [Pending] {
        let (batch, finished) = state.withLock { state -> ([Pending], [CheckedContinuation<Int, Never>]) in
            let batch = state.queue
            state.queue.removeAll()
            state.inFlight = batch.count
            guard batch.isEmpty else { return (batch, []) }
            state.writing = false
            let finished = Array(state.idle.values)
            state.idle.removeAll()
            return (batch, finished)
        }
        if !finished.isEmpty {
            switch writer {
            case .async: thread.async { for waiter in finished { waiter.resume(returning: 0) } }
            case .blocking: for waiter in finished { waiter.resume(returning: 0) }
            }
        }
        return batch
    }

    /// Writes the waiting inserts, a batch per transaction, until none are left; completions
    /// run on the completion queue meanwhile.
    private func drain(_ write: WriteBatch) async {
        while true {
            let batch = nextBatch()
            guard !batch.isEmpty else { return }
            var results: [Result<Inserted, any Error>]
            do {
                results = try await timed(batch.count) { try await write(batch.map(\.insert)) }.map { .success($0) }
            } catch let unavailable as Unavailable {
                results = batch.map { _ in .failure(unavailable.underlying) }
            } catch {
                results = []
                for pending in batch {
                    do {
                        results.append(.success(try await timed(1) { try await write([pending.insert]) }[0]))
                    } catch {
                        results.append(.failure(error))
                    }
                }
            }
            let settled = results
            thread.async {
                for (pending, result) in zip(batch, settled) { pending.complete(result) }
            }
        }
    }

    /// Writes and completes the waiting inserts, a batch per transaction, until none are left.
    private func drain(_ write: BlockingWriteBatch) {
        while true {
            let batch = nextBatch()
            guard !batch.isEmpty else { return }
            let results: [Result<Inserted, any Error>]
            do {
                results = try timed(batch.count) { try write(batch.map(\.insert)) }.map { .success($0) }
            } catch let unavailable as Unavailable {
                results = batch.map { _ in .failure(unavailable.underlying) }
            } catch {
                results = batch.map { pending in Result { try timed(1) { try write([pending.insert]) }[0] } }
            }
            for (pending, result) in zip(batch, results) { pending.complete(result) }
        }
    }
}
