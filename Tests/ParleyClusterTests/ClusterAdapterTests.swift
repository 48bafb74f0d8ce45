import EngineIO
import Foundation
import Logging
import ParleyCluster
import ParleyStorePostgres
import SocketIO
import Synchronization
import Testing

/// Nodes of a cluster in one process: what one node publishes reaches the others' adapters a
/// moment later, in order, as over the PostgreSQL bus. A node can be made silent (it hears
/// nothing and so never answers), as a node that just died and is still listed.
final class TestHub: Sendable {
    final class Endpoint: ClusterBus {
        let name: String
        let hub: TestHub
        let adapter = Mutex<ClusterAdapter?>(nil)
        init(name: String, hub: TestHub) {
            self.name = name
            self.hub = hub
        }
        func publish(_ message: ClusterMessage) { hub.send(message, from: name) }
        func register(_ adapter: ClusterAdapter, for namespace: String) { self.adapter.withLock { $0 = adapter } }
        var nodes: [String] { hub.endpoints.withLock { $0.map(\.name) } }
    }

    /// A node's sockets, which no test writes to.
    final class NoSockets: LocalSocketDirectory {
        func recipients(_ ids: some Sequence<String>) -> LocalRecipients { LocalRecipients() }
        func deliver(_ packets: [EnginePacket], to recipients: LocalRecipients, volatile: Bool) {}
        func disconnect(_ ids: some Sequence<String>, close: Bool) {}
    }

    let endpoints = Mutex<[Endpoint]>([])
    let silent = Mutex<Set<String>>([])
    private let queue = AsyncStream<(ClusterMessage, String)>.makeStream()

    init() {
        Task { await self.run() }
    }

    private func run() async {
        for await (message, from) in queue.stream {
            let silent = self.silent.withLock { $0 }
            for endpoint in endpoints.withLock({ $0 }) where endpoint.name != from && !silent.contains(endpoint.name) {
                endpoint.adapter.withLock { $0 }?.receive(message)
            }
        }
    }

    func send(_ message: ClusterMessage, from node: String) { queue.continuation.yield((message, node)) }

    /// A node's adapter of namespace `/`, and its server-side event handlers.
    func node(_ name: String, fetchTimeout: Duration = .seconds(2)) -> (ClusterAdapter, ServerSideEvents) {
        let endpoint = Endpoint(name: name, hub: self)
        endpoints.withLock { $0.append(endpoint) }
        let events = ServerSideEvents()
        let context = AdapterContext(namespace: "/", sockets: NoSockets(), recovery: nil, serverSideEvents: events)
        return (ClusterAdapter(context: context, bus: endpoint, fetchTimeout: fetchTimeout), events)
    }
}

@Suite("The cluster adapter")
struct ClusterAdapterTests {
    @Test func aServerSideEventReachesTheOtherNodesHandlersOnly() async throws {
        let hub = TestHub()
        let (a, eventsA) = hub.node("a")
        let (_, eventsB) = hub.node("b")
        let heard = Mutex<[(String, [JSONValue])]>([])
        eventsA.on("reload") { args in heard.withLock { $0.append(("a", args)) } }
        eventsB.on("reload") { args in heard.withLock { $0.append(("b", args)) } }
        a.serverSideEmit("reload", ["config", ["version": 2]])
        for _ in 0..<200 where heard.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(20))
        let got = heard.withLock { $0 }
        #expect(got.count == 1 && got.first?.0 == "b" && got.first?.1 == ["config", ["version": 2]])
    }

    @Test func fetchingSocketsCountsEveryNode() async {
        let hub = TestHub()
        let (a, _) = hub.node("a")
        let (b, _) = hub.node("b")
        a.addAll("s1", rooms: ["s1", "lobby"])
        b.addAll("s2", rooms: ["s2", "lobby"])
        b.addAll("s3", rooms: ["s3", "other"])
        #expect(await a.fetchSocketIDs(BroadcastOptions(rooms: ["lobby"])) == ["s1", "s2"])
        #expect(await b.fetchSocketIDs(BroadcastOptions()) == ["s1", "s2", "s3"])
        #expect(await a.fetchSocketIDs(BroadcastOptions(rooms: ["lobby"], except: ["s2"])) == ["s1"])
        // Only this node's, when asked so.
        #expect(a.socketIDs(BroadcastOptions(rooms: ["lobby"])) == ["s1"])
    }

    @Test func aBroadcastToARoomEmptyHereMayReachAnotherNode() {
        let hub = TestHub()
        let (a, _) = hub.node("a")
        let (b, _) = hub.node("b")
        b.addAll("s2", rooms: ["s2", "lobby"])
        // Node a has nobody in the lobby, but must not skip a broadcast to it.
        #expect(a.mayReach(BroadcastOptions(rooms: ["lobby"])))
        #expect(a.mayReach(BroadcastOptions(rooms: ["nowhere"])))
    }

    @Test func aSilentNodeCostsTheTimeoutNotTheAnswer() async {
        let hub = TestHub()
        let (a, _) = hub.node("a", fetchTimeout: .milliseconds(300))
        let (b, _) = hub.node("b")
        _ = hub.node("gone")
        hub.silent.withLock { _ = $0.insert("gone") }
        a.addAll("s1", rooms: ["s1", "lobby"])
        b.addAll("s2", rooms: ["s2", "lobby"])
        let started = ContinuousClock.now
        #expect(await a.fetchSocketIDs(BroadcastOptions(rooms: ["lobby"])) == ["s1", "s2"])
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(300) && waited < .seconds(3))
    }
}

/// The same over PostgreSQL: two buses on the test server, as two nodes.
@Suite(
    "The cluster adapter over PostgreSQL",
    .enabled(if: ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES_URL"] != nil, "needs PARLEY_TEST_POSTGRES_URL (scripts/test sets it)")
)
struct PostgresClusterAdapterTests {
    @Test func serverSideEventsAndSocketQueriesCrossTheBus() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES_URL"])
        var logger = Logger(label: "parley.test.bus")
        logger.logLevel = .critical
        let configuration = try PostgresChatStore.configuration(url: url)
        let one = PostgresBus(configuration: configuration, heartbeatInterval: .milliseconds(200), logger: logger)
        let two = PostgresBus(configuration: configuration, heartbeatInterval: .milliseconds(200), logger: logger)
        try await one.start()
        try await two.start()
        for _ in 0..<100 where !one.nodes.contains(two.nodeID) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(one.nodes.contains(two.nodeID) && two.nodes.contains(one.nodeID))
        let eventsTwo = ServerSideEvents()
        let a = ClusterAdapter(context: AdapterContext(namespace: "/", sockets: TestHub.NoSockets(), recovery: nil), bus: one)
        let b = ClusterAdapter(context: AdapterContext(namespace: "/", sockets: TestHub.NoSockets(), recovery: nil, serverSideEvents: eventsTwo), bus: two)
        let heard = Mutex<[JSONValue]>([])
        eventsTwo.on("hello") { args in heard.withLock { $0 = args } }
        a.serverSideEmit("hello", ["from one", 1])
        b.addAll("s2", rooms: ["s2", "lobby"])
        a.addAll("s1", rooms: ["s1", "lobby"])
        #expect(await a.fetchSocketIDs(BroadcastOptions(rooms: ["lobby"])).isSuperset(of: ["s1", "s2"]))
        for _ in 0..<100 where heard.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(heard.withLock { $0 } == ["from one", 1])
        await one.shutdown()
        await two.shutdown()
    }
}
