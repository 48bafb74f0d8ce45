import ParleyCore
import Synchronization
import Testing

/// A clock the test moves.
final class TestClock: Sendable {
    private let now = Mutex<Timestamp>(1_700_000_000_000)
    var time: Timestamp { now.withLock { $0 } }
    func advance(by milliseconds: Timestamp) { now.withLock { $0 += milliseconds } }
}

@Suite("Retention policies")
struct RetentionTests {
    /// A service whose clock the test moves.
    func makeService(_ kind: StoreKind, defaultRetention: RetentionPolicy = .keep) async throws -> (ChatService, RecordingSink, any ChatStore, TestClock) {
        let store = try await kind.make()
        let sink = RecordingSink()
        var configuration = ChatConfiguration()
        configuration.passwordHasher = .forTesting
        configuration.defaultRetention = defaultRetention
        configuration.undeliveredMaxAge = 60_000
        let clock = TestClock()
        return (ChatService(store: store, sink: sink, configuration: configuration, clock: { clock.time }), sink, store, clock)
    }

    func pair(_ service: ChatService, room: String) async throws -> (Identity, Identity) {
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        _ = try await service.join(room, as: ada, on: .c("ada"))
        _ = try await service.join(room, as: bob, on: .c("bob"))
        return (ada, bob)
    }

    @Test(arguments: StoreKind.allCases)
    func untilDeliveredDeletesAfterTheLastRecipientsAcknowledgement(kind: StoreKind) async throws {
        let (service, _, store, _) = try await makeService(kind)
        let (ada, bob) = try await pair(service, room: "viber")
        let cyd = try await service.register(handle: "cyd", password: "long enough").identity
        _ = try await service.join("viber", as: cyd, on: .c("cyd"))
        try await service.setRetention(.untilDelivered, ofRoom: "viber", by: ada)
        #expect(try await service.retention(of: .room("viber")) == .untilDelivered)
        let message = try await service.send("self-destructing", to: "viber", clientID: nil, from: ada, on: .c("ada"))
        #expect(!message.isEphemeral)
        #expect(try await store.message(id: message.id)?.text == "self-destructing")
        try await service.delivered([message.id], by: bob)
        #expect(try await store.message(id: message.id) != nil, "Cyd has not acknowledged yet")
        try await service.delivered([message.id], by: cyd)
        #expect(try await store.message(id: message.id) == nil)
        #expect(try await service.history(of: "viber", before: nil, limit: 10, for: ada, on: .c("ada")).messages.isEmpty)
        // Messages in kept rooms are untouched by acknowledgements.
        _ = try await service.join("archive", as: ada, on: .c("ada"))
        _ = try await service.join("archive", as: bob, on: .c("bob"))
        let kept = try await service.send("forever", to: "archive", clientID: nil, from: ada, on: .c("ada"))
        try await service.delivered([kept.id], by: bob)
        #expect(try await store.message(id: kept.id) != nil)
    }

    @Test(arguments: StoreKind.allCases)
    func undeliveredMessagesExpireAfterTheMaximumAge(kind: StoreKind) async throws {
        let (service, _, store, now) = try await makeService(kind, defaultRetention: .untilDelivered)
        let (ada, _) = try await pair(service, room: "slow")
        let old = try await service.send("old", to: "slow", clientID: nil, from: ada, on: .c("ada"))
        now.advance(by: 30_000)
        let young = try await service.send("young", to: "slow", clientID: nil, from: ada, on: .c("ada"))
        now.advance(by: 40_000)
        #expect(try await service.sweepUndelivered() == 1)
        #expect(try await store.message(id: old.id) == nil)
        #expect(try await store.message(id: young.id) != nil)
        now.advance(by: 60_000)
        #expect(try await service.sweepUndelivered() == 1)
        #expect(try await store.message(id: young.id) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func noneRelaysWithoutStoring(kind: StoreKind) async throws {
        let (service, sink, store, _) = try await makeService(kind, defaultRetention: .none)
        let (ada, bob) = try await pair(service, room: "relay")
        sink.clear()
        let message = try await service.send("gone with the wind", to: "relay", clientID: "r1", from: ada, on: .c("ada"))
        #expect(message.isEphemeral && message.id >= 1 << 52 && message.id < 1 << 53)
        #expect(sink.published == [.message(message)])
        #expect(try await service.send("gone with the wind", to: "relay", clientID: "r1", from: ada, on: .c("ada")) == message)
        #expect(sink.published.count == 1)
        let next = try await service.send("another", to: "relay", clientID: nil, from: ada, on: .c("ada"))
        #expect(next.id > message.id)
        #expect(try await store.message(id: message.id) == nil)
        #expect(try await service.history(of: "relay", before: nil, limit: 10, for: ada, on: .c("ada")).messages.isEmpty)
        // Nothing waits for an offline member either.
        service.disconnected(.c("bob"))
        _ = try await service.send("while away", to: "relay", clientID: nil, from: ada, on: .c("ada"))
        #expect(try await store.pendingMessages(for: bob.id, after: nil, limit: 10).isEmpty)
    }

    @Test func untilDeliveredWithNoRecipientAccountIsNotStored() async throws {
        let (service, _, store, _) = try await makeService(.memory, defaultRetention: .untilDelivered)
        let guest = try service.guest(name: "solo")
        _ = try await service.join("alone", as: guest, on: .c("solo"))
        let message = try await service.send("nobody to deliver to", to: "alone", clientID: nil, from: guest, on: .c("solo"))
        #expect(message.isEphemeral)
        #expect(try await store.message(id: message.id) == nil)
    }

    @Test func onlyTheOwnerOrAFriendSetsRetention() async throws {
        let (service, _, _, _) = try await makeService(.memory)
        let (ada, bob) = try await pair(service, room: "owned")
        let notOwner = await #expect(throws: ChatError.self) { try await service.setRetention(.none, ofRoom: "owned", by: bob) }
        #expect(notOwner?.code == .notOwner)
        let noRoom = await #expect(throws: ChatError.self) { try await service.setRetention(.none, ofRoom: "missing", by: ada) }
        #expect(noRoom?.code == .notOwner)
        let notFriends = await #expect(throws: ChatError.self) { try await service.setRetention(.none, withFriend: "bob", by: ada) }
        #expect(notFriends?.code == .notFriends)
        _ = try await service.requestFriend("bob", from: ada)
        _ = try await service.acceptFriend("ada", by: bob)
        try await service.setRetention(.untilDelivered, withFriend: "ada", by: bob)
        #expect(try await service.retention(of: .direct(ada.id, bob.id)) == .untilDelivered)
    }
}
