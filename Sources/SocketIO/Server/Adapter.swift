import EngineIO
import NIOCore

/// Who a broadcast reaches: the sockets in any of `rooms` (every socket of the namespace when
/// empty), minus the sockets in any of `except`.
public struct BroadcastOptions: Sendable, Hashable {
    /// Rooms whose members receive the packet; empty for every socket.
    public var rooms: Set<String>
    /// Rooms whose members are left out (a socket's own id leaves that socket out).
    public var except: Set<String>
    /// A volatile packet may be dropped for a client that cannot take it at once.
    public var volatile: Bool
    /// Only sockets of this node, in a cluster.
    public var local: Bool

    public init(rooms: Set<String> = [], except: Set<String> = [], volatile: Bool = false, local: Bool = false) {
        self.rooms = rooms
        self.except = except
        self.volatile = volatile
        self.local = local
    }
}

/// What a disconnected socket leaves behind for connection state recovery.
public struct PersistedSession: Sendable, Hashable {
    /// The socket id, given back on recovery.
    public var id: String
    /// The private id the client presents to recover.
    public var pid: String
    /// The rooms the socket was in.
    public var rooms: Set<String>
    /// The socket's data.
    public var data: JSONObject
}

/// A session found again: its state and the broadcasts it missed, already encoded.
public struct RecoveredSession: Sendable {
    public var session: PersistedSession
    public var missedPackets: [[EnginePacket]]
}

/// The local sockets a broadcast reaches, looked up by id once: an adapter keeps those of a room
/// and delivers each of the room's broadcasts to them until the room's members change.
public struct LocalRecipients: Sendable {
    /// The ids of the sockets found.
    public let ids: [String]
    /// Their sessions, in the order of `ids`.
    public let sessions: [EngineSocket]

    /// Recipients `ids`, whose sessions are `sessions`.
    public init(ids: [String] = [], sessions: [EngineSocket] = []) {
        self.ids = ids
        self.sessions = sessions
    }

    /// Whether no socket is reached.
    public var isEmpty: Bool { ids.isEmpty }
}

/// Where the sockets of a namespace live on this node; an adapter delivers through it.
public protocol LocalSocketDirectory: AnyObject, Sendable {
    /// Those of `ids` that are sockets of this node now.
    func recipients(_ ids: some Sequence<String>) -> LocalRecipients
    /// Writes encoded packets to `recipients` (a closed session drops them).
    func deliver(_ packets: [EnginePacket], to recipients: LocalRecipients, volatile: Bool)
    /// Disconnects these local sockets.
    func disconnect(_ ids: some Sequence<String>, close: Bool)
}

/// Keeps the rooms of a namespace and carries its broadcasts: the in-memory adapter for one
/// node, or a shared one (PostgreSQL) that also reaches the sockets of other nodes.
///
/// An adapter owns the room tables; the namespace asks it to add and remove memberships and
/// to deliver packets. A broadcast is encoded once and the same bytes go to every recipient.
public protocol Adapter: AnyObject, Sendable {
    /// Adds socket `id` to `rooms`.
    func addAll(_ id: String, rooms: Set<String>)
    /// Removes socket `id` from `room`; a socket stays in its own room (named by its id).
    func remove(_ id: String, from room: String)
    /// Removes socket `id` from every room.
    func removeAll(_ id: String)
    /// The rooms socket `id` is in.
    func rooms(of id: String) -> Set<String>
    /// The ids of the local sockets that `options` selects.
    func socketIDs(_ options: BroadcastOptions) -> Set<String>
    /// The rooms that exist, with their number of members.
    func roomSizes() -> [String: Int]
    /// Sends `packet` to every socket that `options` selects.
    func broadcast(_ packet: SocketIOPacket, options: BroadcastOptions)
    /// Whether a broadcast with `options` may reach anyone, now or (with recovery) later: when
    /// not, a sender can skip preparing it. An adapter that cannot tell answers `true`.
    func mayReach(_ options: BroadcastOptions) -> Bool
    /// Makes the sockets that `options` selects join `rooms`.
    func addSockets(_ options: BroadcastOptions, rooms: Set<String>)
    /// Makes the sockets that `options` selects leave `rooms`.
    func removeSockets(_ options: BroadcastOptions, rooms: Set<String>)
    /// Disconnects the sockets that `options` selects.
    func disconnectSockets(_ options: BroadcastOptions, close: Bool)
    /// Keeps a session for connection state recovery.
    func persistSession(_ session: PersistedSession)
    /// Finds a kept session and what it missed since `offset`; `nil` when it expired or the
    /// offset is unknown.
    func restoreSession(pid: String, offset: String) -> RecoveredSession?
    /// Sends an event to the namespace on the other servers of a cluster.
    func serverSideEmit(_ event: String, _ args: [JSONValue])
    /// The ids of the sockets that `options` selects on every server of a cluster.
    func fetchSocketIDs(_ options: BroadcastOptions) async -> Set<String>
}

extension Adapter {
    /// One server has no other servers to tell.
    public func serverSideEmit(_ event: String, _ args: [JSONValue]) {}

    /// Without a cheap way to tell, any broadcast may reach someone (on another server, say).
    public func mayReach(_ options: BroadcastOptions) -> Bool { true }

    /// One server's sockets are all local.
    public func fetchSocketIDs(_ options: BroadcastOptions) async -> Set<String> {
        socketIDs(options)
    }
}
