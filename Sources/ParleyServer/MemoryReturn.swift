import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// When to hand memory back to the operating system after clients leave.
///
/// glibc's allocator keeps what a program frees for its next allocations: after 10,000 clients
/// connect and leave, the server's resident memory stays where it peaked (40 MB → 88 MB, and
/// 88 MB a minute later) although Parley has freed the sessions. Users of socket.io report the
/// same of Node (socket.io #2427, #2282). The server therefore watches its session count and,
/// once at least `threshold` sessions have closed since the busiest moment, returns the free
/// memory (`malloc_trim`) one interval later: a closed session is freed only when its
/// heartbeat entry comes due, up to a ping interval and a ping timeout after it closed.
struct MemoryReturnPolicy: Sendable {
    /// How many sessions must have closed since the peak.
    let threshold: Int
    /// The most sessions seen since memory was last returned.
    private var peak = 0
    /// Whether enough sessions closed by the last observation: memory is returned at the next.
    private var settling = false

    init(threshold: Int) {
        self.threshold = max(1, threshold)
    }

    /// Takes the number of open sessions, observed once an interval; returns whether to return
    /// memory now.
    mutating func observe(sessions: Int) -> Bool {
        if settling {
            settling = false
            peak = sessions
            return true
        }
        peak = max(peak, sessions)
        settling = peak - sessions >= threshold
        return false
    }
}

/// The process's memory, as the operating system sees it.
enum ProcessMemory {
    /// Hands the allocator's free memory back to the operating system; `false` where the C
    /// library cannot (only glibc has `malloc_trim`) or had nothing to return.
    static func returnFreeMemory() -> Bool {
        mallocTrim.map { $0(0) == 1 } ?? false
    }

    /// glibc's `malloc_trim(pad)`, looked up at run time: Swift's Glibc module does not declare
    /// it (it lives in `malloc.h`), and other C libraries lack it.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// The resident set size in bytes, from `/proc/self/statm` (its second field, in pages);
    /// `nil` where there is no such file.
    static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * pageSize
    }

    private static let pageSize: Int = {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return 4096
        #endif
    }()
}
