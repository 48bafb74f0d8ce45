import EngineIO
import Foundation
import NIOCore
import Logging
import ParleyCore
import ParleyStoreSQLite
import SocketIO

/// Everything `parley serve` can be told, with the documented defaults.
public struct ParleyConfiguration: Sendable {
    /// The address to listen on. Default `0.0.0.0` (every interface).
    public var host = "0.0.0.0"
    /// The port to listen on; 0 picks a free one. Default 3000.
    public var port = 3000
    /// The Engine.IO options (path `/socket.io/`, ping 25 s / 20 s, max payload 1 MB, CORS off).
    /// Parley accepts Engine.IO v3 clients (socket.io-client 1.x and 2.x) too.
    public var engine: EngineConfiguration = {
        var engine = EngineConfiguration()
        engine.allowEIO3 = true
        return engine
    }()
    /// The Socket.IO options (connect timeout 45 s; connection state recovery off, as in the
    /// reference server, because it appends an offset argument to every broadcast, which
    /// clients with fixed-arity handlers do not expect).
    public var socketIO = SocketIOConfiguration()
    /// Where messages and accounts are kept: a SQLite database file, created and migrated on
    /// start (`:memory:` keeps everything in memory, lost on exit), or a PostgreSQL URL
    /// (`postgres://user:password@host:5432/database`, migrated on start), which several nodes
    /// may share. Default `parley.sqlite` in the working directory.
    public var database = "parley.sqlite"

    /// When a SQLite database's commits are on disk: `full` (the default) syncs each commit, so
    /// that an acknowledged message survives a power loss; `normal` leaves that to checkpoints
    /// and survives only a crash of the server process.
    public var sqliteSync: SQLiteChatStore.Sync = .full

    /// Whether `database` names a PostgreSQL database rather than a SQLite file.
    public static func isPostgresURL(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }
    /// The chat service's limits and policies (message length, history page, password hash,
    /// default retention, maximum age of undelivered messages).
    public var chat = ChatConfiguration()
    /// The most entries the fourth tutorial's global history keeps (the newest). Default 1000.
    public var tutorial4HistoryCap = 1000
    /// How often `until-delivered` messages past their maximum age are deleted. Default 60 s.
    public var sweepInterval: Duration = .seconds(60)
    /// How many sessions must close, counted from the busiest moment, before the server hands
    /// the memory they used back to the operating system (glibc keeps freed memory for reuse
    /// otherwise). It does so a ping interval and a ping timeout after it sees the drop, when
    /// the closed sessions have been freed. Default 1000.
    public var memoryReturnThreshold = 1000
    /// Network threads (event loops). Default: one per CPU this process may run on, so that a
    /// server pinned to one core (`taskset -c 1`) does not switch between two loops.
    public var threads = ParleyConfiguration.usableCPUs()
    /// The most connections (Engine.IO sessions) open at once; past it, new clients are told the
    /// server is full (HTTP 503, Engine.IO code 6) and come back later. Default (`nil`): what the
    /// open-file limit leaves room for, all but a quarter of it and at most 1,024 kept back for
    /// the rest, once the server has raised its soft limit to the hard one.
    public var maxConnections: Int?
    /// The log level. Default `info`.
    public var logLevel: Logger.Level = .info
    /// How long a stopping server waits for what its clients sent before the end to be handled
    /// and the messages it has taken to be stored (a database locked by another process holds
    /// them up). What is still waiting then is lost, and the log says how much. Default 8 s:
    /// inside Docker's 10 s between its SIGTERM and its SIGKILL.
    public var shutdownTimeout: Duration = .seconds(8)
    /// This node's name in a cluster (nodes sharing a PostgreSQL database): its id on the
    /// cluster bus and in `/healthz`. Default: a random id.
    public var nodeName: String?

    /// Whether `name` can name a node: 1 to 32 ASCII letters, digits, `-` and `_`.
    public static func isValidNodeName(_ name: String) -> Bool {
        (1...32).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    public init() {}

    /// The CPUs this process may run on (its affinity, as `taskset` sets it), at least 1.
    public static func usableCPUs() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return System.coreCount }
        // A list such as "0-3,6,8-9".
        var count = 0
        for range in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(separator: ",") {
            let bounds = range.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2 { count += bounds[1] - bounds[0] + 1 } else if bounds.count == 1 { count += 1 }
        }
        return max(1, count)
    }
}
