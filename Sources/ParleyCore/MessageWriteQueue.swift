import Foundation
import Synchronization

/// A store's queue of message inserts, committed in batches (group commit): inserts that arrive
/// while a batch is being written are written together in the next transaction, so that under
/// load one commit covers many messages. Every insert still completes only once committed, and
/// completions run in submission order on a serial queue of their own, so that the next batch is
/// written while the previous one's completions (which publish the messages) run.
///
/// A store gives it one function that writes a batch in one transaction. Should a batch fail,
/// its inserts are retried one by one, so that one bad message fails alone.
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

    /// How many inserts may wait before ``submit(_:recipients:completion:)`` waits for its commit.
    public let maxQueued: Int
    private let write: WriteBatch
    private let state = Mutex<(queue: [Pending], writing: Bool)>(([], false))
    private let completions: DispatchQueue

    /// A queue that writes with `write`; `label` names its completion queue.
    public init(label: String, maxQueued: Int = 4096, write: @escaping WriteBatch) {
        self.maxQueued = maxQueued
        self.write = write
        self.completions = DispatchQueue(label: label)
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
        if startWriter { Task { await self.drain() } }
        return queued
    }

    /// Writes the waiting inserts, a batch per transaction, until none are left.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                let batch = state.queue
                state.queue.removeAll()
                if batch.isEmpty { state.writing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            var results: [Result<Inserted, any Error>]
            do {
                results = try await write(batch.map(\.insert)).map { .success($0) }
            } catch {
                results = []
                for pending in batch {
                    do {
                        results.append(.success(try await write([pending.insert])[0]))
                    } catch {
                        results.append(.failure(error))
                    }
                }
            }
            let settled = results
            completions.async {
                for (pending, result) in zip(batch, settled) { pending.complete(result) }
            }
        }
    }
}
