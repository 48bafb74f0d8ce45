import EngineIO
import Foundation
import NIOCore
import SocketIO
import Synchronization

/// What one node tells the others about a namespace: a broadcast to deliver to their sockets,
/// sockets to make join or leave rooms or to disconnect, an event for their server-side handlers,
/// or a question about their sockets (and its answers). Each node encodes a broadcast's packet
/// for its own sockets once; the message carries the Socket.IO packet's wire form (its text and
/// binary attachments).
public struct ClusterMessage: Codable, Sendable, Equatable {
    /// What to do.
    public enum Operation: String, Codable, Sendable {
        case broadcast, join, leave, disconnect
        /// An event for the other nodes' ``ServerSideEvents`` handlers; `packet` is the JSON
        /// array of the event's name and arguments.
        case serverSideEmit
        /// Which of your sockets does the selection hold? `request` names the question.
        case fetchSockets
        /// The answer to `request`: the sockets in `ids`.
        case fetchSocketsReply
    }

    public var operation: Operation
    public var namespace: String
    public var rooms: [String]
    public var except: [String]
    public var volatile: Bool
    /// For `join` and `leave`, the rooms to join or leave.
    public var targetRooms: [String]
    /// For `disconnect`, whether to close the whole connection.
    public var close: Bool
    /// For `broadcast`, the packet's text part and its attachments (base64).
    public var packet: String?
    public var attachments: [String]
    /// For `fetchSockets` and its reply, the question's id.
    public var request: String?
    /// For `fetchSocketsReply`, the socket ids.
    public var ids: [String]?
}

extension ClusterMessage {
    init(_ operation: Operation, namespace: String, options: BroadcastOptions) {
        self.operation = operation
        self.namespace = namespace
        self.rooms = options.rooms.sorted()
        self.except = options.except.sorted()
        self.volatile = options.volatile
        self.targetRooms = []
        self.close = false
        self.packet = nil
        self.attachments = []
        self.request = nil
        self.ids = nil
    }

    /// The selection on the receiving node: its own sockets only.
    public var options: BroadcastOptions {
        BroadcastOptions(rooms: Set(rooms), except: Set(except), volatile: volatile, local: true)
    }

    /// A broadcast of `packet`, in its wire form.
    public static func broadcast(_ packet: SocketIOPacket, namespace: String, options: BroadcastOptions) -> ClusterMessage {
        var message = ClusterMessage(.broadcast, namespace: namespace, options: options)
        for part in packet.encode() {
            if part.isBinary {
                message.attachments.append(Data(part.payload.readableBytesView).base64EncodedString())
            } else {
                message.packet = part.text
            }
        }
        return message
    }

    /// The broadcast's packet, put back together; `nil` if it is not one or is malformed.
    public func decodedPacket() -> SocketIOPacket? {
        guard let text = packet else { return nil }
        var assembler = PacketAssembler()
        do {
            var complete = try assembler.feed(.text(text))
            for attachment in attachments {
                guard let bytes = Data(base64Encoded: attachment) else { return nil }
                complete = try assembler.feed(.binary(ByteBuffer(bytes: bytes)))
            }
            return complete
        } catch {
            return nil
        }
    }
}

/// Carries ``ClusterMessage``s between the nodes of a cluster. ``PostgresBus`` is the one
/// Parley ships.
public protocol ClusterBus: AnyObject, Sendable {
    /// Sends a message to every other node, in the order published.
    func publish(_ message: ClusterMessage)
    /// Hands the messages other nodes publish for `namespace` to `adapter`.
    func register(_ adapter: ClusterAdapter, for namespace: String)
    /// The nodes of the cluster, this one included, as far as this node knows.
    var nodes: [String] { get }
}

/// The adapter of a node in a cluster: the rooms of this node's sockets are kept in memory (by an
/// ``InMemoryAdapter``), and every broadcast, room change and disconnect that is not marked
/// `local` is also published on the bus, so that it reaches the sockets of every node.
///
/// Connection state recovery stays per node: a client recovers its session only on the node it
/// left (nginx's hashing on the session keeps it there).
public final class ClusterAdapter: Adapter {
    private let local: InMemoryAdapter
    private let namespace: String
    private let bus: any ClusterBus
    private let serverSideEvents: ServerSideEvents
    /// How long ``fetchSocketIDs(_:)`` waits for the other nodes' answers.
    public let fetchTimeout: Duration
    /// Questions asked by ``fetchSocketIDs(_:)``, by id: the answers still expected, the ids
    /// gathered, and who waits.
    private let questions = Mutex<[String: (expected: Int, ids: Set<String>, waiter: CheckedContinuation<Set<String>, Never>)]>([:])

    /// The adapter of `context`'s namespace, publishing on `bus`.
    public init(context: AdapterContext, bus: any ClusterBus, fetchTimeout: Duration = .seconds(2)) {
        self.local = InMemoryAdapter(namespace: context.namespace, sockets: context.sockets, recovery: context.recovery)
        self.namespace = context.namespace
        self.bus = bus
        self.serverSideEvents = context.serverSideEvents
        self.fetchTimeout = fetchTimeout
        bus.register(self, for: context.namespace)
    }

