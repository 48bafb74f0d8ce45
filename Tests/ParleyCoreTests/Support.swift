import Foundation
import Logging
import ParleyCore
import ParleyStorePostgres
import ParleyStoreSQLite
import PostgresNIO
import Synchronization

/// The stores every store test runs on: PostgreSQL too when `PARLEY_TEST_POSTGRES_URL` names a
/// server whose user may create databases (`scripts/test` starts one and sets it).
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case sqlite
    case postgres

    static var allCases: [StoreKind] { TestPostgres.url == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres] }

    func make() async throws -> any ChatStore {
        switch self {
        case .memory: InMemoryChatStore()
        case .sqlite: try SQLiteChatStore()
        case .postgres: try await TestPostgres.freshStore()
        }
    }

    var description: String { rawValue }
}

/// The test PostgreSQL server: each store gets a database of its own, made for it.
enum TestPostgres {
    static let url = ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// A new, empty, migrated database on the test server.
    static func freshStore() async throws -> PostgresChatStore {
        try await PostgresChatStore(url: try await freshDatabase(), maxConnections: 4, logger: quiet)
    }

    /// The URL of a new, empty database on the test server.
    static func freshDatabase() async throws -> String {
        guard let url else { throw ChatError(.internalError, "PARLEY_TEST_POSTGRES_URL is not set") }
        let name = "parley_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        let admin = PostgresClient(configuration: try PostgresChatStore.configuration(url: url, maxConnections: 1), backgroundLogger: quiet)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await admin.run() }
            // An identifier cannot be a parameter; `name` is made of hex digits only.
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            group.cancelAll()
        }
        var components = URLComponents(string: url)!
        components.path = "/\(name)"
        return components.string!
    }

    static let quiet: Logger = {
        var logger = Logger(label: "parley.test.postgres")
        logger.logLevel = .critical
        return logger
    }()
}

/// A sink that records what the service publishes and who is subscribed to what.
final class RecordingSink: ChatEventSink {
    let events = Mutex<[(ChatEvent, Audience)]>([])
    let subscriptions = Mutex<[ConnectionID: Set<Audience>]>([:])

    func subscribe(_ connection: ConnectionID, to audience: Audience) {
        subscriptions.withLock { _ = $0[connection, default: []].insert(audience) }
    }

    func unsubscribe(_ connection: ConnectionID, from audience: Audience) {
        subscriptions.withLock { _ = $0[connection]?.remove(audience) }
    }

    let options = Mutex<[PublishOptions]>([])

    func publish(_ event: ChatEvent, to audience: Audience, options: PublishOptions) {
        events.withLock { $0.append((event, audience)) }
        self.options.withLock { $0.append(options) }
    }

    var published: [ChatEvent] { events.withLock { $0.map(\.0) } }

    /// With `defersCommits`, what follows a commit waits in ``committed`` until
    /// ``runCommitted()``, as it would for a sink that moves it to another thread.
    let defersCommits: Bool
    let committed = Mutex<[@Sendable () -> Void]>([])

    init(defersCommits: Bool = false) { self.defersCommits = defersCommits }

    func afterCommit(_ work: @escaping @Sendable () -> Void) {
        guard defersCommits else { return work() }
        committed.withLock { $0.append(work) }
    }

    /// Runs the work deferred so far, in order; returns how many there were.
    @discardableResult
    func runCommitted() -> Int {
        let work = committed.withLock { work in defer { work.removeAll() }; return work }
        for item in work { item() }
        return work.count
    }

    func clear() {
        events.withLock { $0.removeAll() }
        options.withLock { $0.removeAll() }
    }
}

/// A service on a fresh store, with a cheap password hash and a fixed clock.
func makeService(_ kind: StoreKind = .memory, defersCommits: Bool = false) async throws -> (ChatService, RecordingSink, any ChatStore) {
    let store = try await kind.make()
    let sink = RecordingSink(defersCommits: defersCommits)
    var configuration = ChatConfiguration()
    configuration.passwordHasher = .forTesting
    let service = ChatService(store: store, sink: sink, configuration: configuration, clock: { 1_700_000_000_000 })
    return (service, sink, store)
}

extension ConnectionID {
    static func c(_ name: String) -> ConnectionID { ConnectionID(rawValue: name) }
}

/// A fresh temporary file path.
func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString)-\(name)").path
}

/// Submits one message per text, in order, from one sender to room "r" through `submit` (a write
/// queue's or a store's), and waits for every completion; returns each text with whether it was
/// stored, in the order the completions ran.
func submitAll(
    _ texts: [String], from sender: Identity,
    through submit: (NewMessage, @escaping MessageCompletion) async -> Void
) async -> [(text: String, stored: Bool)] {
    let outcomes = Mutex<[(text: String, stored: Bool)]>([])
    let done = AsyncStream<Void>.makeStream()
    for text in texts {
        await submit(NewMessage(conversation: .room("r"), sender: sender, text: text, clientID: nil, sentAt: 1)) { result in
            let count = outcomes.withLock { outcomes in
                outcomes.append((text, (try? result.get()) != nil))
                return outcomes.count
            }
            if count == texts.count { done.continuation.finish() }
        }
    }
    for await _ in done.stream {}
    return outcomes.withLock { $0 }
}
