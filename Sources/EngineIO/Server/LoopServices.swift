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

/// Work for one event loop, handed over from any thread and run in one loop task: the first
/// submission after a drain schedules the task, later ones only join the list. Fan-outs published
/// one message at a time from another thread (a store's commits, handler tasks) then cost the loop
/// one task and at most one wake-up per batch instead of one per message; submissions from one
/// thread run in their order. A session's sends to its WebSocket, to it alone or in a broadcast,
/// all go through its loop's inbox, so that each client gets a thread's sends in that order.
public final class LoopInbox: Sendable {
    private let loop: any EventLoop
    private let pending = Mutex<[@Sendable () -> Void]>([])

    private init(loop: any EventLoop) { self.loop = loop }

    private static let registry = PerLoop<LoopInbox>()

    /// The inbox of `loop`.
    public static func of(_ loop: any EventLoop) -> LoopInbox {
        registry.instance(for: loop) { LoopInbox(loop: $0) }
    }

    /// Runs `work` on the loop, after the work submitted before it.
    public func submit(_ work: @escaping @Sendable () -> Void) {
        let first = pending.withLock { pending in
            pending.append(work)
            return pending.count == 1
        }
        if first { loop.execute { self.drain() } }
    }

    private func drain() {
        var work: [@Sendable () -> Void] = []
        pending.withLock { swap(&$0, &work) }
        for item in work { item() }
    }
}

/// Writes and flushes the frames of the WebSocket channels of one event loop, once per loop tick:
/// each channel's frames of the tick go into it together, in the order they were handed over,
/// and leave in one flush, after the tick's other tasks. A client that several broadcasts reach
/// in one tick gets them in one system call; a room's first members get a message without
/// waiting for it to be queued for the last. A frame written to a channel directly (the close
/// frame, say) first writes what is pending for it (``writePending(to:)``). One per event loop;
/// used only on its loop.
final class LoopFlusher: @unchecked Sendable {
    private struct Pending {
        let channel: any Channel
        let session: EngineSocket
        var frames: [ByteBuffer]
        var bytes: Int
    }

    private let loop: any EventLoop
    private var pending: [Pending] = []
    /// Each pending channel's index in `pending`.
    private var slots: [ObjectIdentifier: Int] = [:]

    private init(loop: any EventLoop) { self.loop = loop }

    private static let registry = PerLoop<LoopFlusher>()

    /// The flusher of `loop`.
    static func of(_ loop: any EventLoop) -> LoopFlusher {
        registry.instance(for: loop) { LoopFlusher(loop: $0) }
    }

    /// Hands over `session`'s frames for `channel` (`bytes` of packets); the first of a tick
    /// queues the flush, which runs after the tasks already queued.
    func write(_ frames: [ByteBuffer], bytes: Int, to channel: any Channel, session: EngineSocket) {
        loop.assertInEventLoop()
        let key = ObjectIdentifier(channel)
        if let slot = slots[key] {
            pending[slot].frames.append(contentsOf: frames)
            pending[slot].bytes += bytes
            return
        }
        slots[key] = pending.count
        pending.append(Pending(channel: channel, session: session, frames: frames, bytes: bytes))
        if pending.count == 1 { loop.execute { self.flushAll() } }
    }

    /// Writes and flushes what is pending for `channel` now.
    func writePending(to channel: any Channel) {
        loop.assertInEventLoop()
        guard let slot = slots[ObjectIdentifier(channel)], !pending[slot].frames.isEmpty else { return }
        let entry = pending[slot]
        pending[slot].frames = []
        pending[slot].bytes = 0
        entry.session.writeAndFlush(entry.frames, bytes: entry.bytes, to: entry.channel)
    }

    private func flushAll() {
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        for entry in batch where !entry.frames.isEmpty {
            entry.session.writeAndFlush(entry.frames, bytes: entry.bytes, to: entry.channel)
        }
    }
}

/// The heartbeat timers of the sessions of one event loop: one NIO timer for all of them, set for
/// the earliest deadline, and a heap of (deadline, session). A session costs an entry in the
/// heap, not a scheduled task, promise and closure of its own. Entries are not removed when a
/// session closes: its heartbeat is stopped, and its entry is dropped when it comes due (at most
/// a ping interval later). They hold their session strongly: a weak reference would give every
/// session a side table, and make each of the many retains and releases of a fan-out take
/// Swift's slow path. One per event loop; used only on its loop.
final class HeartbeatTimers: @unchecked Sendable {
    private struct Entry: Comparable {
        let deadline: NIODeadline
        let session: EngineSocket

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
            heap.removeMin().session.heartbeatFired()
        }
        firing = false
        if let first = heap.min { arm(at: first.deadline) }
    }
}