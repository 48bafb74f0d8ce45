import Metrics

/// Why a store refused an operation without changing anything (what the client gets as
/// ``ChatError/Code/storeUnavailable``). Each refusal is counted as `parley_store_refusals_total`,
/// by store and reason, so that an operator can alert on a database that is away or a disk that
/// is full without reading the log.
public enum StoreRefusal: String, Sendable, CaseIterable {
    /// No database connection within the wait: PostgreSQL is down, or every connection is busy.
    case noConnection = "no_connection"
    /// Another process held the SQLite file's write lock past the busy timeout.
    case locked
    /// The database could not write: a full disk, a file that may not grow.
    case cannotWrite = "cannot_write"

    /// The counter's label.
    public static let metric = "parley_store_refusals_total"

    /// Counts one refused operation of `store` (`sqlite` or `postgres`).
    public func count(store: String) {
        counter(store: store).increment()
    }

    /// Makes `store`'s counters of `reasons`, so that they read 0 until a refusal (an alert on a
    /// series that does not exist yet never fires).
    public static func declare(store: String, _ reasons: [StoreRefusal]) {
        for reason in reasons { _ = reason.counter(store: store) }
    }

    private func counter(store: String) -> Counter {
        Counter(label: Self.metric, dimensions: [("store", store), ("reason", rawValue)])
    }
}
