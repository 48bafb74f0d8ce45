import ParleyCore
import Testing

@Suite("Store-and-forward, receipts and typing")
struct DeliveryTests {
    func replayed(_ sink: RecordingSink, to connection: ConnectionID) -> [String] {
        sink.events.withLock { events in
            events.compactMap { event, audience -> String? in
                guard audience == .connection(connection) else { return nil }
                switch event {
                case .message(let message): return "room \(message.text)"
                case .direct(let message, _): return "dm \(message.text)"
                default: return nil
                }
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anOfflineAccountGetsItsRoomsAndConversationsOnConnectingUntilItAcknowledges(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        _ = try await service.requestFriend("bob", from: ada)
        _ = try await service.acceptFriend("ada", by: bob)
        _ = try await service.join("lobby", as: ada, on: .c("ada"))
        _ = try await service.join("lobby", as: bob, on: .c("bob"))
        service.disconnected(.c("bob"))
        // Written while Bob is away: two in the room, one direct, in that order.
        let first = try await service.send("one", to: "lobby", clientID: nil, from: ada, on: .c("ada"))
        let second = try await service.sendDirect("two", to: "bob", clientID: nil, from: ada).message
        let third = try await service.send("three", to: "lobby", clientID: nil, from: ada, on: .c("ada"))
        sink.clear()
        await service.connected(bob, on: .c("bob-2"))
        #expect(replayed(sink, to: .c("bob-2")) == ["room one", "dm two", "room three"])
        // Bob is back in the room without joining again.
        #expect(try service.members(of: "lobby", on: .c("bob-2")) == [ada, bob])
        // The sender's own messages are not in her inbox.
        sink.clear()
        await service.connected(ada, on: .c("ada-2"))
        #expect(replayed(sink, to: .c("ada-2")).isEmpty)
        // Acknowledged: a delivery receipt for each reaches Ada, and nothing comes again.
        sink.clear()
        try await service.delivered([first.id, second.id, third.id, 999_999], by: bob)
        let receipts = sink.events.withLock { $0.filter { $0.1 == .user(ada.id) }.map(\.0) }
        #expect(receipts == [
            .receipt(messageID: first.id, conversation: .room("lobby"), by: bob, status: .delivered),
            .receipt(messageID: second.id, conversation: .direct(ada.id, bob.id), by: bob, status: .delivered),
            .receipt(messageID: third.id, conversation: .room("lobby"), by: bob, status: .delivered),
        ])
        sink.clear()
        try await service.delivered([first.id], by: bob)
        #expect(sink.published.isEmpty)
        await service.connected(bob, on: .c("bob-3"))
        #expect(replayed(sink, to: .c("bob-3")).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func aLongInboxIsReplayedPageByPageInOrder(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        _ = try await service.join("big", as: ada, on: .c("ada"))
        _ = try await service.join("big", as: bob, on: .c("bob"))
        service.disconnected(.c("bob"))
        for index in 0..<250 {
            _ = try await service.send("m\(index)", to: "big", clientID: nil, from: ada, on: .c("ada"))
        }
        sink.clear()
        await service.connected(bob, on: .c("bob-2"))
        #expect(replayed(sink, to: .c("bob-2")) == (0..<250).map { "room m\($0)" })
    }

    @Test func readReceiptsOnlyFromThoseWhoBelong() async throws {
        let (service, sink, _) = try await makeService()
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let guest = try service.guest(name: "gus")
        let stranger = try service.guest(name: "stranger")
        _ = try await service.join("lobby", as: ada, on: .c("ada"))
        _ = try await service.join("lobby", as: guest, on: .c("gus"))
        let message = try await service.send("read me", to: "lobby", clientID: nil, from: ada, on: .c("ada"))
        sink.clear()
        try await service.read([message.id], by: stranger, on: .c("stranger"))
        #expect(sink.published.isEmpty)
        try await service.read([message.id], by: guest, on: .c("gus"))
        #expect(sink.events.withLock { $0.map(\.1) } == [.user(ada.id)])
        #expect(sink.published == [.receipt(messageID: message.id, conversation: .room("lobby"), by: guest, status: .read)])
        // The author's own reading says nothing.
        sink.clear()
        try await service.read([message.id], by: ada, on: .c("ada"))
        #expect(sink.published.isEmpty)
        for bad in [[Int64](), Array(repeating: 1, count: 101)] {
            await #expect(throws: ChatError.self) { try await service.read(bad, by: guest, on: .c("gus")) }
        }
    }

    @Test func typingIsVolatileAndReachesOthersOnly() async throws {
        let (service, sink, _) = try await makeService()
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        _ = try await service.join("lobby", as: ada, on: .c("ada"))
        sink.clear()
        try await service.typing(in: "lobby", to: nil, isTyping: true, from: ada, on: .c("ada"))
        #expect(sink.published == [.typing(conversation: .room("lobby"), from: ada, isTyping: true)])
        #expect(sink.options.withLock { $0 } == [PublishOptions(except: .c("ada"), volatile: true)])
        let outside = await #expect(throws: ChatError.self) { try await service.typing(in: "lobby", to: nil, isTyping: true, from: bob, on: .c("bob")) }
        #expect(outside?.code == .notMember)
        let notFriend = await #expect(throws: ChatError.self) { try await service.typing(in: nil, to: "ada", isTyping: true, from: bob, on: .c("bob")) }
        #expect(notFriend?.code == .notFriends)
        _ = try await service.requestFriend("bob", from: ada)
        _ = try await service.acceptFriend("ada", by: bob)
        sink.clear()
        try await service.typing(in: nil, to: "ada", isTyping: false, from: bob, on: .c("bob"))
        #expect(sink.events.withLock { $0.map(\.1) } == [.user(ada.id)])
        await #expect(throws: ChatError.self) { try await service.typing(in: "lobby", to: "ada", isTyping: true, from: ada, on: .c("ada")) }
    }
}
