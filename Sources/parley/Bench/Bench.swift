import ArgumentParser
import Foundation
import SocketIO

/// `parley bench`: a load generator for Socket.IO chat servers, Parley or any other that speaks
/// the first tutorial's protocol.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a Socket.IO chat server: connections held, messages fanned out, the highest sustained delivery rate.",
        discussion: """
            Every scenario runs its connections in --workers processes (one event-loop thread each; \
            pin them with taskset). Messages carry their send time and a sequence number, so every \
            delivery is counted: lost and duplicated ones are reported, and the command exits with \
            status 2 when there are any. --protocol tutorial (the default) speaks the first tutorial's \
            login/join/chat → message, so any Socket.IO chat server built from it can be measured.
            """,
        subcommands: [Connect.self, Fanout.self, Ceiling.self, Plot.self, BenchWorker.self]
    )
}

extension Bench {
    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open --clients connections at --connect-rate per second and hold them: connect latency, failures, and with --pid the server's memory per connection."
        )

        @OptionGroup var load: LoadOptions
        @OptionGroup var output: OutputOptions

        @Option(help: "Seconds to hold the connections before measuring the server's memory.")
        var hold = 2.0

        func validate() throws {
            guard hold >= 0 else { throw ValidationError("--hold must not be negative") }
        }

        func run() async throws {
            let server = load.pid.map(ServerProbe.init)
            let before = server?.residentBytes()
            let progress = ProgressLine()
            let coordinator = try Coordinator(load: load, runID: BenchRun.newID(), progress: progress)
            progress.show("opening \(load.clients) connections")
            let opened = try await BenchRun.connect(coordinator, load: load, rate: load.connectRate, joins: false)
            try await Task.sleep(for: .seconds(hold))
            let after = server?.residentBytes()
            await coordinator.finish()
            progress.clear()

            var report = BenchRun.header("connect", load: load, label: output.label)
            report["connected"] = .number(Double(opened.connected))
            report["failures"] = .number(Double(opened.failures))
            report["failureReasons"] = .object(opened.reasons)
            report["connectLatencyMs"] = opened.latency.millisecondsJSON
            var table = Table(["", "value"])
            table.add(["connected", "\(opened.connected)/\(load.clients)"])
            table.add(["failures", "\(opened.failures)"])
            table.add(["connect p50", Table.ms(opened.latency.percentileMs(0.5))])
            table.add(["connect p99", Table.ms(opened.latency.percentileMs(0.99))])
            table.add(["connect max", Table.ms(opened.latency.maxMs)])
            if let before, let after, opened.connected > 0 {
                let perConnection = Double(after - before) / Double(opened.connected)
                report["serverResidentBytes"] = [
                    "before": .number(Double(before)), "after": .number(Double(after)), "perConnection": .number(perConnection),
                ]
                table.add(["server RSS", "\(before / 1024) kB → \(after / 1024) kB"])
                table.add(["per connection", String(format: "%.0f bytes", perConnection)])
            }
            try output.write(report, table: table.text)
            if opened.failures > 0 { throw ExitCode(2) }
        }
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "--clients in rooms of --room-size, --senders sending --rate messages per second for --duration seconds: deliveries per second, every delivery counted, latency percentiles."
        )

        @OptionGroup var load: LoadOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var steps: StepOptions

        @Option(help: "Messages per second, all senders together (each is delivered to every member of its room).")
        var rate = 100.0

        @Option(help: "Seconds of sending.")
        var duration = 5.0

        func validate() throws {
            guard rate > 0, duration > 0 else { throw ValidationError("--rate and --duration must be positive") }
        }

        func run() async throws {
            let progress = ProgressLine()
            let coordinator = try Coordinator(load: load, runID: BenchRun.newID(), progress: progress)
            let opened = try await BenchRun.connect(coordinator, load: load, rate: load.connectRate, joins: true)
            try await BenchRun.warmUp(coordinator)
            let setting = StepSetting(number: 1, messageRate: rate, offeredDeliveries: rate * Double(min(load.roomSize, load.clients)))
            let result = try await BenchRun.step(coordinator, setting, duration: duration, options: steps, pid: load.pid)
            await coordinator.finish()
            progress.clear()

            var report = BenchRun.header("fanout", load: load, label: output.label)
            report["connect"] = opened.json
            report["steps"] = [result.json]
            for (key, value) in result.json.objectValue ?? [:] { report[key] = value }
            try output.write(report, table: result.table(connected: opened))
            if result.lost > 0 || result.duplicated > 0 || opened.failures > 0 { throw ExitCode(2) }
        }
    }

    struct Ceiling: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step the offered delivery rate up until p99 passes --p99-bound, deliveries fall behind, or messages are lost: the highest sustained delivery rate."
        )

        @OptionGroup var load: LoadOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var steps: StepOptions

        @Option(help: "The first step's offered deliveries per second.")
        var start = 5000.0

        @Option(help: "Each step offers this many times the one before.")
        var factor = 1.25

        @Option(help: "Stop after a step offering this many deliveries per second.")
        var max = 2_000_000.0

        @Option(help: "Seconds of sending per step.")
        var stepDuration = 5.0

        @Option(help: "A step passes while its p99 latency is at most this many milliseconds…")
        var p99Bound = 200.0

        @Option(help: "…at least this fraction of the expected deliveries arrived…")
        var minDelivered = 0.999

        @Option(help: "…and the delivery rate kept up with at least this fraction of the offered rate.")
        var minKeptUp = 0.9

        @Option(help: "How many failed steps are run again at the same rate before the run stops (for noisy machines).")
        var retries = 1

        @Option(help: "Once a rate fails, this many more steps each try the middle of the gap between the highest rate sustained and the lowest failed, to place the ceiling between two steps of --factor.")
        var refine = 0

        @Option(help: "Also draw latency against offered rate into this SVG file.")
        var svg: String?

        func validate() throws {
            guard retries >= 0, refine >= 0, start > 0, factor > 1, max >= start, stepDuration > 0, p99Bound > 0, (0...1).contains(minDelivered), (0...1).contains(minKeptUp)
            else { throw ValidationError("--start positive, --factor above 1, --max at least --start, fractions between 0 and 1") }
        }

        func run() async throws {
            let progress = ProgressLine()
            let coordinator = try Coordinator(load: load, runID: BenchRun.newID(), progress: progress)
            let opened = try await BenchRun.connect(coordinator, load: load, rate: load.connectRate, joins: true)
            try await BenchRun.warmUp(coordinator)
            let members = Double(Swift.min(load.roomSize, load.clients))
            var results: [StepResult] = []
            var offered = start
            var stoppedBecause = "reached --max"
            var number = 1
            var retriesLeft = retries
            var refinesLeft = refine
            // The highest rate sustained and the lowest failed for good, once there is one.
            var sustained: Double?
            var failed: Double?
            while offered <= max {
                let setting = StepSetting(number: number, messageRate: offered / members, offeredDeliveries: offered)
                let result = try await BenchRun.step(coordinator, setting, duration: stepDuration, options: steps, pid: load.pid)
                let verdict = result.verdict(p99Bound: p99Bound, minDelivered: minDelivered, minKeptUp: minKeptUp)
                results.append(result.with(verdict: verdict))
                number += 1
                try await Task.sleep(for: .milliseconds(500))
                if let verdict {
                    // A shared machine has hiccups: a failed rate is tried again before it counts.
                    if retriesLeft > 0 {
                        retriesLeft -= 1
                        continue
                    }
                    stoppedBecause = verdict
                    failed = offered
                } else {
                    sustained = offered
                    if failed == nil {
                        offered *= factor
                        continue
                    }
                }
                // Past the first failure: narrow the gap, while refinement steps are left.
                guard refinesLeft > 0, let low = sustained, let high = failed else { break }
                refinesLeft -= 1
                offered = (low + high) / 2
            }
            await coordinator.finish()
            progress.clear()

            let passed = results.filter { $0.failure == nil }
            let ceiling = passed.map(\.deliveriesPerSecond).max() ?? 0
            var report = BenchRun.header("ceiling", load: load, label: output.label)
            report["connect"] = opened.json
            report["steps"] = .array(results.map(\.json))
            report["ceiling"] = [
                "deliveriesPerSecond": .number(ceiling), "stoppedBecause": .string(stoppedBecause),
                "p99BoundMs": .number(p99Bound), "minDelivered": .number(minDelivered), "minKeptUp": .number(minKeptUp),
            ]
            var table = StepResult.table(results)
            table += "\nceiling: \(Int(ceiling)) deliveries/s sustained (p99 ≤ \(Table.ms(p99Bound)), ≥ \(minDelivered * 100)% delivered); stopped: \(stoppedBecause)"
            try output.write(report, table: table)
            if let svg {
                try Data(LatencyPlot(series: [(output.label ?? load.server, results)], bound: p99Bound).svg.utf8).write(to: URL(fileURLWithPath: svg))
                Terminal.say("plot written to \(svg)")
            }
            if opened.failures > 0 { throw ExitCode(2) }
        }
    }

    struct Plot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw the latency against offered rate of one or more saved reports (fanout or ceiling JSON) into one SVG."
        )

        @Argument(help: "JSON reports written by --output.")
        var reports: [String]

        @Option(help: "The SVG file to write.")
        var output: String

        @Option(help: "A horizontal line at this latency, in milliseconds.")
        var bound: Double?

        func run() async throws {
            var series: [(String, [StepResult])] = []
            for path in reports {
                let report = try JSONValue(parsing: String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self))
                let steps = (report["steps"]?.arrayValue ?? []).map(StepResult.init(json:))
                guard !steps.isEmpty else { throw ValidationError("\(path) has no steps (a connect report?)") }
                series.append((report["label"]?.stringValue ?? path, steps))
            }
            try Data(LatencyPlot(series: series, bound: bound).svg.utf8).write(to: URL(fileURLWithPath: output))
            Terminal.say("plot written to \(output)")
        }
    }
}

