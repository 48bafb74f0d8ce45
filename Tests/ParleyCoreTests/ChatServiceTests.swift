import ParleyCore
import Synchronization
import Testing

@Suite("Identities")
struct IdentityTests {
    @Test func registerLoginLogout() async throws {
        let (service, _, _) = try await makeService()
        let (identity, token) = try await service.register(handle: "Ada_Lovelace", password: "correct horse")
        #expect(identity.name == "Ada_Lovelace")
        #expect(identity.kind == .account)
        #expect(try await service.authenticate(token: token) == identity)
        let (again, second) = try await service.login(handle: "ada_lovelace", password: "correct horse")
        #expect(again == identity)
        #expect(second != token)
        try await service.logout(token: token)
        await #expect(throws: ChatError(.unauthorized, "The token is not valid.")) { try await service.authenticate(token: token) }
        // The other session is still valid.
        #expect(try await service.authenticate(token: second) == identity)
    }

    @Test func handlesAreValidatedAndUniqueIgnoringCase() async throws {
        let (service, _, _) = try await makeService()
        for bad in ["ab", String(repeating: "a", count: 33), "has space", "émile", "semi;colon", ""] {
            await #expect(throws: ChatError.self) { try await service.register(handle: bad, password: "long enough") }
        }
        _ = try await service.register(handle: "Grace", password: "long enough")
        let error = await #expect(throws: ChatError.self) { try await service.register(handle: "GRACE", password: "long enough") }
        #expect(error?.code == .handleTaken)
        let short = await #expect(throws: ChatError.self) { try await service.register(handle: "other", password: "short") }
        #expect(short?.code == .invalidPassword)
    }

    @Test func wrongPasswordAndUnknownHandleAreTheSameRefusal() async throws {
        let (service, _, _) = try await makeService()
        _ = try await service.register(handle: "ada", password: "right password")
        let wrong = await #expect(throws: ChatError.self) { try await service.login(handle: "ada", password: "wrong password") }
        let unknown = await #expect(throws: ChatError.self) { try await service.login(handle: "nobody", password: "right password") }
        #expect(wrong == unknown)
        #expect(wrong?.code == .badCredentials)
    }

    @Test func forgedTokensAreRefused() async throws {
        let (service, _, _) = try await makeService()
        _ = try await service.register(handle: "ada", password: "right password")
        for forged in ["", "x", Token.random(), String(repeating: "a", count: 10_000)] {
            let error = await #expect(throws: ChatError.self) { try await service.authenticate(token: forged) }
            #expect(error?.code == .unauthorized)
        }
    }

    @Test func tokensAreURLSafeBase64OfFreshRandomBytes() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        // 4 characters per 3 bytes, without padding: 9 → 12, 12 → 16, 32 → 43, 1 → 2.
        for (bytes, characters) in [(9, 12), (12, 16), (32, 43), (1, 2)] {
            let token = Token.random(bytes: bytes)
            #expect(token.count == characters)
            #expect(token.allSatisfy(alphabet.contains))
        }
        // A thousand tokens of 9 bytes (72 bits): no two alike, and every character of the
        // alphabet turns up, `-` and `_` included, where plain base64 would have `+` and `/`.
        let tokens = (0..<1000).map { _ in Token.random(bytes: 9) }
        #expect(Set(tokens).count == 1000)
        #expect(Set(tokens.joined()) == alphabet)
    }

    @Test func passwordsAreStoredOnlyAsSaltedHashes() async throws {
        let (service, _, store) = try await makeService()
        _ = try await service.register(handle: "ada", password: "same password")
        _ = try await service.register(handle: "bob", password: "same password")
        let ada = try #require(try await store.account(handleKey: "ada"))
        let bob = try #require(try await store.account(handleKey: "bob"))
        #expect(!ada.passwordHash.contains("same password"))
        #expect(ada.passwordHash.hasPrefix("scrypt$"))
        #expect(ada.passwordHash != bob.passwordHash)
        #expect(PasswordHasher.forTesting.verify("same password", against: ada.passwordHash))
        #expect(!PasswordHasher.forTesting.verify("other password", against: ada.passwordHash))
    }

    @Test func guests() async throws {
        let (service, _, _) = try await makeService()
        let named = try service.guest(name: "  Zoë  ")
        #expect(named.name == "Zoë" && named.kind == .guest)
        let generated = try service.guest(name: nil)
        #expect(generated.name.wholeMatch(of: /[a-z]+-[a-z]+/) != nil)
        #expect(generated.id != named.id)
        for bad in ["", "   ", String(repeating: "x", count: 33), "bell\u{7}"] {
            #expect(throws: ChatError.self) { try service.guest(name: bad) }
        }
    }

    /// A tutorial client's name is mended, not refused: no control or invisible formatting
    /// characters, trimmed, at most 32 characters.
    @Test func tutorialNamesAreMended() {
        #expect(Names.tutorialName("  Zoë  ") == "Zoë")
        #expect(Names.tutorialName("\u{0}Ze\u{200B}d\tthe\u{7} dev\n") == "Zedthe dev")
        #expect(Names.tutorialName(" \u{0}\u{1} ") == "")
        #expect(Names.tutorialName(String(repeating: "é", count: 40)) == String(repeating: "é", count: 32))
        #expect(Names.tutorialName("e\u{301}" + String(repeating: "x", count: 40)).count == 32)
    }
}

