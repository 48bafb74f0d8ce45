import Foundation
import SocketIO
import Synchronization

/// Starts the worker processes of a bench run and talks to them: a JSON command a line on each
/// worker's standard input, JSON events a line on its standard output.
final class Coordinator: Sendable {
    private struct Worker: Sendable {
        let process: Process
        let input: FileHandle
    }

    private let workers: [Worker]
    private let events: AsyncStream<(worker: Int, event: JSONValue)>
    private let progress: ProgressLine

    /// Starts `load.workers` copies of this executable as `parley bench worker`.
    init(load: LoadOptions, runID: String, progress: ProgressLine) throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let (events, continuation) = AsyncStream<(worker: Int, event: JSONValue)>.makeStream()
        var workers: [Worker] = []
        for index in 0..<load.workers {
            let process = Process()
            process.executableURL = executable
            process.arguments = [
                "bench", "worker", "--index", "\(index)", "--run-id", runID, "--server", load.server, "--protocol", load.protocol,
                "--clients", "\(load.clients)", "--room-size", "\(load.roomSize)", "--senders", "\(load.senders)",
                "--workers", "\(load.workers)",
            ]
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            let reader = output.fileHandleForReading
            Thread.detachNewThread {
                var pending = Data()
                while true {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                        pending.removeSubrange(pending.startIndex...newline)
                        if let event = try? JSONValue(parsing: line) { continuation.yield((index, event)) }
                    }
                }
                continuation.yield((index, ["event": "exited"]))
            }
            workers.append(Worker(process: process, input: input.fileHandleForWriting))
        }
        self.workers = workers
        self.events = events
        self.progress = progress
    }

    /// Sends `command` to every worker and returns each worker's `reply` event, in worker order.
    /// Progress events update the live line meanwhile.
    func request(_ command: JSONValue, reply: String, step: StepSetting? = nil) async throws -> [JSONValue] {
        let line = Data((command.json + "\n").utf8)
        for worker in workers { worker.input.write(line) }
        var replies = [JSONValue?](repeating: nil, count: workers.count)
        var latest = [JSONValue?](repeating: nil, count: workers.count)
        for await (index, event) in events {
            switch event["event"]?.stringValue {
            case reply?:
                replies[index] = event
                if replies.allSatisfy({ $0 != nil }) { return replies.map { $0! } }
            case "progress":
                latest[index] = event
                let sum = { (key: String) in latest.reduce(0) { $0 + ($1?[key]?.intValue ?? 0) } }
                progress.show(step: step, sent: sum("sent"), expected: sum("expected"), received: sum("received"))
            case "exited":
                throw BenchFailure("bench worker \(index) exited unexpectedly")
            default:
                continue
            }
        }
        throw BenchFailure("bench workers stopped answering")
    }

    /// Tells the workers to close their connections and waits for them to exit.
    func finish() async {
        _ = try? await request(["command": "quit"], reply: "bye")
        for worker in workers {
            try? worker.input.close()
            worker.process.waitUntilExit()
        }
    }
}

/// A failure of the bench itself (not of the server measured).
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The offered load of one step.
struct StepSetting: Sendable {
    let number: Int
    /// Messages per second, all senders together.
    let messageRate: Double
    /// Deliveries per second the server is asked for: each message times its room's members.
    let offeredDeliveries: Double
}

/// The live progress line on standard error: rewritten in place on a terminal, a line every
/// few seconds otherwise.
final class ProgressLine: Sendable {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    func show(step: StepSetting?, sent: Int, expected: Int, received: Int) {
        var text = ""
        if let step { text += "step \(step.number) at \(Int(step.offeredDeliveries)) deliveries/s: " }
        text += "sent \(sent), delivered \(received)/\(expected)"
        write(text)
    }

    func show(_ text: String) { write(text) }

    private func write(_ text: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
            return
        }
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            guard last.map({ now - $0 >= .seconds(2) }) ?? true else { return false }
            last = now
            return true
        }
        if due { FileHandle.standardError.write(Data(("… " + text + "\n").utf8)) }
    }

    /// Ends the line in place before other output.
    func clear() {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