/// Where a scenario's figures go.
struct OutputOptions: ParsableArguments {
    @Option(help: "Write every figure as JSON to this file.")
    var output: String?

    @Option(help: "A name for this run in the JSON report and plots (such as the server's name).")
    var label: String?

    func write(_ report: JSONObject, table: String) throws {
        Terminal.say(table)
        if let output {
            try Data(JSONValue.object(report).json.utf8).write(to: URL(fileURLWithPath: output))
            Terminal.say("figures written to \(output)")
        }
    }
}

/// How the message scenarios run their steps.
struct StepOptions: ParsableArguments {
    @Option(help: "Seconds to wait after sending for the last deliveries.")
    var drain = 5.0

    func validate() throws {
        guard drain >= 0 else { throw ValidationError("--drain must not be negative") }
    }
}

/// The steps shared by the scenarios.
enum BenchRun {
    static func newID() -> String { String(UInt32.random(in: 0...UInt32.max), radix: 36) }

    static func header(_ scenario: String, load: LoadOptions, label: String?) -> JSONObject {
        var header: JSONObject = [
            "scenario": .string(scenario), "server": .string(load.server), "protocol": .string(load.protocol),
            "clients": .number(Double(load.clients)), "roomSize": .number(Double(load.roomSize)),
            "senders": .number(Double(load.senders)), "workers": .number(Double(load.workers)),
        ]
        if let label { header["label"] = .string(label) }
        return header
    }

