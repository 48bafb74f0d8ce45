import Foundation
import ParleyCore
import ParleyStorePostgres
import PostgresNIO
import Testing

/// The PostgreSQL store's bounded wait for a connection: `store_unavailable` when none comes in
/// time, and nothing else changed about what an operation returns or throws.
@Suite struct BoundedPoolTests {
    /// Runs `body` with a pool on `configuration`, the client running meanwhile.
    private func withPool<T: Sendable>(
        _ configuration: PostgresClient.Configuration, wait: Duration, _ body: @Sendable (BoundedPool) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: configuration, backgroundLogger: TestPostgres.quiet)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        return try await body(BoundedPool(client: client, wait: wait, logger: TestPostgres.quiet))
    }

    /// A loopback port that nothing listens on: one the kernel handed out, then closed.
    private func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        #expect(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func aDatabaseThatRefusesConnectionsIsStoreUnavailableOnceTheWaitIsOver() async throws {
        let configuration = try PostgresChatStore.configuration(url: "postgres://parley@127.0.0.1:\(try closedPort())/none?sslmode=disable")
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: ChatError.storeUnavailable) {
            try await withPool(configuration, wait: .milliseconds(300)) { pool in try await pool.query("SELECT 1") }
        }
        let took = clock.now - started
        #expect(took >= .milliseconds(300))
        // postgres-nio alone gives up only after a minute of failed attempts.
        #expect(took < .seconds(5))
    }

    @Test(.enabled(if: TestPostgres.url != nil)) func aBusyPoolIsStoreUnavailableAndAReachableDatabaseAnswersAsBefore() async throws {
        let configuration = try PostgresChatStore.configuration(url: try await TestPostgres.freshDatabase(), maxConnections: 1)
        try await withPool(configuration, wait: .milliseconds(300)) { pool in
            #expect(try await pool.query("SELECT 1").map { try $0.decode(Int.self) } == [1])
            // An error on a connection is the database's, not store_unavailable.
            await #expect(throws: PSQLError.self) { try await pool.query("SELECT no_such_column") }
            await #expect(throws: ChatError(.notFound, "mine")) {
                try await pool.withConnection { _ -> Int in throw ChatError(.notFound, "mine") }
            }
            // The only connection held for a second: a second operation gives up after 300 ms,
            // and the first ends as it would have.
            async let holder = pool.withConnection { connection in
                try await Task.sleep(for: .seconds(1))
                return try await connection.query("SELECT 2", logger: TestPostgres.quiet).collect().map { try $0.decode(Int.self) }
            }
            try await Task.sleep(for: .milliseconds(100))
            await #expect(throws: ChatError.storeUnavailable) { try await pool.query("SELECT 3") }
            #expect(try await holder == [2])
            #expect(try await pool.query("SELECT 4").map { try $0.decode(Int.self) } == [4])
        }
    }
}
