import ParleyCore
import Synchronization
import Testing

/// Nodes of a cluster in one process: each node's presence changes wait in a queue until
/// ``deliver()`` hands them to every other node, in the order each node published them, the
/// way the PostgreSQL bus does.
final class TestCluster: Sendable {
    /// One node's outgoing changes.
    final class Outbox: ClusterReplicator {
        let node: String
        let queue = Mutex<[PresenceChange]>([])
        let conversations = Mutex<[ConversationChange]>([])
        init(node: String) { self.node = node }
        func publish(_ change: PresenceChange) { queue.withLock { $0.append(change) } }
        func publish(_ change: ConversationChange) { conversations.withLock { $0.append(change) } }
    }

    /// The cluster's arbiter of names, as the PostgreSQL table is.
    final class Names: NameRegistry {
        let claims = Mutex<[String: [ConnectionID: (key: String, user: UserID)]]>([:])
        func claim(_ name: String, in room: String, for user: UserID, on connection: ConnectionID) async throws -> Bool {
            claims.withLock { claims in
                let key = name.lowercased()
                guard !(claims[room] ?? [:]).values.contains(where: { $0.key == key && $0.user != user }) else { return false }
                claims[room, default: [:]][connection] = (key, user)
                return true
            }
        }
        func release(_ connection: ConnectionID, from room: String) async {
            _ = claims.withLock { $0[room]?.removeValue(forKey: connection) }
        }
    }

    let nodes = Mutex<[(name: String, service: ChatService, sink: RecordingSink, outbox: Outbox)]>([])
    let store = InMemoryChatStore()
    let names = Names()

    /// A new node sharing the cluster's store; it asks the others for their presence.
    func node(_ name: String) -> (ChatService, RecordingSink) {
        let outbox = Outbox(node: name)
        let sink = RecordingSink()
        var configuration = ChatConfiguration()
        configuration.passwordHasher = .forTesting
        let service = ChatService(
            store: store, sink: sink, replicator: outbox, names: names, configuration: configuration, clock: { 1_700_000_000_000 }
        )
        nodes.withLock { $0.append((name, service, sink, outbox)) }
        service.announcePresence(askingOthers: true)
        return (service, sink)
    }

    /// Hands every queued change to the other nodes until no node has anything queued.
    func deliver() {
        while true {
            let pending = nodes.withLock { nodes in
                nodes.map { node in
                    (node.name, node.outbox.queue.withLock { queue in defer { queue.removeAll() }; return queue },
                     node.outbox.conversations.withLock { queue in defer { queue.removeAll() }; return queue })
                }
            }
            guard pending.contains(where: { !$0.1.isEmpty || !$0.2.isEmpty }) else { return }
            let services = nodes.withLock { $0.map { ($0.name, $0.service) } }
            for (from, changes, conversations) in pending {
                for (name, service) in services where name != from {
                    for change in changes { service.applyPresence(change, from: from) }
                    for change in conversations { service.apply(change) }
                }
            }
        }
    }

    /// Stops node `name`: it is gone from the cluster without a word.
    func kill(_ name: String) {
        nodes.withLock { $0.removeAll { $0.name == name } }
    }
}

@Suite("Presence across the nodes of a cluster")
struct PresenceReplicationTests {
    @Test func memberListsAndNoticesCountEveryNode() async throws {
        let cluster = TestCluster()
        let (a, sinkA) = cluster.node("a")
        let (b, sinkB) = cluster.node("b")
        cluster.deliver()
        let ann = try a.guest(name: "ann")
        let bob = try b.guest(name: "bob")
        _ = try await a.join("lobby", as: ann, on: .c("ann@a"))
        cluster.deliver()
        sinkB.clear()
        let joined = try await b.join("lobby", as: bob, on: .c("bob@b"))
        #expect(joined.members == [ann, bob])
        #expect(sinkB.published == [.notice(room: "lobby", kind: .joined, who: bob), .members(room: "lobby", members: [ann, bob])])
        cluster.deliver()
        #expect(try a.members(of: "lobby", on: .c("ann@a")) == [ann, bob])

        // A second connection of ann, on b: no second "joined"; leaving one of the two, no "left".
        let account = try await a.register(handle: "carol", password: "long enough").identity
        _ = try await a.join("lobby", as: account, on: .c("carol@a"))
        cluster.deliver()
        sinkB.clear()
        _ = try await b.join("lobby", as: account, on: .c("carol@b"))
        #expect(sinkB.published == [.members(room: "lobby", members: [ann, bob, account])])
        cluster.deliver()
        sinkA.clear()
        a.disconnected(.c("carol@a"))
        #expect(sinkA.published.isEmpty)
        cluster.deliver()
        sinkB.clear()
        b.disconnected(.c("carol@b"))
        #expect(sinkB.published == [.notice(room: "lobby", kind: .left, who: account), .members(room: "lobby", members: [ann, bob])])
        cluster.deliver()
        #expect(try a.members(of: "lobby", on: .c("ann@a")) == [ann, bob])
    }