    public func serverSideEmit(_ event: String, _ args: [JSONValue]) {
        var message = ClusterMessage(.serverSideEmit, namespace: namespace, options: BroadcastOptions())
        message.packet = JSONValue.array([.string(event)] + args).json
        bus.publish(message)
    }

    /// Asks every other node for its sockets that `options` selects, and waits for each answer
    /// or ``fetchTimeout``, whichever comes first.
    public func fetchSocketIDs(_ options: BroadcastOptions) async -> Set<String> {
        let mine = local.socketIDs(options)
        let expected = bus.nodes.count - 1
        guard expected > 0 else { return mine }
        let id = UUID().uuidString
        var question = ClusterMessage(.fetchSockets, namespace: namespace, options: options)
        question.request = id
        let timeout = fetchTimeout
        let answers = await withCheckedContinuation { (waiter: CheckedContinuation<Set<String>, Never>) in
            questions.withLock { $0[id] = (expected, [], waiter) }
            bus.publish(question)
            Task {
                try? await Task.sleep(for: timeout)
                self.finish(id)
            }
        }
        return mine.union(answers)
    }

    /// Hands a question's answers to its waiter, once.
    private func finish(_ id: String) {
        guard let question = questions.withLock({ $0.removeValue(forKey: id) }) else { return }
        question.waiter.resume(returning: question.ids)
    }

    public func addAll(_ id: String, rooms: Set<String>) { local.addAll(id, rooms: rooms) }
    public func remove(_ id: String, from room: String) { local.remove(id, from: room) }
    public func removeAll(_ id: String) { local.removeAll(id) }
    public func rooms(of id: String) -> Set<String> { local.rooms(of: id) }
    public func socketIDs(_ options: BroadcastOptions) -> Set<String> { local.socketIDs(options) }
    public func roomSizes() -> [String: Int] { local.roomSizes() }
    public func persistSession(_ session: PersistedSession) { local.persistSession(session) }
    public func restoreSession(pid: String, offset: String) -> RecoveredSession? { local.restoreSession(pid: pid, offset: offset) }

    public func broadcast(_ packet: SocketIOPacket, options: BroadcastOptions) {
        local.broadcast(packet, options: options)
        guard !options.local else { return }
        bus.publish(.broadcast(packet, namespace: namespace, options: options))
    }

    public func addSockets(_ options: BroadcastOptions, rooms: Set<String>) {
        local.addSockets(options, rooms: rooms)
        publish(.join, options, rooms: rooms)
    }

    public func removeSockets(_ options: BroadcastOptions, rooms: Set<String>) {
        local.removeSockets(options, rooms: rooms)
        publish(.leave, options, rooms: rooms)
    }

    /// Tells the other nodes to make their sockets that `options` selects join or leave `rooms`.
    private func publish(_ operation: ClusterMessage.Operation, _ options: BroadcastOptions, rooms: Set<String>) {
        guard !options.local else { return }
        var message = ClusterMessage(operation, namespace: namespace, options: options)
        message.targetRooms = rooms.sorted()
        bus.publish(message)
    }

    public func disconnectSockets(_ options: BroadcastOptions, close: Bool) {
        local.disconnectSockets(options, close: close)
        guard !options.local else { return }
        var message = ClusterMessage(.disconnect, namespace: namespace, options: options)
        message.close = close
        bus.publish(message)
    }

    /// Applies what another node published to this node's sockets.
    public func receive(_ message: ClusterMessage) {
        let options = message.options
        switch message.operation {
        case .broadcast:
            if let packet = message.decodedPacket() { local.broadcast(packet, options: options) }
        case .join:
            local.addSockets(options, rooms: Set(message.targetRooms))
        case .leave:
            local.removeSockets(options, rooms: Set(message.targetRooms))
        case .disconnect:
            local.disconnectSockets(options, close: message.close)
        case .serverSideEmit:
            guard let text = message.packet, let parts = (try? JSONValue(parsing: text))?.arrayValue,
                  let event = parts.first?.stringValue
            else { return }
            serverSideEvents.dispatch(event, Array(parts.dropFirst()))
        case .fetchSockets:
            var reply = ClusterMessage(.fetchSocketsReply, namespace: namespace, options: BroadcastOptions())
            reply.request = message.request
            reply.ids = local.socketIDs(options).sorted()
            bus.publish(reply)
        case .fetchSocketsReply:
            guard let id = message.request else { return }
            let complete = questions.withLock { questions -> Bool in
                guard var question = questions[id] else { return false }
                question.ids.formUnion(message.ids ?? [])
                question.expected -= 1
                questions[id] = question
                return question.expected <= 0
            }
            if complete { finish(id) }
        }
    }
}
