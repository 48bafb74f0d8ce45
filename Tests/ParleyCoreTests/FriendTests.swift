import ParleyCore
import Testing

@Suite("Friends, blocks and direct messages")
struct FriendTests {
    func accounts(_ service: ChatService, _ handles: String...) async throws -> [Identity] {
        var identities: [Identity] = []
        for handle in handles { identities.append(try await service.register(handle: handle, password: "long enough").identity) }
        return identities
    }

    @Test(arguments: StoreKind.allCases)
    func requestAcceptAndWrite(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let people = try await accounts(service, "ada", "bob", "eve")
        let (ada, bob, eve) = (people[0], people[1], people[2])
        #expect(try await service.requestFriend("BOB", from: ada) == .pending)
        #expect(try await service.requestFriend("bob", from: ada) == .pending)
        #expect(sink.events.withLock { $0.filter { $0.1 == .user(bob.id) }.map(\.0) } == [.friendRequest(from: ada)])
        #expect(try await service.friends(of: bob).incoming == [ada])
        #expect(try await service.friends(of: ada).outgoing == [bob])
        // No messages before acceptance.
        let early = await #expect(throws: ChatError.self) { try await service.sendDirect("hi", to: "bob", clientID: nil, from: ada) }
        #expect(early?.code == .notFriends)
        #expect(try await service.acceptFriend("ada", by: bob) == ada)
        #expect(try await service.friends(of: ada).friends == [bob])
        #expect(try await service.friends(of: bob).friends == [ada])
        let again = await #expect(throws: ChatError.self) { try await service.requestFriend("ada", from: bob) }
        #expect(again?.code == .alreadyFriends)
        sink.clear()
        let (message, to) = try await service.sendDirect("hello bob", to: "bob", clientID: "d1", from: ada)
        #expect(to == bob && message.conversation == .direct(bob.id, ada.id))
        #expect(Set(sink.events.withLock { $0.map(\.1) }) == [.user(ada.id), .user(bob.id)])
        let retry = try await service.sendDirect("hello bob", to: "bob", clientID: "d1", from: ada)
        #expect(retry.message == message && sink.published.count == 2)
        _ = try await service.sendDirect("hi ada", to: "ada", clientID: nil, from: bob)
        #expect(try await service.directHistory(with: "bob", before: nil, limit: 10, for: ada).messages.map(\.text) == ["hello bob", "hi ada"])
        // Eve is nobody's friend: she can neither write nor read.
        for handle in ["ada", "bob", "nobody-at-all"] {
            let refused = await #expect(throws: ChatError.self) { try await service.sendDirect("psst", to: handle, clientID: nil, from: eve) }
            #expect(refused?.code == .notFriends)
            await #expect(throws: ChatError.self) { try await service.directHistory(with: handle, before: nil, limit: 5, for: eve) }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func crossingRequestsAcceptAndRejectionAllowsANewRequest(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let people = try await accounts(service, "ada", "bob", "cyd")
        let (ada, bob, cy) = (people[0], people[1], people[2])
        _ = try await service.requestFriend("bob", from: ada)
        #expect(try await service.requestFriend("ada", from: bob) == .accepted)
        #expect(try await service.friends(of: ada).friends == [bob])
        _ = try await service.requestFriend("cyd", from: ada)
        sink.clear()
        try await service.rejectFriend("ada", by: cy)
        #expect(sink.events.withLock { $0.map { "\($0.1)" } } == ["user(\(ada.id.rawValue))"])
        #expect(try await service.friends(of: ada).outgoing.isEmpty)
        let noRequest = await #expect(throws: ChatError.self) { try await service.acceptFriend("ada", by: cy) }
        #expect(noRequest?.code == .noRequest)
        #expect(try await service.requestFriend("cyd", from: ada) == .pending)
        _ = try await service.acceptFriend("ada", by: cy)
        #expect(try await service.friends(of: cy).friends == [ada])
    }

    @Test(arguments: StoreKind.allCases)
    func blocksEndFriendshipsAndRefuseGenerically(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let people = try await accounts(service, "ada", "troll")
        let (ada, troll) = (people[0], people[1])
        _ = try await service.requestFriend("ada", from: troll)
        _ = try await service.acceptFriend("troll", by: ada)
        sink.clear()
        try await service.block("troll", by: ada)
        #expect(sink.published.isEmpty, "the blocked account is not told")
        #expect(try await service.friends(of: ada).blocked == [troll])
        #expect(try await service.friends(of: ada).friends.isEmpty)
        let request = await #expect(throws: ChatError.self) { try await service.requestFriend("ada", from: troll) }
        #expect(request?.code == .refused)
        let message = await #expect(throws: ChatError.self) { try await service.sendDirect("hey", to: "ada", clientID: nil, from: troll) }
        #expect(message?.code == .notFriends)
        // The blocker cannot request either while the block stands.
        await #expect(throws: ChatError.self) { try await service.requestFriend("troll", from: ada) }
        try await service.unblock("troll", by: ada)
        #expect(try await service.requestFriend("ada", from: troll) == .pending)
    }

    @Test func guestsAndBadHandles() async throws {
        let (service, _, _) = try await makeService()
        let ada = try await accounts(service, "ada")[0]
        let guest = try service.guest(name: "visitor")
        let request = await #expect(throws: ChatError.self) { try await service.requestFriend("ada", from: guest) }
        #expect(request?.code == .accountRequired)
        let list = await #expect(throws: ChatError.self) { try await service.friends(of: guest) }
        #expect(list?.code == .accountRequired)
        let message = await #expect(throws: ChatError.self) { try await service.sendDirect("hi", to: "ada", clientID: nil, from: guest) }
        #expect(message?.code == .accountRequired)
        let unknown = await #expect(throws: ChatError.self) { try await service.requestFriend("ghost", from: ada) }
        #expect(unknown?.code == .unknownUser)
        let invalid = await #expect(throws: ChatError.self) { try await service.requestFriend("no way!", from: ada) }
        #expect(invalid?.code == .unknownUser)
        let selfRequest = await #expect(throws: ChatError.self) { try await service.requestFriend("ADA", from: ada) }
        #expect(selfRequest?.code == .invalidArgument)
    }
}
