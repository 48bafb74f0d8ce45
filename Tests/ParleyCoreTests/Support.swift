import Foundation
import ParleyCore
import ParleyStoreSQLite
import Synchronization

/// The stores every store test runs on.
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case sqlite

    func make() throws -> any ChatStore {
        switch self {
        case .memory: InMemoryChatStore()
        case .sqlite: try SQLiteChatStore()
        }
    }

    var description: String { rawValue }
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

    func clear() {
        events.withLock { $0.removeAll() }
        options.withLock { $0.removeAll() }
    }
}

/// A service on a fresh store, with a cheap password hash and a fixed clock.
func makeService(_ kind: StoreKind = .memory) throws -> (ChatService, RecordingSink, any ChatStore) {
    let store = try kind.make()
    let sink = RecordingSink()
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
