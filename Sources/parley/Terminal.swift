import Foundation

/// Terminal plumbing shared by `parley chat` and `parley events`.
enum Terminal {
    /// Standard input, line by line, read on a thread of its own; finishes at end of input.
    static func lines() -> AsyncStream<String> {
        AsyncStream { continuation in
            Thread.detachNewThread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
        }
    }

    /// Writes a line at once, whatever standard output is connected to.
    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes without a newline (a prompt).
    static func prompt(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Calls `handler` on SIGINT instead of dying, so that Ctrl-C can close cleanly.
    static func onInterrupt(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }

    /// Whether colours should be used: standard output is a terminal and NO_COLOR is unset.
    static var colours: Bool {
        isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    }
}