    struct Opened {
        var connected = 0
        var failures = 0
        var reasons = JSONObject()
        var latency = LatencyHistogram()

        var json: JSONValue {
            ["connected": .number(Double(connected)), "failures": .number(Double(failures)), "failureReasons": .object(reasons), "latencyMs": latency.millisecondsJSON]
        }
    }

    static func connect(_ coordinator: Coordinator, load: LoadOptions, rate: Double, joins: Bool) async throws -> Opened {
        let replies = try await coordinator.request(
            ["command": "connect", "rate": .number(rate / Double(load.workers)), "joins": .bool(joins)], reply: "connected"
        )
        var opened = Opened()
        for reply in replies {
            opened.connected += reply["connected"]?.intValue ?? 0
            opened.failures += reply["failures"]?.intValue ?? 0
            for (reason, count) in reply["failureReasons"]?.objectValue ?? [:] {
                opened.reasons[reason] = .number((opened.reasons[reason]?.numberValue ?? 0) + (count.numberValue ?? 0))
            }
            opened.latency.merge(LatencyHistogram(json: reply["latency"]))
        }
        if opened.connected == 0 {
            throw BenchFailure("no connection could be opened: \(JSONValue.object(opened.reasons).json)")
        }
        return opened
    }

    /// Waits until every room delivers to all of its members (see ``WorkerFleet/warmUp()``).
    static func warmUp(_ coordinator: Coordinator) async throws {
        let replies = try await coordinator.request(["command": "warm"], reply: "warm")
        guard replies.allSatisfy({ $0["complete"]?.boolValue == true }) else {
            throw BenchFailure("some rooms never delivered to all their members: the server lost joins or messages before the measurement began")
        }
    }

    static func step(
        _ coordinator: Coordinator, _ setting: StepSetting, duration: Double, options: StepOptions, pid: Int?
    ) async throws -> StepResult {
        let probe = pid.map(ServerProbe.init)
        let cpuBefore = probe?.cpuSeconds()
        let replies = try await coordinator.request(
            [
                "command": "step", "step": .number(Double(setting.number)), "rate": .number(setting.messageRate),
                "duration": .number(duration), "drain": .number(options.drain),
            ],
            reply: "step", step: setting
        )
        var result = StepResult(setting: setting, replies: replies)
        if let cpuBefore, let cpuAfter = probe?.cpuSeconds() {
            result.serverCPUSeconds = cpuAfter.total - cpuBefore.total
            result.serverSystemCPUSeconds = cpuAfter.system - cpuBefore.system
        }
        return result
    }
}

extension LatencyHistogram {
    var millisecondsJSON: JSONValue {
        ["p50": .number(percentileMs(0.5)), "p95": .number(percentileMs(0.95)), "p99": .number(percentileMs(0.99)), "max": .number(maxMs)]
    }
}

/// The server measured, through /proc: resident memory and CPU time.
struct ServerProbe {
    let pid: Int

    func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// The CPU seconds the process has used: in all (user plus system), and in the kernel.
    func cpuSeconds() -> (total: Double, system: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": field 3 (state) first; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((user + system) / ticks, system / ticks)
    }
}
