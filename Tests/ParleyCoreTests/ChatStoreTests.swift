import Foundation
import GRDB
import ParleyCore
import ParleyStorePostgres
import ParleyStoreSQLite
import Synchronization
import Testing

@Suite("ChatStore contract, on every store")
struct ChatStoreTests {
    func account(_ handle: String) -> Account {
        Account(id: .newAccount(), handle: handle, handleKey: handle.lowercased(), passwordHash: "h", createdAt: 1)
    }

    @Test(arguments: StoreKind.allCases)
    func accountsAreUniqueByHandleKey(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = account("Ada")
        try await store.createAccount(ada)
        #expect(try await store.account(handleKey: "ada") == ada)
        #expect(try await store.account(id: ada.id) == ada)
        #expect(try await store.account(handleKey: "nobody") == nil)
        await #expect(throws: ChatError.self) { try await store.createAccount(account("ADA")) }
    }

    @Test(arguments: StoreKind.allCases)
    func sessionsAreFoundByHashAndRevoked(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = account("ada")
        try await store.createAccount(ada)
        try await store.createSession(tokenHash: "hash-1", user: ada.id, createdAt: 2)
        #expect(try await store.sessionUser(tokenHash: "hash-1") == ada.id)
        #expect(try await store.sessionUser(tokenHash: "hash-2") == nil)
        try await store.deleteSession(tokenHash: "hash-1")
        #expect(try await store.sessionUser(tokenHash: "hash-1") == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func roomsKeepTheirFirstOwnerAndMembers(kind: StoreKind) async throws {
        let store = try await kind.make()
        let first = UserID(rawValue: "a_first")
        let second = UserID(rawValue: "a_second")
        #expect(try await store.createRoom(Room(name: "lobby", owner: first, createdAt: 1)).owner == first)
        #expect(try await store.createRoom(Room(name: "lobby", owner: second, createdAt: 2)).owner == first)
        #expect(try await store.room(named: "lobby")?.owner == first)
        #expect(try await store.room(named: "Lobby") == nil)
        try await store.addMember(room: "lobby", user: second)
        try await store.addMember(room: "lobby", user: second)
        #expect(try await store.isMember(room: "lobby", user: second))
        #expect(try await !store.isMember(room: "lobby", user: first))
        try await store.removeMember(room: "lobby", user: second)
        #expect(try await !store.isMember(room: "lobby", user: second))
    }

    @Test(arguments: StoreKind.allCases)
    func messagesAreDeduplicatedByClientIDAndPagedByID(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = Identity(id: UserID(rawValue: "g_bob"), name: "bob", kind: .guest)
        var ids: [Int64] = []
        for index in 0..<7 {
            let sender = index.isMultiple(of: 2) ? ada : bob
            let (stored, inserted) = try await store.insertMessage(
                NewMessage(conversation: .room("r"), sender: sender, text: "m\(index)", clientID: "c\(index)", sentAt: Int64(index))
            )
            #expect(inserted)
            #expect(stored.sender == sender)
            ids.append(stored.id)
        }
        _ = try await store.insertMessage(NewMessage(conversation: .room("other"), sender: ada, text: "elsewhere", clientID: nil, sentAt: 9))
        #expect(ids == ids.sorted() && Set(ids).count == 7)
        // A retry with the same client id returns the first message.
        let retry = try await store.insertMessage(NewMessage(conversation: .room("r"), sender: ada, text: "again", clientID: "c0", sentAt: 99))
        #expect(!retry.inserted)
        #expect(retry.message.id == ids[0] && retry.message.text == "m0")
        // The same client id from another sender is another message.
        #expect(try await store.insertMessage(NewMessage(conversation: .room("r"), sender: bob, text: "bob c0", clientID: "c0", sentAt: 8)).inserted)
        let newest = try await store.messages(in: .room("r"), before: nil, limit: 3)
        #expect(newest.map(\.text) == ["m5", "m6", "bob c0"])
        let older = try await store.messages(in: .room("r"), before: newest[0].id, limit: 3)
        #expect(older.map(\.text) == ["m2", "m3", "m4"])
        let oldest = try await store.messages(in: .room("r"), before: older[0].id, limit: 3)
        #expect(oldest.map(\.text) == ["m0", "m1"])
        #expect(try await store.messages(in: .room("none"), before: nil, limit: 5).isEmpty)
    }

