import HeapModule
import NIOCore
import Synchronization

// Helpers that live on one event loop and serve every session of that loop.

/// One instance of a loop-confined helper per event loop, made on first use.
final class PerLoop<Instance: AnyObject & Sendable>: Sendable {
    private let instances = Mutex<[ObjectIdentifier: Instance]>([:])

    /// The instance of `loop`, made by `make` the first time.
    func instance(for loop: any EventLoop, make: (any EventLoop) -> Instance) -> Instance {
        instances.withLock { instances in
            if let instance = instances[ObjectIdentifier(loop)] { return instance }
            let instance = make(loop)
            instances[ObjectIdentifier(loop)] = instance
            return instance
        }
    }
}

/// Flushes, once per event-loop tick, every WebSocket channel written to during the tick. One per
/// event loop; used only on its loop.
final class LoopFlusher: @unchecked Sendable {
    private let loop: any EventLoop
    private var pending: [(channel: any Channel, session: EngineSocket)] = []
    private var written = Set<ObjectIdentifier>()

    private init(loop: any EventLoop) { self.loop = loop }

    private static let registry = PerLoop<LoopFlusher>()

    /// The flusher of `loop`.
    static func of(_ loop: any EventLoop) -> LoopFlusher {
        registry.instance(for: loop) { LoopFlusher(loop: $0) }
    }

    /// Notes that `channel` has unflushed writes; the first note of a tick queues the flush,
    /// which runs after the tasks already queued.
    func needsFlush(_ channel: any Channel, session: EngineSocket) {
        loop.assertInEventLoop()
        guard written.insert(ObjectIdentifier(channel)).inserted else { return }
        pending.append((channel, session))
        if pending.count == 1 { loop.execute { self.flushAll() } }
    }

    private func flushAll() {
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        written.removeAll(keepingCapacity: true)
        for (channel, session) in batch {
            channel.flush()
            session.flushed(channel)
        }
    }
}

/// The heartbeat timers of the sessions of one event loop: one NIO timer for all of them, set for
/// the earliest deadline, and a heap of (deadline, session). A session costs an entry in the
/// heap, not a scheduled task, promise and closure of its own. Entries hold their session weakly
/// and are not removed when it closes: a closed session's heartbeat is stopped, and a freed one
/// is skipped. One per event loop; used only on its loop.
final class HeartbeatTimers: @unchecked Sendable {
    private struct Entry: Comparable {
        let deadline: NIODeadline
        weak var session: EngineSocket?

        static func < (lhs: Entry, rhs: Entry) -> Bool { lhs.deadline < rhs.deadline }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.deadline == rhs.deadline }
    }

    private let loop: any EventLoop
    private var heap = Heap<Entry>()
    private var timer: (deadline: NIODeadline, task: Scheduled<Void>)?
    /// While due heartbeats run: the timer is set once they are done, for the earliest left.
    private var firing = false

    private init(loop: any EventLoop) { self.loop = loop }

    private static let registry = PerLoop<HeartbeatTimers>()

    /// The timers of `loop`.
    static func of(_ loop: any EventLoop) -> HeartbeatTimers {
        registry.instance(for: loop) { HeartbeatTimers(loop: $0) }
    }

    /// Fires `session`'s heartbeat at `deadline`.
    func schedule(_ session: EngineSocket, at deadline: NIODeadline) {
        loop.assertInEventLoop()
        heap.insert(Entry(deadline: deadline, session: session))
        if firing { return }
        if let timer, timer.deadline <= deadline { return }
        arm(at: deadline)
    }

    private func arm(at deadline: NIODeadline) {
        timer?.task.cancel()
        let task = loop.scheduleTask(deadline: deadline) { [self] in fire() }
        timer = (deadline, task)
    }

    private func fire() {
        timer = nil
        firing = true
        let now = NIODeadline.now()
        while let first = heap.min, first.deadline <= now {
            heap.removeMin().session?.heartbeatFired()
        }
        firing = false
        if let first = heap.min { arm(at: first.deadline) }
    }
}