@Suite("Rooms, messages and history")
struct RoomTests {
    @Test func joiningPublishesMembersAndANoticeOncePerUser() async throws {
        let (service, sink, store) = try await makeService()
        let (ada, _) = try await service.register(handle: "ada", password: "long enough")
        let bob = try service.guest(name: "bob")
        let (room, members) = try await service.join("lobby", as: ada, on: .c("ada-1"))
        #expect(room.owner == ada.id)
        #expect(members == [ada])
        _ = try await service.join("lobby", as: bob, on: .c("bob-1"))
        _ = try await service.join("lobby", as: ada, on: .c("ada-2"))
        let notices = sink.published.compactMap { event -> String? in
            if case .notice(_, let kind, let who) = event { return "\(who.name) \(kind.rawValue)" }
            return nil
        }
        #expect(notices == ["ada joined", "bob joined"])
        guard case .members(_, let last)? = sink.published.last(where: { if case .members = $0 { true } else { false } }) else {
            Issue.record("no member list")
            return
        }
        #expect(last == [ada, bob])
        #expect(sink.subscriptions.withLock { $0[.c("ada-2")] } == [.room("lobby")])
        #expect(try await store.isMember(room: "lobby", user: ada.id))
        #expect(try await !store.isMember(room: "lobby", user: bob.id))
    }

