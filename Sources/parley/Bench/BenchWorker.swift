import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SocketIO
import SocketIOClient
import Synchronization

/// What every bench process needs to know about the load: the server, the protocol, and how
/// the clients are laid out in rooms.
struct LoadOptions: ParsableArguments {
    @Option(help: "The server's URL.")
    var server = "http://localhost:3000"

    @Option(help: "tutorial (login, join, chat → message) or native (room:join, message:send; subject to the per-connection rate limits).")
    var `protocol` = "tutorial"

    @Option(help: "Connections.")
    var clients = 100

    @Option(help: "Members per room.")
    var roomSize = 10

    @Option(help: "How many of the clients send (spread over the rooms).")
    var senders = 10

    @Option(help: "Worker processes generating the load; each owns whole rooms and one event-loop thread.")
    var workers = 1

    @Option(help: "Connections opened per second, all workers together.")
    var connectRate = 1000.0

    @Option(help: "The server's process id: its resident memory (connect) or CPU time per delivery (fanout, ceiling) is reported.")
    var pid: Int?

    var proto: BenchProtocol { BenchProtocol(rawValue: `protocol`) ?? .tutorial }

    func validate() throws {
        guard BenchProtocol(rawValue: `protocol`) != nil else { throw ValidationError("--protocol is tutorial or native") }
        guard clients > 0, roomSize > 0, senders > 0, senders <= clients, workers > 0, connectRate > 0 else {
            throw ValidationError("counts must be positive, and --senders at most --clients")
        }
        guard workers <= max(1, (clients + roomSize - 1) / roomSize) else {
            throw ValidationError("--workers at most the number of rooms: each worker owns whole rooms")
        }
        _ = try WebSocketConnector.parse(server)
    }

    var roomCount: Int { (clients + roomSize - 1) / roomSize }

    /// The clients that send: spread evenly over the client indices, hence over the rooms.
    var senderIndices: [Int] { (0..<senders).map { $0 * (clients / senders) } }
}

/// `parley bench worker`: one process of the load generator. The coordinator (`parley bench
/// connect|fanout|ceiling`) starts it and drives it over standard input and output, one JSON
/// object a line each way; it is not meant to be run by hand.
struct BenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "One process of the load generator (started by the other bench commands).", shouldDisplay: false
    )

    @OptionGroup var load: LoadOptions

    @Option(help: "This worker's number, from 0.")
    var index = 0

    @Option(help: "A prefix for room names, unique to the run.")
    var runID = "run"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let fleet = WorkerFleet(load: load, index: index, runID: runID, group: group)
        for await line in Terminal.lines() {
            guard let command = try? JSONValue(parsing: line) else { continue }
            switch command["command"]?.stringValue {
            case "connect":
                let report = await fleet.open(rate: command["rate"]?.numberValue ?? 500, joins: command["joins"]?.boolValue ?? true)
                Self.emit(report)
            case "warm":
                Self.emit(await fleet.warmUp())
            case "step":
                let report = await fleet.step(
                    command["step"]?.intValue ?? 0, rate: command["rate"]?.numberValue ?? 100,
                    duration: command["duration"]?.numberValue ?? 5, drain: command["drain"]?.numberValue ?? 5
                )
                Self.emit(report)
            case "quit":
                await fleet.closeAll()
                Self.emit(["event": "bye"])
                try? await group.shutdownGracefully()
                return
            default:
                continue
            }
        }
        await fleet.closeAll()
    }

    /// One line to the coordinator.
    static func emit(_ value: JSONValue) {
        FileHandle.standardOutput.write(Data((value.json + "\n").utf8))
    }
}

/// The connections of one worker, all on one event loop, and the steps it runs.
final class WorkerFleet: Sendable {
    private let load: LoadOptions
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    private let specs: [BenchClientSpec]
    private let senderIndices: Set<Int>
    let tally = StepTally()
    private let ready = Mutex<[BenchConnection]>([])

    init(load: LoadOptions, index: Int, runID: String, group: MultiThreadedEventLoopGroup) {
        self.load = load
        self.group = group
        self.loop = group.next()
        var specs: [BenchClientSpec] = []
        for room in stride(from: index, to: load.roomCount, by: load.workers) {
            for client in (room * load.roomSize)..<min(load.clients, (room + 1) * load.roomSize) {
                specs.append(BenchClientSpec(index: client, room: "bench-\(runID)-\(room)", proto: load.proto, joins: true))
            }
        }
        self.specs = specs
        let mine = Set(specs.map(\.index))
        self.senderIndices = Set(load.senderIndices.filter { mine.contains($0) })
    }

