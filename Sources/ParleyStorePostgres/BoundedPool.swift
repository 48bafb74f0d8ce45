import Logging
import ParleyCore
import PostgresNIO
import Synchronization

/// A way to a postgres-nio connection pool on which an operation waits at most ``wait`` for a
/// connection, then fails with ``ChatError/storeUnavailable``: the PostgreSQL store's, and the
/// cluster bus's for what a client waits on.
///
/// postgres-nio's pool keeps a request waiting while it cannot connect, and fails it only once
/// connections have been failing for a minute. With the database down, a client's message then
/// went unanswered for that minute. Only the wait for a connection is bounded: once an operation
/// has one, it runs to its end, so a refusal always means that nothing reached the database and
/// the request may be sent again.
public struct BoundedPool: Sendable {
    /// The pool.
    public let client: PostgresClient
    /// How long an operation waits for a connection.
    public let wait: Duration
    let logger: Logger

    /// Operations on `client`'s connections, each waiting at most `wait` for one.
    public init(client: PostgresClient, wait: Duration, logger: Logger) {
        self.client = client
        self.wait = wait
        self.logger = logger
    }

    /// Where an operation stands: waiting for its connection, or past that, with one or too late.
    private final class Phase: Sendable {
        enum State { case waiting, leased, expired }
        private let state = Mutex(State.waiting)

        /// Moves from waiting to `next`; false when the other side got there first.
        func leave(for next: State) -> Bool {
            state.withLock { current in
                guard current == .waiting else { return false }
                current = next
                return true
            }
        }

        var isWaiting: Bool { state.withLock { $0 == .waiting } }
    }

    /// Runs `body` on a pooled connection, once one is free within ``wait``. The connection
    /// must not escape `body`.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let phase = Phase()
        do {
            return try await withThrowingTaskGroup(of: T?.self) { [client, wait] group in
                group.addTask {
                    do {
                        return try await client.withConnection { connection in
                            // Leased after the deadline: the caller has been answered already.
                            guard phase.leave(for: .leased) else { throw CancellationError() }
                            return try await body(connection)
                        }
                    } catch {
                        // The lease itself failed (the pool gave up connecting): nothing was sent.
                        // A caller that was cancelled meanwhile only learns that.
                        if phase.isWaiting, !(error is CancellationError) { throw NoConnection(underlying: error) }
                        throw error
                    }
                }
                group.addTask {
                    try await Task.sleep(for: wait)
                    if phase.leave(for: .expired) { throw NoConnection(underlying: nil) }
                    return nil
                }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                preconditionFailure("the operation's task ended without a result or an error")
            }
        } catch let error as NoConnection {
            logger.warning(
                "no database connection within \(wait); answering store_unavailable",
                metadata: error.underlying.map { ["error": .string(String(reflecting: $0))] } ?? [:]
            )
            StoreRefusal.noConnection.count(store: "postgres")
            throw ChatError.storeUnavailable
        }
    }

    /// Every row of `query`, run on a pooled connection (see ``withConnection(_:)``). A statement
    /// the database refused for want of resources is ``ChatError/storeCannotWrite``.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await refusingWhenOutOfResources {
            try await withConnection { [logger] connection in try await connection.query(query, logger: logger).collect() }
        }
    }

    /// Runs `body` in a transaction on a pooled connection (see ``withConnection(_:)``). A
    /// transaction the database refused for want of resources is ``ChatError/storeCannotWrite``.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await refusingWhenOutOfResources {
            try await withConnection { [logger] connection in
                try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
            }
        }
    }

    /// Runs `operation` (one statement, or one transaction); an error of SQLSTATE class 53,
    /// "insufficient resources" (`disk_full` above all), is logged and becomes
    /// ``ChatError/storeCannotWrite``: the statement failed, its transaction was rolled back, and
    /// the same request may succeed once the operator has made room.
    private func refusingWhenOutOfResources<T>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch {
            guard Self.refusedForWantOfResources(error) else { throw error }
            logger.error(
                "the database is out of resources (is its disk full?); nothing was stored, answering store_unavailable",
                metadata: ["error": .string(String(reflecting: error))]
            )
            StoreRefusal.cannotWrite.count(store: "postgres")
            throw ChatError.storeCannotWrite
        }
    }

    /// Whether the database refused a statement of `error`, or of the transaction it ended,
    /// with SQLSTATE class 53.
    private static func refusedForWantOfResources(_ error: any Error) -> Bool {
        var refusal = error
        if let failed = error as? PostgresTransactionError, let cause = failed.beginError ?? failed.closureError ?? failed.commitError {
            refusal = cause
        }
        return (refusal as? PSQLError)?.serverInfo?[.sqlState]?.hasPrefix("53") == true
    }

    private struct NoConnection: Error {
        let underlying: (any Error)?
    }
}
