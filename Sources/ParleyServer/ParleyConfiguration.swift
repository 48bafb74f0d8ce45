import EngineIO
import Logging
import ParleyCore
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
    /// The SQLite database file, created and migrated on start; `:memory:` keeps everything in
    /// memory (lost on exit). Default `parley.sqlite` in the working directory.
    public var database = "parley.sqlite"
    /// The chat service's limits and policies (message length, history page, password hash,
    /// default retention, maximum age of undelivered messages).
    public var chat = ChatConfiguration()
    /// The most entries the fourth tutorial's global history keeps (the newest). Default 1000.
    public var tutorial4HistoryCap = 1000
    /// How often `until-delivered` messages past their maximum age are deleted. Default 60 s.
    public var sweepInterval: Duration = .seconds(60)
    /// The log level. Default `info`.
    public var logLevel: Logger.Level = .info

    public init() {}
}
