import Foundation
import MetricsTestKit
import ParleyCore
import Synchronization
import Testing

@Suite("Message write queue")
struct MessageWriteQueueTests {
    /// A batch that fails is retried one insert at a time: the bad message fails alone, the
    /// others are stored, and every completion runs once, in submission order.
    @Test func aFailingBatchIsRetriedSoOneBadMessageFailsAlone() async throws {
        let batches = Mutex<[[String]]>([])
        let nextID = Atomic<Int64>(0)
        let queue = MessageWriteQueue(label: "test.completions", store: "test") { batch in
            batches.withLock { $0.append(batch.map(\.message.text)) }
            // Let the next submissions pile up behind this batch.
            try await Task.sleep(for: .milliseconds(20))
            if batch.contains(where: { $0.message.text == "bad" }) { throw ChatError(.internalError, "refused") }
            return batch.map { (StoredMessage(id: nextID.add(1, ordering: .relaxed).newValue, $0.message), true) }
        }
        let sender = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let texts = ["one", "two", "bad", "three", "four"]
        let results = await submitAll(texts, from: sender) { await queue.submit($0, recipients: [], completion: $1) }
        #expect(results.map(\.text) == texts)
        #expect(results.map(\.stored) == [true, true, false, true, true])
        // More than one insert shared a transaction (the group commit), and the batch holding
        // the bad message was retried one by one.
        let written = batches.withLock { $0 }
        #expect(written.contains { $0.count > 1 && $0.contains("bad") })
        #expect(written.contains(["bad"]))
    }

    /// A batch the store could not write at all (``MessageWriteQueue/Unavailable``) fails whole,
    /// without a retry per insert: with a lock held elsewhere, each retry would wait it out again.
    /// The blocking writer is the one SQLite uses.
    @Test func anUnavailableStoreFailsTheBatchWithoutRetries() async throws {
        let batches = Mutex<[[String]]>([])
        let gate = Mutex(false)
        let queue = MessageWriteQueue(label: "test.writes", store: "test", writeBlocking: { batch in
            batches.withLock { $0.append(batch.map(\.message.text)) }
            // The first batch holds the writer until the others have queued behind it.
            while batch.first?.message.text == "first" && !gate.withLock({ $0 }) { usleep(1_000) }
            if batch.contains(where: { $0.message.text != "first" }) { throw MessageWriteQueue.Unavailable(ChatError(.internalError, "locked")) }
            return batch.map { (StoredMessage(id: 1, $0.message), true) }
        })
        let sender = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let results = await submitAll(["first", "two", "three", "four"], from: sender) { new, completion in
            await queue.submit(new, recipients: [], completion: completion)
            // The others go in once the writer holds the first alone.
            while new.text == "first" && batches.withLock({ $0.isEmpty }) { try? await Task.sleep(for: .milliseconds(1)) }
            if new.text == "four" { gate.withLock { $0 = true } }
        }
        #expect(results.map(\.stored) == [true, false, false, false])
        #expect(batches.withLock { $0 } == [["first"], ["two", "three", "four"]])
    }

    /// A queue whose writer (blocking, or asynchronous) holds every batch until `openGate` runs.
    private static func gatedQueue(blocking: Bool) -> (queue: MessageWriteQueue, openGate: @Sendable () -> Void) {
        let gate = Mutex(false)
        let open: @Sendable () -> Bool = { gate.withLock { $0 } }
        let write: @Sendable ([MessageWriteQueue.Insert]) -> [MessageWriteQueue.Inserted] = { batch in
            batch.map { (StoredMessage(id: 1, $0.message), true) }
        }
        let queue = blocking
            ? MessageWriteQueue(label: "test.writes", store: "test", writeBlocking: { batch in
                while !open() { usleep(1_000) }
                return write(batch)
            })
            : MessageWriteQueue(label: "test.writes", store: "test") { batch in
                while !open() { try await Task.sleep(for: .milliseconds(1)) }
                return write(batch)
            }
        return (queue, { gate.withLock { $0 = true } })
    }