    @Test func aNameTakenOnOneNodeIsTakenOnTheOther() async throws {
        let cluster = TestCluster()
        let (a, _) = cluster.node("a")
        let (b, _) = cluster.node("b")
        _ = try await a.join("lobby", as: try a.guest(name: "ann"), on: .c("ann@a"))
        #expect(!b.isNameTaken("ann", in: "lobby"))  // not yet told
        cluster.deliver()
        #expect(b.isNameTaken("ANN", in: "lobby"))
        let refused = await #expect(throws: ChatError.self) { try await b.join("lobby", as: try b.guest(name: "Ann"), on: .c("ann@b")) }
        #expect(refused?.code == .nameTaken)
        // Once she leaves, the name is free everywhere.
        try await a.leave("lobby", as: try #require(a.members(of: "lobby", on: .c("ann@a")).first), on: .c("ann@a"))
        cluster.deliver()
        #expect(!b.isNameTaken("ann", in: "lobby"))
    }

    @Test func twoPeopleTakingOneFreeNameOnTwoNodesAtOnceCannotBothGetIt() async throws {
        let cluster = TestCluster()
        let (a, _) = cluster.node("a")
        let (b, _) = cluster.node("b")
        cluster.deliver()
        // Neither node has heard of the other's join: only the registry knows.
        _ = try await a.join("lobby", as: try a.guest(name: "sam"), on: .c("sam@a"))
        let refused = await #expect(throws: ChatError.self) { try await b.join("lobby", as: try b.guest(name: "SAM"), on: .c("sam@b")) }
        #expect(refused?.code == .nameTaken)
        // Once sam leaves node A, the name is free on node B (the release runs in the background).
        a.disconnected(.c("sam@a"))
        cluster.deliver()
        var joined = false
        for _ in 0..<200 where !joined {
            joined = (try? await b.join("lobby", as: try b.guest(name: "Sam"), on: .c("sam@b"))) != nil
            if !joined { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(joined)
    }

    @Test func aNodeThatStartsLearnsWhoIsPresent() async throws {
        let cluster = TestCluster()
        let (a, _) = cluster.node("a")
        let ann = try a.guest(name: "ann")
        _ = try await a.join("lobby", as: ann, on: .c("ann@a"))
        cluster.deliver()
        let (late, _) = cluster.node("late")
        #expect(!late.isNameTaken("ann", in: "lobby"))
        cluster.deliver()
        #expect(late.isNameTaken("ann", in: "lobby"))
        let bob = try late.guest(name: "bob")
        #expect(try await late.join("lobby", as: bob, on: .c("bob@late")).members == [ann, bob])
    }

    @Test func aDeadNodesConnectionsLeaveEveryList() async throws {
        let cluster = TestCluster()
        let (a, _) = cluster.node("a")
        let (b, sinkB) = cluster.node("b")
        let (c, _) = cluster.node("c")
        let ann = try a.guest(name: "ann")
        let bob = try b.guest(name: "bob")
        _ = try await a.join("lobby", as: ann, on: .c("ann@a"))
        _ = try await a.join("side", as: ann, on: .c("ann@a"))
        cluster.deliver()
        _ = try await b.join("lobby", as: bob, on: .c("bob@b"))
        cluster.deliver()
        cluster.kill("a")
        sinkB.clear()
        b.nodesDown(["a"])
        #expect(sinkB.published == [
            .notice(room: "lobby", kind: .left, who: ann), .notice(room: "side", kind: .left, who: ann),
            .members(room: "lobby", members: [bob]), .members(room: "side", members: []),
        ])
        #expect(try b.members(of: "lobby", on: .c("bob@b")) == [bob])
        #expect(c.isNameTaken("ann", in: "lobby"))
        cluster.deliver()
        #expect(!c.isNameTaken("ann", in: "lobby"))
    }

    @Test func aMembershipChangedOnOneNodeIsNotTakenFromTheOthersCache() async throws {
        let cluster = TestCluster()
        let (a, _) = cluster.node("a")
        let (b, _) = cluster.node("b")
        let owner = try await a.register(handle: "owner", password: "long enough").identity
        let late = try await a.register(handle: "late", password: "long enough").identity
        _ = try await b.join("club", as: owner, on: .c("owner@b"))
        cluster.deliver()
        // b caches the room's members ([owner]) with its first message.
        _ = try await b.send("first", to: "club", clientID: nil, from: owner, on: .c("owner@b"))
        _ = try await a.join("club", as: late, on: .c("late@a"))
        a.disconnected(.c("late@a"))
        cluster.deliver()
        // Told of the change, b counts the new member: the message waits in its inbox.
        let second = try await b.send("second", to: "club", clientID: nil, from: owner, on: .c("owner@b"))
        #expect(try await cluster.store.pendingMessages(for: late.id, after: nil, limit: 10).map(\.id) == [second.id])
    }

    @Test func removingAUserReachesItsConnectionsOnOtherNodes() async throws {
        let cluster = TestCluster()
        let (a, sinkA) = cluster.node("a")
        let (b, sinkB) = cluster.node("b")
        let owner = try await a.register(handle: "owner", password: "long enough").identity
        let member = try await a.register(handle: "member", password: "long enough").identity
        _ = try await a.join("club", as: owner, on: .c("owner@a"))
        cluster.deliver()
        _ = try await b.join("club", as: member, on: .c("member@b"))
        cluster.deliver()
        #expect(sinkB.subscriptions.withLock { $0[.c("member@b")] }?.contains(.room("club")) == true)
        sinkA.clear()
        try await a.remove(member.id, from: "club", by: owner)
        #expect(sinkA.published.last == .members(room: "club", members: [owner]))
        cluster.deliver()
        #expect(sinkB.subscriptions.withLock { $0[.c("member@b")] }?.contains(.room("club")) == false)
        #expect(try a.members(of: "club", on: .c("owner@a")) == [owner])
        let gone = #expect(throws: ChatError.self) { try b.members(of: "club", on: .c("member@b")) }
        #expect(gone?.code == .notMember)
    }
}