    /// Messages queued while a commit runs are written together: room messages, direct messages,
    /// an image, and retries of client ids (of earlier batches and of this one) in one batch.
    @Test(arguments: StoreKind.allCases)
    func aBatchOfManyKindsIsWrittenWhole(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = UserID(rawValue: "a_bob"), cyd = UserID(rawValue: "a_cyd")
        _ = try await store.createRoom(Room(name: "r", owner: ada.id, createdAt: 1))
        for member in [ada.id, bob] { try await store.addMember(room: "r", user: member) }
        let image = MessageImage(type: "image/png", size: 3, data: Data([1, 2, 3]))
        var messages: [(NewMessage, [UserID])] = []
        for index in 0..<30 {
            messages.append((NewMessage(conversation: .room("r"), sender: ada, text: "r\(index)", clientID: "c\(index)", sentAt: 1,
                                        image: index == 7 ? image : nil), [bob]))
        }
        for index in 0..<5 { messages.append((NewMessage(conversation: .direct(ada.id, cyd), sender: ada, text: "d\(index)", clientID: nil, sentAt: 1), [cyd])) }
        for index in 0..<5 { messages.append((NewMessage(conversation: .room("r"), sender: ada, text: "again", clientID: "c\(index * 6)", sentAt: 2), [bob])) }
        let total = messages.count
        let results = Mutex<[Int: (message: StoredMessage, inserted: Bool)]>([:])
        let done = AsyncStream<Void>.makeStream()
        for (index, (message, recipients)) in messages.enumerated() {
            await store.submitMessage(message, recipients: recipients) { result in
                let count = results.withLock { results in
                    results[index] = try? result.get()
                    return results.count
                }
                if count == total { done.continuation.finish() }
            }
        }
        for await _ in done.stream {}
        let all = results.withLock { $0 }
        #expect(all.count == messages.count)
        for retry in 0..<5 {
            let (original, again) = (try #require(all[retry * 6]), try #require(all[35 + retry]))
            #expect(!again.inserted && again.message.id == original.message.id && again.message.text == "r\(retry * 6)")
        }
        #expect(try await store.pendingMessages(for: bob, after: nil, limit: 100).map(\.text) == (0..<30).map { "r\($0)" })
        #expect(try await store.pendingMessages(for: cyd, after: nil, limit: 100).map(\.text) == (0..<5).map { "d\($0)" })
        let withImage = try #require(all[7]).message.id
        #expect(try await store.image(ofMessage: withImage)?.data == Data([1, 2, 3]))
    }

    /// Concurrent inserts (committed in groups by the SQLite store) each get their own id, their
    /// inbox rows, and a retry racing its first send still yields one message.
    /// A message with inbox devices leaves an account's inbox once each device acknowledged
    /// it; an `until-delivered` one is then deleted.
    @Test(arguments: StoreKind.allCases)
    func inboxDevicesEachAcknowledge(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = UserID(rawValue: "a_bob")
        let body = EncryptedBody(senderDevice: "ada-1", copies: [
            SealedCopy(device: "bob-1", ephemeralPublic: Data(count: 32), nonce: Data(count: 12), ciphertext: Data(count: 20)),
        ])
        // Two submitted without waiting (one batch when the writer is busy) and one waited for.
        let messages = (0..<3).map { index in
            NewMessage(
                conversation: .direct(ada.id, bob), sender: ada, text: "", clientID: "e-\(index)", sentAt: 1, retention: .untilDelivered,
                encrypted: body, inboxDevices: ["bob-1", "bob-2"]
            )
        }
        let outcomes = Mutex<[Int64]>([])
        for message in messages.prefix(2) {
            await store.submitMessage(message, recipients: [bob]) { result in
                if case .success(let stored) = result { outcomes.withLock { $0.append(stored.message.id) } }
            }
        }
        let third = try await store.insertMessage(messages[2], recipients: [bob]).message.id
        let ids = outcomes.withLock { $0 } + [third]
        #expect(ids.count == 3)
        func pending() async throws -> [Int64] { try await store.pendingMessages(for: bob, after: nil, limit: 10).map(\.id) }

        #expect(try await store.markDelivered(ids, for: bob).isEmpty)
        #expect(try await store.markDelivered(ids, for: bob, device: "bob-9").isEmpty)
        #expect(try await store.markDelivered(ids, for: bob, device: "bob-1").map(\.id) == ids)
        #expect(try await store.markDelivered(ids, for: bob, device: "bob-1").isEmpty)
        #expect(try await pending() == ids)
        #expect(try await store.markDelivered([ids[0], ids[0]], for: bob, device: "bob-2").map(\.id) == [ids[0]])
        #expect(try await pending() == Array(ids.dropFirst()))
        #expect(try await store.message(id: ids[0]) == nil)
        #expect(try await store.message(id: ids[1]) != nil)
        // The sweep of old undelivered messages takes the device entries with it.
        #expect(try await store.deleteUndelivered(sentBefore: 2) == 2)
        #expect(try await pending().isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentInsertsAreEachStoredOnce(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = UserID(rawValue: "a_bob")
        // bob is a member, as a room message's recipients are.
        _ = try await store.createRoom(Room(name: "r", owner: ada.id, createdAt: 1))
        try await store.addMember(room: "r", user: bob)
        let results = try await withThrowingTaskGroup(of: (Int, StoredMessage, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    // Messages 100 to 199 retry 0 to 99 with the same client id.
                    let message = NewMessage(
                        conversation: .room("r"), sender: ada, text: "m\(index)", clientID: "c\(index % 100)", sentAt: Int64(index)
                    )
                    let (stored, inserted) = try await store.insertMessage(message, recipients: [bob])
                    return (index, stored, inserted)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter(\.2).count == 100)
        for clientID in 0..<100 {
            let pair = results.filter { $0.0 % 100 == clientID }
            #expect(pair.count == 2 && pair[0].1.id == pair[1].1.id)
        }
        #expect(Set(results.map(\.1.id)).count == 100)
        #expect(try await store.messages(in: .room("r"), before: nil, limit: 500).count == 100)
        #expect(try await store.pendingMessages(for: bob, after: nil, limit: 500).count == 100)
    }

    /// Submitted messages, one after another without waiting for their commits (more than the
    /// SQLite store queues before it makes a submitter wait), are stored and completed in the
    /// order submitted.
    @Test(arguments: StoreKind.allCases)
    func submittedMessagesCompleteInOrderOnceStored(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let count = 5000
        let completed = Mutex<[(index: Int, id: Int64)]>([])
        let done = AsyncStream<Void>.makeStream()
        for index in 0..<count {
            let message = NewMessage(conversation: .room("r"), sender: ada, text: "m\(index)", clientID: nil, sentAt: Int64(index))
            await store.submitMessage(message, recipients: []) { result in
                guard case .success((let stored, true)) = result else { return }
                let all = completed.withLock { completed in
                    completed.append((index, stored.id))
                    return completed.count
                }
                if all == count { done.continuation.finish() }
            }
        }
        for await _ in done.stream {}
        let results = completed.withLock { $0 }
        #expect(results.map(\.index) == Array(0..<count))
        #expect(results.map(\.id) == results.map(\.id).sorted())
        #expect(Set(results.map(\.id)).count == count)
        let stored = try await store.messages(in: .room("r"), before: nil, limit: count + 1)
        #expect(stored.map(\.text) == (0..<count).map { "m\($0)" })
    }
}

@Suite("SQLite store on disk")
struct SQLiteStoreTests {
    @Test func dataSurvivesReopeningAndMigrationsAreRecorded() async throws {
        let path = temporaryPath("reopen.sqlite")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let ada = Account(id: .newAccount(), handle: "ada", handleKey: "ada", passwordHash: "h", createdAt: 1)
        do {
            let store = try SQLiteChatStore(path: path)
            try await store.createAccount(ada)
            _ = try await store.insertMessage(
                NewMessage(conversation: .room("r"), sender: ada.identity, text: "kept", clientID: nil, sentAt: 1)
            )
        }
        let reopened = try SQLiteChatStore(path: path)
        #expect(try await reopened.account(handleKey: "ada") == ada)
        #expect(try await reopened.messages(in: .room("r"), before: nil, limit: 10).map(\.text) == ["kept"])
        #expect(try await reopened.appliedMigrations() == SQLiteChatStore.migrationNames)
        #expect(SQLiteChatStore.migrationNames.first == "2026-11-22-accounts-rooms-messages")
        #expect(SQLiteChatStore.migrationNames.count >= 3)
    }

    /// The writing connection syncs each commit unless told otherwise: GRDB turns WAL on with
    /// `synchronous = NORMAL`, which the store must override after opening.
    @Test func commitsAreSyncedUnlessNormalIsAsked() async throws {
        for (sync, expected) in [(nil, SQLiteChatStore.Sync.full), (.full, .full), (.normal, .normal)] as [(SQLiteChatStore.Sync?, SQLiteChatStore.Sync)] {
            let path = temporaryPath("sync.sqlite")
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let store = try sync.map { try SQLiteChatStore(path: path, sync: $0) } ?? SQLiteChatStore(path: path)
            #expect(try await store.sync() == expected)
            // Still what the writer uses once it has written messages.
            _ = try await store.insertMessage(NewMessage(conversation: .room("r"), sender: .init(id: UserID(rawValue: "g_a"), name: "a", kind: .guest), text: "x", clientID: nil, sentAt: 1))
            #expect(try await store.sync() == expected)
        }
        #expect(try await SQLiteChatStore().sync() == nil)
    }

    /// A batch of inserts that SQLite refuses part of is rolled back whole and retried one by
    /// one: the refused message fails alone, the others are stored in order, and the writer's
    /// connection is left outside any transaction for the next batch.
    @Test func aRefusedInsertIsRolledBackAndFailsAlone() async throws {
        let path = temporaryPath("refused.sqlite")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let store = try SQLiteChatStore(path: path)
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                CREATE TRIGGER refuse_bad BEFORE INSERT ON message WHEN NEW.body = 'bad'
                BEGIN SELECT RAISE(ABORT, 'refused'); END
                """)
        }
        let sender = Identity(id: UserID(rawValue: "g_ada"), name: "ada", kind: .guest)
        let texts = ["one", "two", "bad", "three", "four"]
        let results = await submitAll(texts, from: sender) { await store.submitMessage($0, recipients: [], completion: $1) }
        #expect(results.map(\.text) == texts)
        #expect(results.map(\.stored) == [true, true, false, true, true])
        _ = try await store.insertMessage(NewMessage(conversation: .room("r"), sender: sender, text: "after", clientID: nil, sentAt: 2))
        let stored = try await store.messages(in: .room("r"), before: nil, limit: 10).map(\.text)
        #expect(stored == ["one", "two", "three", "four", "after"])
    }
}

@Suite("PostgreSQL URLs")
struct PostgresURLTests {
    @Test func urlsAreParsedAndBadOnesRefused() throws {
        let configuration = try PostgresChatStore.configuration(url: "postgres://ada:p%40ss@db.example:6543/chat?sslmode=disable")
        #expect(configuration.host == "db.example" && configuration.port == 6543)
        #expect(configuration.username == "ada" && configuration.password == "p@ss" && configuration.database == "chat")
        #expect(try PostgresChatStore.configuration(url: "postgresql://localhost").port == 5432)
        #expect(throws: ChatError.self) { try PostgresChatStore.configuration(url: "mysql://localhost/chat") }
        #expect(throws: ChatError.self) { try PostgresChatStore.configuration(url: "postgres:///chat") }
        #expect(throws: ChatError.self) { try PostgresChatStore.configuration(url: "postgres://localhost/chat?sslmode=sometimes") }
    }
}

@Suite("PostgreSQL store", .enabled(if: TestPostgres.url != nil, "needs PARLEY_TEST_POSTGRES_URL (scripts/test sets it)"))
struct PostgresStoreTests {
    /// Two nodes starting together on one database migrate it once, then see each other's data.
    @Test func nodesStartingTogetherMigrateOnceAndShareData() async throws {
        let url = try await TestPostgres.freshDatabase()
        async let first = PostgresChatStore(url: url, maxConnections: 4, logger: TestPostgres.quiet)
        async let second = PostgresChatStore(url: url, maxConnections: 4, logger: TestPostgres.quiet)
        let (a, b) = try await (first, second)
        #expect(try await a.appliedMigrations() == PostgresChatStore.migrationNames)
        let ada = Account(id: .newAccount(), handle: "Ada", handleKey: "ada", passwordHash: "h", createdAt: 1)
        try await a.createAccount(ada)
        #expect(try await b.account(handleKey: "ada") == ada)
        await #expect(throws: ChatError.self) { try await b.createAccount(ada) }
        await a.close()
        let reopened = try await PostgresChatStore(url: url, maxConnections: 2, logger: TestPostgres.quiet)
        #expect(try await reopened.appliedMigrations() == PostgresChatStore.migrationNames)
        #expect(try await reopened.account(id: ada.id) == ada)
    }

    /// Nodes' caches of a room's members lag behind another node's change by the bus's delay;
    /// the PostgreSQL store takes a room message's recipients from the membership as of the
    /// commit, whatever the caller believed.
    @Test func roomRecipientsAreTheMembersAtCommit() async throws {
        let store = try await TestPostgres.freshStore()
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = UserID(rawValue: "a_bob"), cyd = UserID(rawValue: "a_cyd")
        _ = try await store.createRoom(Room(name: "r", owner: ada.id, createdAt: 1))
        for member in [ada.id, bob] { try await store.addMember(room: "r", user: member) }
        let message = NewMessage(conversation: .room("r"), sender: ada, text: "hi", clientID: nil, sentAt: 1)
        let stored = try await store.insertMessage(message, recipients: [cyd]).message
        #expect(try await store.pendingMessages(for: bob, after: nil, limit: 10).map(\.id) == [stored.id])
        #expect(try await store.pendingMessages(for: cyd, after: nil, limit: 10).isEmpty)
        #expect(try await store.pendingMessages(for: ada.id, after: nil, limit: 10).isEmpty)
    }

    /// The same client id sent through two nodes at once is stored once; two recipients
    /// acknowledging an until-delivered message on two nodes at once delete it (whichever
    /// commits last sees the other's inbox row gone).
    @Test func racesBetweenNodesLoseAndDoubleNothing() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await PostgresChatStore(url: url, maxConnections: 4, logger: TestPostgres.quiet)
        let b = try await PostgresChatStore(url: url, maxConnections: 4, logger: TestPostgres.quiet)
        let ada = Identity(id: UserID(rawValue: "a_ada"), name: "ada", kind: .account)
        let bob = UserID(rawValue: "a_bob"), cyd = UserID(rawValue: "a_cyd")
        _ = try await a.createRoom(Room(name: "r", owner: ada.id, createdAt: 1))
        for member in [ada.id, bob, cyd] { try await a.addMember(room: "r", user: member) }
        for index in 0..<30 {
            let retry = NewMessage(conversation: .room("r"), sender: ada, text: "m\(index)", clientID: "c\(index)", sentAt: 1)
            async let viaA = a.insertMessage(retry, recipients: [bob])
            async let viaB = b.insertMessage(retry, recipients: [bob])
            let (one, two) = try await (viaA, viaB)
            #expect(one.message.id == two.message.id && one.inserted != two.inserted)

            let secret = NewMessage(
                conversation: .room("r"), sender: ada, text: "s\(index)", clientID: nil, sentAt: 1, retention: .untilDelivered
            )
            let stored = try await a.insertMessage(secret, recipients: [bob, cyd]).message
            async let ackA = a.markDelivered([stored.id], for: bob)
            async let ackB = b.markDelivered([stored.id], for: cyd)
            let (fromA, fromB) = try await (ackA, ackB)
            #expect(fromA.map(\.id) == [stored.id] && fromB.map(\.id) == [stored.id])
            #expect(try await b.message(id: stored.id) == nil)
        }
        #expect(try await a.messages(in: .room("r"), before: nil, limit: 100).count == 30)
    }
}
