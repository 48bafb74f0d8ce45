import EngineIO
import NIOCore
import Synchronization
import Testing

@testable import SocketIO

/// Records what an adapter delivers instead of writing to sockets.
final class RecordingDirectory: LocalSocketDirectory {
    let deliveries = Mutex<[(ids: Set<String>, text: String, volatile: Bool)]>([])
    let disconnected = Mutex<Set<String>>([])
    /// Ids that are not sockets of this node.
    let absent = Mutex<Set<String>>([])
    /// How many times ids were looked up.
    let lookups = Mutex(0)

    func recipients(_ ids: some Sequence<String>) -> LocalRecipients {
        let absent = absent.withLock { $0 }
        lookups.withLock { $0 += 1 }
        return LocalRecipients(ids: ids.filter { !absent.contains($0) })
    }

    func deliver(_ packets: [EnginePacket], to recipients: LocalRecipients, volatile: Bool) {
        let set = Set(recipients.ids)
        deliveries.withLock { $0.append((set, packets[0].text, volatile)) }
    }

    func disconnect(_ ids: some Sequence<String>, close: Bool) {
        disconnected.withLock { $0.formUnion(ids) }
    }

    var last: (ids: Set<String>, text: String, volatile: Bool)? { deliveries.withLock { $0.last } }
}

@Suite("In-memory adapter")
struct InMemoryAdapterTests {
    func makeAdapter(recovery: ConnectionStateRecovery? = nil) -> (InMemoryAdapter, RecordingDirectory) {
        let directory = RecordingDirectory()
        return (InMemoryAdapter(namespace: "/", sockets: directory, recovery: recovery), directory)
    }

