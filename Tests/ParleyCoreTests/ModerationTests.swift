import ParleyCore
import Testing

@Suite("Moderation and rate limits")
struct ModerationTests {
    @Test func tokenBucketAllowsABurstThenTheSustainedRate() {
        var bucket = TokenBucket(RateLimit(perSecond: 2, burst: 3))
        let start: Timestamp = 10_000
        #expect(bucket.take(now: start) == nil)
        #expect(bucket.take(now: start) == nil)
        #expect(bucket.take(now: start) == nil)
        #expect(bucket.take(now: start) == 500)
        #expect(bucket.take(now: start + 499) == 2)
        #expect(bucket.take(now: start + 500) == nil)
        // A long pause refills only up to the burst.
        #expect(bucket.take(now: start + 60_000) == nil)
        #expect(bucket.take(now: start + 60_000) == nil)
        #expect(bucket.take(now: start + 60_000) == nil)
        #expect(bucket.take(now: start + 60_000) != nil)
        // A clock that goes back does not mint tokens.
        #expect(bucket.take(now: start) != nil)
    }

    @Test(arguments: StoreKind.allCases)
    func theOwnerClearsHistory(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let owner = try await service.register(handle: "owner", password: "long enough").identity
        let guest = try service.guest(name: "gus")
        _ = try await service.join("mod", as: owner, on: .c("owner"))
        _ = try await service.join("mod", as: guest, on: .c("gus"))
        for index in 0..<3 { _ = try await service.send("m\(index)", to: "mod", clientID: nil, from: guest, on: .c("gus")) }
        let refused = await #expect(throws: ChatError.self) { try await service.clearHistory(of: "mod", by: guest) }
        #expect(refused?.code == .notOwner)
        sink.clear()
        #expect(try await service.clearHistory(of: "mod", by: owner) == 3)
        #expect(sink.published == [.cleared(room: "mod", by: owner)])
        #expect(try await service.history(of: "mod", before: nil, limit: 10, for: owner, on: .c("owner")).messages.isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func theOwnerRemovesAMember(kind: StoreKind) async throws {
        let (service, sink, store) = try await makeService(kind)
        let owner = try await service.register(handle: "owner", password: "long enough").identity
        let member = try await service.register(handle: "member", password: "long enough").identity
        _ = try await service.join("mod", as: owner, on: .c("owner"))
        _ = try await service.join("mod", as: member, on: .c("m1"))
        _ = try await service.join("mod", as: member, on: .c("m2"))
        let refused = await #expect(throws: ChatError.self) { try await service.remove(owner.id, from: "mod", by: member) }
        #expect(refused?.code == .notOwner)
        sink.clear()
        try await service.remove(member.id, from: "mod", by: owner)
        #expect(sink.published == [
            .removed(room: "mod", user: member, by: owner), .removed(room: "mod", user: member, by: owner),
            .members(room: "mod", members: [owner]),
        ])
        #expect(sink.events.withLock { $0.map(\.1) } == [.room("mod"), .user(member.id), .room("mod")])
        #expect(try await !store.isMember(room: "mod", user: member.id))
        let gone = await #expect(throws: ChatError.self) { try await service.send("still here?", to: "mod", clientID: nil, from: member, on: .c("m1")) }
        #expect(gone?.code == .notMember)
        #expect(sink.subscriptions.withLock { $0[.c("m2")] } == [])
        let twice = await #expect(throws: ChatError.self) { try await service.remove(member.id, from: "mod", by: owner) }
        #expect(twice?.code == .notMember)
        let itself = await #expect(throws: ChatError.self) { try await service.remove(owner.id, from: "mod", by: owner) }
        #expect(itself?.code == .invalidArgument)
    }
}