    /// Opens this worker's connections at `rate` per second (its share of the total) and
    /// reports how many are ready, the failures, and the connect latencies.
    func open(rate: Double, joins: Bool) async -> JSONValue {
        let (host, port) = (try? WebSocketConnector.parse(load.server)) ?? ("127.0.0.1", 80)
        let outcomes = Mutex<(ready: [BenchConnection], failures: [String], latency: LatencyHistogram)>(([], [], LatencyHistogram()))
        let clock = ContinuousClock()
        let start = clock.now
        var attempts: [Once] = []
        for (number, spec) in specs.enumerated() {
            let due = start + .seconds(Double(number) / rate)
            if clock.now < due { try? await Task.sleep(until: due, clock: clock) }
            let spec = BenchClientSpec(index: spec.index, room: spec.room, proto: spec.proto, joins: joins)
            let began = BenchMark.nowMicros()
            let settled = Once()
            attempts.append(settled)
            let settle: @Sendable (BenchConnection?, String?) -> Bool = { connection, failure in
                guard settled.take() else { return false }
                let micros = BenchMark.nowMicros() - began
                outcomes.withLock { outcomes in
                    if let connection, failure == nil {
                        outcomes.ready.append(connection)
                        outcomes.latency.record(micros: micros)
                    } else {
                        outcomes.failures.append(failure ?? "no answer")
                    }
                }
                return connection != nil && failure == nil
            }
            let tally = self.tally
            let loop = self.loop
            Task {
                do {
                    _ = try await WebSocketConnector.connect(
                        host: host, port: port, uri: "/socket.io/?EIO=4&transport=websocket", group: loop,
                        maxFrameSize: 1 << 20, timeout: .seconds(20),
                        onFailure: { reason in _ = settle(nil, reason) },
                        handlers: { [BenchConnection(spec: spec, tally: tally, onReady: { connection, failure in settle(connection, failure) })] }
                    )
                } catch {
                    _ = settle(nil, "\(error)")
                }
            }
        }
        // Wait for every attempt to settle, at most 30 s after the last one began.
        let deadline = clock.now + .seconds(30)
        while outcomes.withLock({ $0.ready.count + $0.failures.count }) < specs.count, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        // Attempts still pending are given up: should they succeed later, they close at once.
        let unsettled = attempts.filter { $0.take() }.count
        let result = outcomes.withLock { $0 }
        ready.withLock { $0 = result.ready }
        var reasons: [String: Int] = [:]
        for failure in result.failures { reasons[failure, default: 0] += 1 }
        if unsettled > 0 { reasons["no answer within 30 s", default: 0] += unsettled }
        var reasonCounts = JSONObject()
        for (reason, count) in reasons { reasonCounts[reason] = .number(Double(count)) }
        return [
            "event": "connected", "connected": .number(Double(result.ready.count)),
            "failures": .number(Double(result.failures.count + unsettled)),
            "failureReasons": .object(reasonCounts),
            "latency": result.latency.json,
        ]
    }

    /// This worker's ready senders, by index, and the ready members of each of its rooms (what
    /// every message sent to a room should reach).
    private func roster() -> (senders: [BenchConnection], members: [String: Int]) {
        let connections = ready.withLock { $0 }
        var members: [String: Int] = [:]
        for connection in connections { members[connection.spec.room, default: 0] += 1 }
        let senders = connections.filter { senderIndices.contains($0.spec.index) }.sorted { $0.spec.index < $1.spec.index }
        return (senders, members)
    }

