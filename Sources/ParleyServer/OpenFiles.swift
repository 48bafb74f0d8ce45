#if canImport(Glibc)
import Glibc
#endif

/// The process's open-file limit, and how many connections it leaves room for.
///
/// Every WebSocket holds a file descriptor. A server at its limit cannot accept (NIO backs off
/// and retries, so the client waits in silence), nor open a database file or connection, so
/// that its clients' messages fail too. The server therefore raises its soft limit to the hard
/// one on start, as many servers do (the soft limit is often 1,024 where the hard one is far
/// higher), and stops taking sessions a margin before the limit: new clients are told the
/// server is full (Engine.IO code 6, HTTP 503) and come back later, and the sessions it has keep
/// working.
enum OpenFiles {
    /// Raises the soft open-file limit to the hard one; the soft limit afterwards, `nil` where it
    /// cannot be read or is unlimited.
    static func raiseLimit() -> Int? {
        #if canImport(Glibc)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        // RLIM_INFINITY is all ones, beyond any Int.
        return limit.rlim_cur > rlim_t(Int.max) ? nil : Int(limit.rlim_cur)
        #else
        return nil
        #endif
    }

    /// The sessions a limit of `limit` open files leaves room for: all but a quarter of it, at
    /// most 1,024 kept back, for what is not a session (the store's files and connections, the
    /// cluster bus, HTTP requests for the web app and the API, the event loops' own).
    static func sessions(allowedBy limit: Int) -> Int {
        max(1, limit - min(1024, limit / 4))
    }
}
