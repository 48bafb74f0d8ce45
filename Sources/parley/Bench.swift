import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import SocketIO
import SocketIOClient
import Synchronization

/// Load generator: the `fanout` scenario.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a Socket.IO chat server: connections held, or messages fanned out with every delivery counted.",
        discussion: """
            connect: open --clients connections at --connect-rate per second and hold them; report connect \
            latency and failures, and with --pid the server's resident memory before and after, per connection.
            fanout: --clients connections in rooms of --room-size, --senders of them sending at a total \
            --rate messages per second for --duration seconds, each message carrying its send time. \
            Reports deliveries per second, expected against received (lost and duplicated counted), and \
            latency percentiles; writes every figure as JSON to --output. --protocol tutorial speaks the \
            first tutorial's login/join/chat → message, so any Socket.IO server can be measured.
            """
    )

    @Argument(help: "The scenario: fanout or connect.")
    var scenario = "fanout"

    @Option(help: "connect: connections opened per second.")
    var connectRate = 500.0

    @Option(help: "connect: the server's process id, to report its resident memory per connection.")
    var pid: Int?

    @Option(help: "The server's URL.")
    var server = "http://localhost:3000"

    @Option(help: "tutorial (login, join, chat → message) or native (room:join, message:send; subject to the per-connection rate limits).")
    var `protocol` = "tutorial"

    @Option(help: "Connections.")
    var clients = 100

    @Option(help: "Members per room.")
    var roomSize = 10

    @Option(help: "How many of the clients send.")
    var senders = 10

    @Option(help: "Messages per second, all senders together.")
    var rate = 100.0

    @Option(help: "Seconds of sending.")
    var duration = 5.0

    @Option(help: "Where to write the JSON report.")
    var output: String?

    func validate() throws {
        guard ["fanout", "connect"].contains(scenario) else { throw ValidationError("unknown scenario \(scenario): fanout or connect") }
        guard connectRate > 0 else { throw ValidationError("--connect-rate must be positive") }
        guard ["tutorial", "native"].contains(`protocol`) else { throw ValidationError("--protocol is tutorial or native") }
        guard clients > 0, roomSize > 0, senders > 0, senders <= clients, rate > 0, duration > 0 else {
            throw ValidationError("counts, rate and duration must be positive, and --senders at most --clients")
        }
    }

    func run() async throws {
        if scenario == "connect" { return try await connect() }
        let tally = Tally()
        let native = `protocol` == "native"
        var connections: [SocketIOClient] = []
        let started = ContinuousClock.now
        for index in 0..<clients {
            let room = "bench-\(index / roomSize)"
            var configuration = SocketIOClientConfiguration()
            if native { configuration.auth = ["name": .string("bench\(index)")] }
            let client = SocketIOClient(url: server, configuration: configuration)
            client.on("message") { args, _ in
                let text = native ? args.first?["text"]?.stringValue : args.first?["message"]?.stringValue
                if let text { tally.received(text) }
            }
            try await client.connect()
            if native {
                _ = try await client.emitWithAck("room:join", ["room": .string(room)])
            } else {
                client.emit("login", .string("bench\(index)"))
                client.emit("join", .string(room))
            }
            connections.append(client)
        }
        let connectSeconds = (ContinuousClock.now - started).seconds
        Terminal.say("connected \(clients) clients in \(String(format: "%.2f", connectSeconds)) s; sending for \(duration) s at \(rate)/s")
        try await Task.sleep(for: .milliseconds(300))

        // Senders are spread over the rooms and take turns; each message is expected by every
        // member of the sender's room, the sender included.
        let senderIndices = (0..<senders).map { $0 * (clients / senders) }
        let interval = 1.0 / rate
        let total = Int(rate * duration)
        let clock = ContinuousClock()
        let start = clock.now
        var lastProgress = start
        for sequence in 0..<total {
            let due = start + .seconds(Double(sequence) * interval)
            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
            let index = senderIndices[sequence % senders]
            let sender = connections[index]
            let roomIndex = index / roomSize
            let text = tally.sent(sequence: sequence, expected: min(roomSize, clients - roomIndex * roomSize))
            if native {
                sender.emit("message:send", ["room": .string("bench-\(roomIndex)"), "text": .string(text)])
            } else {
                sender.emit("chat", .string(text))
            }
            if clock.now - lastProgress >= .seconds(1) {
                lastProgress = clock.now
                let snapshot = tally.snapshot()
                Terminal.say("… sent \(snapshot.sent)/\(total), delivered \(snapshot.received)/\(snapshot.expected)")
            }
        }
        // Let the last deliveries arrive.
        let drainDeadline = clock.now + .seconds(5)
        while tally.snapshot().received < tally.snapshot().expected, clock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = (clock.now - start).seconds
        for connection in connections { connection.disconnect() }
        let report = tally.report(seconds: elapsed)
        Terminal.say(report.table)
        if let output {
            try Data(report.json.json.utf8).write(to: URL(fileURLWithPath: output))
            Terminal.say("figures written to \(output)")
        }
        if report.lost > 0 || report.duplicated > 0 { throw ExitCode(2) }
    }
}