    /// Sends rounds of one message from every sender until one round reaches every member of
    /// the senders' rooms: then every join has taken effect (the tutorial's `join` has no answer).
    /// Step 0 is the warm-up's; measured steps count from 1.
    func warmUp() async -> JSONValue {
        let (senders, members) = roster()
        let clock = ContinuousClock()
        var rounds = 0
        var complete = senders.isEmpty
        while !complete, rounds < 20 {
            rounds += 1
            tally.begin(step: 0)
            try? await loop.submit { [tally] in
                for sender in senders { sender.sendCounted(step: 0, members: members, tally: tally) }
            }.get()
            let deadline = clock.now + .seconds(1)
            while !complete, clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
                complete = tally.read { $0.complete >= $0.sent }
            }
        }
        return ["event": "warm", "rounds": .number(Double(rounds)), "complete": .bool(complete)]
    }

    /// Sends this worker's share of `rate` messages per second for `duration` seconds, then waits
    /// up to `drain` seconds for the deliveries; reports progress on the way and the step's counts.
    func step(_ step: Int, rate: Double, duration: Double, drain: Double) async -> JSONValue {
        let (senders, members) = roster()
        let myRate = senders.isEmpty ? 0 : rate * Double(senders.count) / Double(load.senders)
        tally.begin(step: step)
        let pacer = Pacer(
            total: Int(myRate * duration), rate: myRate, senders: senders, members: members, step: step, tally: tally
        )
        let firstSend = BenchMark.nowMicros()
        pacer.start(on: loop)
        let clock = ContinuousClock()
        var lastProgress = clock.now
        while !pacer.finished {
            try? await Task.sleep(for: .milliseconds(50))
            if clock.now - lastProgress >= .milliseconds(500) {
                lastProgress = clock.now
                emitProgress(step)
            }
        }
        let drainDeadline = clock.now + .seconds(drain)
        while tally.read({ $0.complete < $0.sent }), clock.now < drainDeadline {
            try? await Task.sleep(for: .milliseconds(20))
            if clock.now - lastProgress >= .milliseconds(500) {
                lastProgress = clock.now
                emitProgress(step)
            }
        }
        return tally.read { state in
            var lost = 0
            var duplicated = 0
            for (expected, received) in zip(state.expected, state.received) {
                if received < expected { lost += Int(expected - received) } else { duplicated += Int(received - expected) }
            }
            return [
                "event": "step", "step": .number(Double(step)), "sent": .number(Double(state.sent)),
                "expected": .number(Double(state.expectedTotal)), "received": .number(Double(state.receivedTotal)),
                "lost": .number(Double(lost)), "duplicated": .number(Double(duplicated)), "stray": .number(Double(state.stray)),
                "disconnects": .number(Double(state.disconnects)),
                "firstSendMicros": .number(Double(firstSend)), "lastReceiptMicros": .number(Double(state.lastReceiptMicros)),
                "histogram": state.histogram.json,
            ]
        }
    }

    private func emitProgress(_ step: Int) {
        let progress: JSONValue = tally.read { state in
            [
                "event": "progress", "step": .number(Double(step)), "sent": .number(Double(state.sent)),
                "expected": .number(Double(state.expectedTotal)), "received": .number(Double(state.receivedTotal)),
            ]
        }
        BenchWorker.emit(progress)
    }

    func closeAll() async {
        let connections = ready.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        try? await loop.submit { for connection in connections { connection.close() } }.get()
    }
}

/// A flag that can be taken once, by whichever comes first.
final class Once: Sendable {
    private let taken = Atomic<Bool>(false)

    /// `true` for the first caller only.
    func take() -> Bool {
        taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}

/// Sends a step's messages on the workers' event loop, on time: every millisecond it sends the
/// messages that have fallen due, taking the senders in turn. Touched only on that loop, but
/// for `finished`.
final class Pacer: @unchecked Sendable {
    private let total: Int
    private let rate: Double
    private let senders: [BenchConnection]
    private let members: [String: Int]
    private let step: Int
    private let tally: StepTally
    private var sent = 0
    private var startMicros: Int64 = 0
    private let done = Atomic<Bool>(false)

    init(total: Int, rate: Double, senders: [BenchConnection], members: [String: Int], step: Int, tally: StepTally) {
        self.total = senders.isEmpty ? 0 : total
        self.rate = rate
        self.senders = senders
        self.members = members
        self.step = step
        self.tally = tally
    }

    var finished: Bool { done.load(ordering: .acquiring) }

    func start(on loop: any EventLoop) {
        guard total > 0 else {
            done.store(true, ordering: .releasing)
            return
        }
        loop.execute { [self] in
            startMicros = BenchMark.nowMicros()
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { [self] task in
                let elapsed = Double(BenchMark.nowMicros() - startMicros) / 1e6
                let due = min(total, Int(elapsed * rate) + 1)
                while sent < due {
                    senders[sent % senders.count].sendCounted(step: step, members: members, tally: tally)
                    sent += 1
                }
                if sent >= total {
                    task.cancel()
                    done.store(true, ordering: .releasing)
                }
            }
        }
    }
}