    @Test func aNameAlreadyPresentIsRefused() async throws {
        let (service, _, _) = try await makeService()
        _ = try await service.join("lobby", as: try service.guest(name: "Sam"), on: .c("1"))
        let error = await #expect(throws: ChatError.self) {
            try await service.join("lobby", as: try service.guest(name: "sam"), on: .c("2"))
        }
        #expect(error?.code == .nameTaken)
        // Elsewhere the name is free.
        _ = try await service.join("other", as: try service.guest(name: "sam"), on: .c("2"))
    }

    @Test func roomNamesAreValidated() async throws {
        let (service, _, _) = try await makeService()
        let guest = try service.guest(name: nil)
        for bad in ["", String(repeating: "r", count: 101), String(repeating: "é", count: 101), "new\nline", "tab\there",
                    "bell\u{7}", "del\u{7F}", "next\u{85}line", "zero\u{200B}width", "line\u{2028}sep", "para\u{2029}sep"] {
            let error = await #expect(throws: ChatError.self) { try await service.join(bad, as: guest, on: .c("1")) }
            #expect(error?.code == .invalidRoomName)
        }
        // Anything else is taken verbatim, as tutorial clients send it.
        for good in ["Café #1", " padded ", "a/b", "😀 room", String(repeating: "r", count: 100), String(repeating: "é", count: 100),
                     String(repeating: "e\u{301}", count: 100)] {
            #expect(try await service.join(good, as: guest, on: .c("1")).room.name == good)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func whatFollowsACommitRunsWhereTheSinkSays(_ kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind, defersCommits: true)
        let ada = try service.guest(name: "ada")
        _ = try await service.join("lobby", as: ada, on: .c("ada-1"))
        sink.clear()
        let answered = Mutex<StoredMessage?>(nil)
        try await service.submit("hello", to: "lobby", clientID: nil, from: ada, on: .c("ada-1")) { result in
            answered.withLock { $0 = try? result.get() }
        }
        // The store commits (on its own thread for SQLite and PostgreSQL); the publication and
        // the answer wait for the sink to run them.
        for _ in 0..<500 where sink.committed.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(sink.published.isEmpty)
        #expect(answered.withLock { $0 } == nil)
        #expect(sink.runCommitted() == 1)
        guard case .message(let published)? = sink.published.first else {
            Issue.record("no message published: \(sink.published)")
            return
        }
        #expect(published.text == "hello")
        #expect(answered.withLock { $0 } == published)
    }

    @Test func leavingAndDisconnectingAnnounceDepartureWhenTheLastConnectionGoes() async throws {
        let (service, sink, store) = try await makeService()
        let (ada, _) = try await service.register(handle: "ada", password: "long enough")
        let bob = try service.guest(name: "bob")
        _ = try await service.join("lobby", as: ada, on: .c("ada-1"))
        _ = try await service.join("lobby", as: ada, on: .c("ada-2"))
        _ = try await service.join("lobby", as: bob, on: .c("bob"))
        sink.clear()
        service.disconnected(.c("ada-1"))
        #expect(sink.published.isEmpty)
        service.disconnected(.c("ada-2"))
        #expect(sink.published == [.notice(room: "lobby", kind: .left, who: ada), .members(room: "lobby", members: [bob])])
        // A disconnected account stays a member; one that leaves does not.
        #expect(try await store.isMember(room: "lobby", user: ada.id))
        _ = try await service.join("lobby", as: ada, on: .c("ada-3"))
        try await service.leave("lobby", as: ada, on: .c("ada-3"))
        #expect(try await !store.isMember(room: "lobby", user: ada.id))
        let error = await #expect(throws: ChatError.self) { try await service.leave("lobby", as: ada, on: .c("ada-3")) }
        #expect(error?.code == .notMember)
    }

    @Test(arguments: StoreKind.allCases)
    func sendingValidatesDeduplicatesAndPublishes(kind: StoreKind) async throws {
        let (service, sink, _) = try await makeService(kind)
        let ana = try service.guest(name: "ana")
        let outsider = try service.guest(name: "out")
        _ = try await service.join("lobby", as: ana, on: .c("ana"))
        sink.clear()
        let first = try await service.send("hello", to: "lobby", clientID: "k1", from: ana, on: .c("ana"))
        #expect(first.text == "hello" && first.sender == ana && first.conversation == .room("lobby"))
        let retry = try await service.send("hello", to: "lobby", clientID: "k1", from: ana, on: .c("ana"))
        #expect(retry == first)
        #expect(sink.published == [.message(first)])
        let cases: [(String, String?, ChatError.Code)] = [
            ("", nil, .emptyMessage), ("  \n ", nil, .emptyMessage), ("\u{3000}\t", nil, .emptyMessage),
            ("\u{0B}\u{0C}\r\n \u{85}\u{A0}", nil, .emptyMessage),
            (String(repeating: "x", count: 4001), nil, .messageTooLong), (String(repeating: "é", count: 4001), nil, .messageTooLong),
            ("ok", "", .invalidArgument), ("ok", String(repeating: "k", count: 65), .invalidArgument),
            ("before\u{0}after", nil, .invalidArgument), ("ok", "k\u{0}", .invalidArgument), ("ok", "line\nbreak", .invalidArgument),
        ]
        for (text, clientID, code) in cases {
            let error = await #expect(throws: ChatError.self) { try await service.send(text, to: "lobby", clientID: clientID, from: ana, on: .c("ana")) }
            #expect(error?.code == code)
        }
        // Lengths are characters, not bytes: 4,000 two-byte characters, or 4,000 characters of
        // three scalars each, are within the limit.
        for (index, long) in [String(repeating: "é", count: 4000), String(repeating: "e\u{301}\u{302}", count: 4000)].enumerated() {
            let clientID = String(repeating: "ü", count: 63) + "\(index)"
            #expect(try await service.send(long, to: "lobby", clientID: clientID, from: ana, on: .c("ana")).text == long)
        }
        let refused = await #expect(throws: ChatError.self) { try await service.send("hi", to: "lobby", clientID: nil, from: outsider, on: .c("out")) }
        #expect(refused?.code == .notMember)
        #expect(sink.published.count == 3)
    }

    @Test(arguments: StoreKind.allCases)
    func historyIsPagedAndOnlyForMembers(kind: StoreKind) async throws {
        let (service, _, _) = try await makeService(kind)
        let (ada, _) = try await service.register(handle: "ada", password: "long enough")
        let guest = try service.guest(name: "gus")
        _ = try await service.join("lobby", as: ada, on: .c("ada"))
        _ = try await service.join("lobby", as: guest, on: .c("gus"))
        for index in 0..<5 {
            _ = try await service.send("m\(index)", to: "lobby", clientID: nil, from: ada, on: .c("ada"))
        }
        let page = try await service.history(of: "lobby", before: nil, limit: 2, for: guest, on: .c("gus"))
        #expect(page.messages.map(\.text) == ["m3", "m4"] && page.more)
        let rest = try await service.history(of: "lobby", before: page.messages[0].id, limit: 10, for: guest, on: .c("gus"))
        #expect(rest.messages.map(\.text) == ["m0", "m1", "m2"] && !rest.more)
        // An account that is a member reads history while away; a guest that left cannot.
        service.disconnected(.c("ada"))
        #expect(try await service.history(of: "lobby", before: nil, limit: 1, for: ada, on: .c("ada-later")).messages.map(\.text) == ["m4"])
        try await service.leave("lobby", as: guest, on: .c("gus"))
        let refused = await #expect(throws: ChatError.self) { try await service.history(of: "lobby", before: nil, limit: 1, for: guest, on: .c("gus")) }
        #expect(refused?.code == .notMember)
        let stranger = try service.guest(name: nil)
        await #expect(throws: ChatError.self) { try await service.history(of: "lobby", before: nil, limit: 1, for: stranger, on: .c("x")) }
        for limit in [0, -1, 101] {
            let error = await #expect(throws: ChatError.self) { try await service.history(of: "lobby", before: nil, limit: limit, for: ada, on: .c("a")) }
            #expect(error?.code == .invalidArgument)
        }
    }
}