extension Bench {
    /// The `connect` scenario: opens --clients idle connections at --connect-rate, holds them,
    /// and reports connect latency, failures and (with --pid) the server's resident memory.
    func connect() async throws {
        let before = pid.flatMap(Self.residentBytes)
        var connections: [SocketIOClient] = []
        var latencies: [Double] = []
        var failures = 0
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<clients {
            let due = start + .seconds(Double(index) / connectRate)
            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
            let client = SocketIOClient(url: server)
            let opened = clock.now
            do {
                try await client.connect()
                latencies.append((clock.now - opened).seconds * 1000)
                connections.append(client)
            } catch {
                failures += 1
            }
            if (index + 1) % 1000 == 0 { Terminal.say("… \(index + 1)/\(clients) connections") }
        }
        // Let the server settle before measuring its memory.
        try await Task.sleep(for: .seconds(2))
        let after = pid.flatMap(Self.residentBytes)
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
        }
        var report: JSONObject = [
            "scenario": "connect", "clients": .number(Double(clients)), "connected": .number(Double(connections.count)),
            "failures": .number(Double(failures)),
            "connectLatencyMs": ["p50": .number(percentile(0.5)), "p95": .number(percentile(0.95)), "p99": .number(percentile(0.99)), "max": .number(sorted.last ?? 0)],
        ]
        var table = """
            connected       \(connections.count)/\(clients)
            failures        \(failures)
            connect p50     \(String(format: "%.2f", percentile(0.5))) ms
            connect p99     \(String(format: "%.2f", percentile(0.99))) ms
            connect max     \(String(format: "%.2f", sorted.last ?? 0)) ms
            """
        if let before, let after, !connections.isEmpty {
            let perConnection = Double(after - before) / Double(connections.count)
            report["serverResidentBytes"] = ["before": .number(Double(before)), "after": .number(Double(after)), "perConnection": .number(perConnection)]
            table += "\nserver RSS      \(before / 1024) kB → \(after / 1024) kB, \(String(format: "%.0f", perConnection)) bytes per connection"
        }
        for connection in connections { connection.disconnect() }
        Terminal.say(table)
        if let output {
            try Data(JSONValue.object(report).json.utf8).write(to: URL(fileURLWithPath: output))
            Terminal.say("figures written to \(output)")
        }
        if failures > 0 { throw ExitCode(2) }
    }

    /// A process's resident memory in bytes, from /proc.
    static func residentBytes(_ pid: Int) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// What was sent and what arrived, by message, with delivery latencies.
final class Tally: Sendable {
    private struct State {
        var expected: [Int: Int] = [:]
        var received: [Int: Int] = [:]
        var expectedTotal = 0
        var receivedTotal = 0
        var latencies: [Double] = []
        var sent = 0
    }

    private let state = Mutex(State())
    private let origin = ContinuousClock.now

    /// The text of message `sequence`: its sequence number and send time.
    func sent(sequence: Int, expected: Int) -> String {
        let micros = Int64((ContinuousClock.now - origin).seconds * 1e6)
        state.withLock { state in
            state.expected[sequence] = expected
            state.expectedTotal += expected
            state.sent += 1
        }
        return "bench \(sequence) \(micros)"
    }

    func received(_ text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 3, parts[0] == "bench", let sequence = Int(parts[1]), let micros = Int64(parts[2]) else { return }
        let latency = (ContinuousClock.now - origin).seconds * 1000 - Double(micros) / 1000
        state.withLock { state in
            state.received[sequence, default: 0] += 1
            state.receivedTotal += 1
            state.latencies.append(latency)
        }
    }

    func snapshot() -> (sent: Int, expected: Int, received: Int) {
        state.withLock { ($0.sent, $0.expectedTotal, $0.receivedTotal) }
    }

    struct Report {
        var sent, expected, received, lost, duplicated: Int
        var perSecond, p50, p95, p99, max: Double

        var table: String {
            """
            sent            \(sent)
            expected        \(expected)
            received        \(received)
            lost            \(lost)
            duplicated      \(duplicated)
            deliveries/s    \(String(format: "%.0f", perSecond))
            latency p50     \(String(format: "%.2f", p50)) ms
            latency p95     \(String(format: "%.2f", p95)) ms
            latency p99     \(String(format: "%.2f", p99)) ms
            latency max     \(String(format: "%.2f", max)) ms
            """
        }

        var json: JSONValue {
            [
                "scenario": "fanout", "sent": .number(Double(sent)), "expected": .number(Double(expected)),
                "received": .number(Double(received)), "lost": .number(Double(lost)), "duplicated": .number(Double(duplicated)),
                "deliveriesPerSecond": .number(perSecond), "latencyMs": ["p50": .number(p50), "p95": .number(p95), "p99": .number(p99), "max": .number(max)],
            ]
        }
    }

    func report(seconds: Double) -> Report {
        state.withLock { state in
            var lost = 0
            var duplicated = 0
            for (sequence, expected) in state.expected {
                let got = state.received[sequence, default: 0]
                if got < expected { lost += expected - got } else { duplicated += got - expected }
            }
            let sorted = state.latencies.sorted()
            func percentile(_ p: Double) -> Double {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
            }
            return Report(
                sent: state.sent, expected: state.expectedTotal, received: state.receivedTotal, lost: lost, duplicated: duplicated,
                perSecond: Double(state.receivedTotal) / max(seconds, 0.001),
                p50: percentile(0.5), p95: percentile(0.95), p99: percentile(0.99), max: sorted.last ?? 0
            )
        }
    }
}