    /// `finish` returns at once on an idle queue, and otherwise once every insert submitted
    /// before it is written and completed, with either kind of writer.
    @Test(arguments: [false, true]) func finishWaitsForEveryInsertAndItsCompletion(blocking: Bool) async throws {
        let (queue, openGate) = Self.gatedQueue(blocking: blocking)
        await queue.finish()  // idle: returns at once

        let completed = Atomic<Int>(0)
        let sender = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        for text in ["one", "two", "three"] {
            await queue.submit(NewMessage(conversation: .room("r"), sender: sender, text: text, clientID: nil, sentAt: 1), recipients: []) { _ in
                completed.add(1, ordering: .relaxed)
            }
        }
        let finished = Atomic<Bool>(false)
        let finishing = Task {
            await queue.finish()
            finished.store(true, ordering: .relaxed)
            return completed.load(ordering: .relaxed)
        }
        try await Task.sleep(for: .milliseconds(100))
        let finishedEarly = finished.load(ordering: .relaxed)
        #expect(!finishedEarly)
        openGate()
        #expect(await finishing.value == 3)
    }

    /// `finish(within:)` gives up once its limit passes and says how many inserts were still
    /// waiting or being written; a `finish` after it still waits for them all.
    @Test(arguments: [false, true]) func finishWithinALimitCountsWhatIsLeft(blocking: Bool) async throws {
        let (queue, openGate) = Self.gatedQueue(blocking: blocking)
        #expect(await queue.finish(within: .milliseconds(50)) == 0)  // idle

        let completed = Atomic<Int>(0)
        let sender = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        for text in ["one", "two", "three"] {
            await queue.submit(NewMessage(conversation: .room("r"), sender: sender, text: text, clientID: nil, sentAt: 1), recipients: []) { _ in
                completed.add(1, ordering: .relaxed)
            }
        }
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await queue.finish(within: .milliseconds(100)) == 3)
        #expect(clock.now - started >= .milliseconds(100))
        #expect(completed.load(ordering: .relaxed) == 0)
        openGate()
        #expect(await queue.finish(within: .seconds(10)) == 0)
        #expect(completed.load(ordering: .relaxed) == 3)
    }

    /// Every transaction that commits is timed and its inserts counted, the one-by-one retries
    /// of a failed batch included; the failed transactions are not.
    @Test func committedTransactionsAreTimedAndCounted() async throws {
        let metrics = TestMetrics()
        let commits = Atomic<Int>(0)
        let queue = MessageWriteQueue(label: "test.completions", store: "test", metrics: metrics) { batch in
            try await Task.sleep(for: .milliseconds(20))
            if batch.contains(where: { $0.message.text == "bad" }) { throw ChatError(.internalError, "refused") }
            commits.add(1, ordering: .relaxed)
            return batch.map { (StoredMessage(id: 1, $0.message), true) }
        }
        let sender = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let results = await submitAll(["one", "two", "bad", "three", "four"], from: sender) {
            await queue.submit($0, recipients: [], completion: $1)
        }
        #expect(results.filter(\.stored).count == 4)
        let timer = try metrics.expectTimer(MessageWriteQueue.commitTimeMetric, [("store", "test")])
        #expect(timer.values.count == commits.load(ordering: .relaxed))
        #expect(timer.values.allSatisfy { $0 >= 20_000_000 })  // nanoseconds: each write sleeps 20 ms
        let written = try metrics.expectCounter(MessageWriteQueue.writtenMetric, [("store", "test")])
        #expect(written.totalValue == 4)
    }

    /// `insert` waits for the commit and returns its result.
    @Test func insertReturnsOnceCommitted() async throws {
        let queue = MessageWriteQueue(label: "test.completions", store: "test") { batch in batch.map { (StoredMessage(id: 7, $0.message), true) } }
        let sender = Identity(id: UserID(rawValue: "g_x"), name: "x", kind: .guest)
        let (stored, inserted) = try await queue.insert(
            NewMessage(conversation: .room("r"), sender: sender, text: "hi", clientID: nil, sentAt: 1), recipients: []
        )
        #expect(stored.id == 7 && stored.text == "hi" && inserted)
    }
}