    @Test func roomsTrackMembersBothWays() {
        let (adapter, _) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a", "b"])
        adapter.addAll("s2", rooms: ["s2", "a"])
        #expect(adapter.rooms(of: "s1") == ["s1", "a", "b"])
        #expect(adapter.roomSizes() == ["s1": 1, "s2": 1, "a": 2, "b": 1])
        adapter.remove("s1", from: "a")
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["a"])) == ["s2"])
        adapter.removeAll("s2")
        #expect(adapter.roomSizes() == ["s1": 1, "b": 1])
        #expect(adapter.rooms(of: "s2").isEmpty)
    }

    @Test func aSocketsOwnRoomIsImpliedAndKept() {
        let (adapter, _) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1"])
        adapter.addAll("s2", rooms: ["s2", "s1"])
        // s2 joined the room named by s1's id: both are reached through it.
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["s1"])) == ["s1", "s2"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["s1"], except: ["s2"])) == ["s1"])
        #expect(adapter.roomSizes() == ["s1": 2, "s2": 1])
        // A socket cannot leave its own room while it is in the namespace.
        adapter.remove("s1", from: "s1")
        #expect(adapter.rooms(of: "s1") == ["s1"])
        adapter.removeAll("s1")
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["s1"])) == ["s2"])
        #expect(adapter.rooms(of: "s1").isEmpty)
    }

    @Test func selectsRoomsMinusExceptions() {
        let (adapter, _) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.addAll("s2", rooms: ["s2", "a", "muted"])
        adapter.addAll("s3", rooms: ["s3", "b"])
        #expect(adapter.socketIDs(BroadcastOptions()) == ["s1", "s2", "s3"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["a", "b"])) == ["s1", "s2", "s3"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["a"], except: ["muted"])) == ["s1"])
        #expect(adapter.socketIDs(BroadcastOptions(except: ["s1"])) == ["s2", "s3"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["nobody"])).isEmpty)
    }

    @Test func broadcastEncodesOnceForAllRecipients() {
        let (adapter, directory) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.addAll("s2", rooms: ["s2", "a"])
        adapter.broadcast(.event("hi", [1]), options: BroadcastOptions(rooms: ["a"], volatile: true))
        let last = directory.last
        #expect(last?.ids == ["s1", "s2"])
        #expect(last?.text == #"2["hi",1]"#)
        #expect(last?.volatile == true)
        #expect(directory.deliveries.withLock { $0.count } == 1)
    }

    @Test func aBroadcastThatReachesNobodyIsNotEncodedOrDelivered() {
        let (adapter, directory) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.broadcast(.event("hi", []), options: BroadcastOptions(rooms: ["empty"]))
        adapter.broadcast(.event("hi", []), options: BroadcastOptions(rooms: ["a"], except: ["s1"]))
        #expect(directory.deliveries.withLock { $0.isEmpty })
        adapter.broadcast(.event("hi", []), options: BroadcastOptions(rooms: ["a"]))
        #expect(directory.deliveries.withLock { $0.count } == 1)
    }

    @Test func aRoomsRecipientsAreLookedUpOnceAndFollowItsMembers() {
        let (adapter, directory) = makeAdapter()
        let room = BroadcastOptions(rooms: ["a"])
        func reached() -> Set<String>? {
            adapter.broadcast(.event("m", []), options: room)
            return directory.last?.ids
        }
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.addAll("s2", rooms: ["s2", "a"])
        #expect(reached() == ["s1", "s2"])
        #expect(reached() == ["s1", "s2"])
        #expect(directory.lookups.withLock { $0 } == 1)
        adapter.addAll("s3", rooms: ["s3", "a"])
        #expect(reached() == ["s1", "s2", "s3"])
        adapter.remove("s1", from: "a")
        #expect(reached() == ["s2", "s3"])
        adapter.removeAll("s2")
        #expect(reached() == ["s3"])
        adapter.addSockets(BroadcastOptions(rooms: ["s1"]), rooms: ["a"])
        #expect(reached() == ["s1", "s3"])
        adapter.removeSockets(BroadcastOptions(rooms: ["s3"]), rooms: ["a"])
        #expect(reached() == ["s1"])
        #expect(directory.lookups.withLock { $0 } == 6)
        // Other selections are looked up each time.
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["a"], except: ["s1"]))
        adapter.broadcast(.event("m", []), options: BroadcastOptions())
        #expect(directory.last?.ids == ["s1", "s3"])
        #expect(directory.lookups.withLock { $0 } == 8)
    }

    @Test func aRoomNamedBySocketThatArrivesLaterReachesIt() {
        let (adapter, directory) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "later"])
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["later"]))
        #expect(directory.last?.ids == ["s1"])
        // A socket whose id is the room's name is in it from the start.
        adapter.addAll("later", rooms: ["later"])
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["later"]))
        #expect(directory.last?.ids == ["s1", "later"])
        adapter.removeAll("later")
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["later"]))
        #expect(directory.last?.ids == ["s1"])
    }

    @Test func onlyLocalSocketsAreReached() {
        let (adapter, directory) = makeAdapter()
        directory.absent.withLock { $0 = ["gone"] }
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.addAll("gone", rooms: ["gone", "a"])
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["a"]))
        #expect(directory.last?.ids == ["s1"])
        adapter.remove("s1", from: "a")
        adapter.broadcast(.event("m", []), options: BroadcastOptions(rooms: ["a"]))
        #expect(directory.deliveries.withLock { $0.count } == 1)
    }

    @Test func aBroadcastMayReachOnlyRoomsWithMembersUnlessRecoveryKeepsIt() {
        let (adapter, _) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a"])
        #expect(adapter.mayReach(BroadcastOptions(rooms: ["a"])))
        #expect(adapter.mayReach(BroadcastOptions(rooms: ["s1"])))
        #expect(adapter.mayReach(BroadcastOptions(rooms: ["empty", "a"])))
        #expect(adapter.mayReach(BroadcastOptions()))
        #expect(!adapter.mayReach(BroadcastOptions(rooms: ["empty"])))
        adapter.remove("s1", from: "a")
        #expect(!adapter.mayReach(BroadcastOptions(rooms: ["a"])))
        let (recovering, _) = makeAdapter(recovery: ConnectionStateRecovery())
        #expect(recovering.mayReach(BroadcastOptions(rooms: ["empty"])))
    }

    @Test func socketsJoinLeaveAndDisconnect() {
        let (adapter, directory) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.addAll("s2", rooms: ["s2"])
        adapter.addSockets(BroadcastOptions(rooms: ["a"]), rooms: ["vip"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["vip"])) == ["s1"])
        adapter.removeSockets(BroadcastOptions(), rooms: ["vip"])
        #expect(adapter.socketIDs(BroadcastOptions(rooms: ["vip"])).isEmpty)
        adapter.disconnectSockets(BroadcastOptions(except: ["s1"]), close: false)
        #expect(directory.disconnected.withLock { $0 } == ["s2"])
    }

    @Test func recoveryReplaysMissedBroadcastsForTheSessionRooms() throws {
        let (adapter, directory) = makeAdapter(recovery: ConnectionStateRecovery())
        adapter.addAll("s1", rooms: ["s1", "a"])
        adapter.broadcast(.event("m", ["first"]), options: BroadcastOptions(rooms: ["a"]))
        let offset = try #require(directory.last?.text.split(separator: "\"").dropLast().last.map(String.init))
        #expect(directory.last?.text == "2[\"m\",\"first\",\"\(offset)\"]")
        adapter.persistSession(PersistedSession(id: "s1", pid: "p1", rooms: ["s1", "a"], data: ["k": 1]))
        adapter.removeAll("s1")
        adapter.broadcast(.event("m", ["for a"]), options: BroadcastOptions(rooms: ["a"]))
        adapter.broadcast(.event("m", ["for b"]), options: BroadcastOptions(rooms: ["b"]))
        adapter.broadcast(.event("m", ["all but s1"]), options: BroadcastOptions(except: ["s1"]))
        adapter.broadcast(.event("m", ["volatile"]), options: BroadcastOptions(volatile: true))
        adapter.broadcast(.event("m", ["everyone"]), options: BroadcastOptions())
        let restored = try #require(adapter.restoreSession(pid: "p1", offset: offset))
        #expect(restored.session.id == "s1")
        #expect(restored.session.data == ["k": 1])
        let texts = restored.missedPackets.map { $0[0].text }
        #expect(texts.count == 2)
        #expect(texts[0].hasPrefix(#"2["m","for a","#))
        #expect(texts[1].hasPrefix(#"2["m","everyone","#))
        // A session is restored once.
        #expect(adapter.restoreSession(pid: "p1", offset: offset) == nil)
    }

    @Test func recoveryRefusesUnknownPidOrOffsetAndExpiredSessions() {
        let (adapter, _) = makeAdapter(recovery: ConnectionStateRecovery(maxDisconnectionDuration: .milliseconds(1)))
        adapter.broadcast(.event("m", []), options: BroadcastOptions())
        adapter.persistSession(PersistedSession(id: "s", pid: "p", rooms: [], data: [:]))
        #expect(adapter.restoreSession(pid: "other", offset: "x") == nil)
        let (fresh, _) = makeAdapter(recovery: ConnectionStateRecovery())
        fresh.persistSession(PersistedSession(id: "s", pid: "p", rooms: [], data: [:]))
        #expect(fresh.restoreSession(pid: "p", offset: "unknown") == nil)
    }

    @Test func withoutRecoveryNothingIsAppendedOrKept() {
        let (adapter, directory) = makeAdapter()
        adapter.addAll("s1", rooms: ["s1"])
        adapter.broadcast(.event("m", ["x"]), options: BroadcastOptions())
        #expect(directory.last?.text == #"2["m","x"]"#)
        adapter.persistSession(PersistedSession(id: "s", pid: "p", rooms: [], data: [:]))
        #expect(adapter.restoreSession(pid: "p", offset: "0") == nil)
    }
}

@Suite("Small set")
struct SmallSetTests {
    @Test func behavesAsASetFromNoneToOneToManyAndBack() {
        var set = SmallSet()
        #expect(set.isEmpty && set.count == 0 && !set.contains("a") && Array(set).isEmpty)
        #expect(set.insert("a") && !set.insert("a"))
        #expect(set.count == 1 && set.contains("a") && Array(set) == ["a"])
        #expect(set.insert("b") && set.insert("c") && !set.insert("b"))
        #expect(set.count == 3 && set.set == ["a", "b", "c"] && Set(Array(set)) == ["a", "b", "c"] && Array(set).count == 3)
        #expect(set.remove("b") && !set.remove("b"))
        #expect(set.remove("a") && set.count == 1 && set.set == ["c"])
        #expect(!set.remove("x") && set.remove("c") && set.isEmpty && set.set.isEmpty)
    }
}

