/// One connection present in one room.
public struct PresenceEntry: Codable, Sendable, Hashable {
    public var room: String
    public var connection: ConnectionID
    public var identity: Identity

    public init(room: String, connection: ConnectionID, identity: Identity) {
        self.room = room
        self.connection = connection
        self.identity = identity
    }
}

/// What one node of a cluster tells the others about its own connections' presence. Each node
/// keeps a copy of the others' presence, so that member lists, notices and taken names are
/// cluster-wide; the node where something happens announces it to the rooms.
public enum PresenceChange: Codable, Sendable, Hashable {
    /// A connection of the sending node entered a room.
    case entered(PresenceEntry)
    /// A connection of the sending node left a room.
    case left(room: String, connection: ConnectionID)
    /// Everything present on the sending node, replacing what was known of it. With `reply`,
    /// every node that receives it answers with its own snapshot (a node that starts asks so).
    case snapshot([PresenceEntry], reply: Bool)
    /// The node that owns `user`'s connections in `room` takes them out (the room's owner
    /// removed `user` on another node).
    case evict(room: String, user: UserID)
    /// These nodes stopped: forget their connections. Their departures are announced by the
    /// node that found them gone.
    case nodesDown([String])
}

/// A change to what nodes keep in memory about a conversation (``ChatConfiguration/cachesConversations``):
/// the node that made it tells the others, which forget what they knew.
public enum ConversationChange: Codable, Sendable, Hashable {
    /// A room's member accounts changed.
    case members(room: String)
    /// A conversation's retention policy changed.
    case retention(ConversationKey)
}

/// Sends this node's changes to the other nodes of a cluster, in the order given. Calls must not
/// block: presence changes are published under the chat service's presence lock.
public protocol ClusterReplicator: Sendable {
    func publish(_ change: PresenceChange)
    func publish(_ change: ConversationChange)
}

/// Where the nodes of a cluster agree on who uses which name in which room: the one arbiter
/// that makes a unique name in a room unique across nodes, even when two people take it on two
/// nodes at the same moment (presence copies arrive a few milliseconds late).
public protocol NameRegistry: Sendable {
    /// Claims `name` (ignoring case) in `room` for `user`'s `connection`. Returns `false` when
    /// another user holds it there.
    func claim(_ name: String, in room: String, for user: UserID, on connection: ConnectionID) async throws -> Bool
    /// Gives up the claim of `connection` in `room`.
    func release(_ connection: ConnectionID, from room: String) async
}

extension ChatService {
    /// Gives up the names of `connection` in `rooms`, in the background.
    func releaseNames(of connection: ConnectionID, in rooms: [String]) {
        guard let names, !rooms.isEmpty else { return }
        Task {
            for room in rooms { await names.release(connection, from: room) }
        }
    }

    /// Tells the other nodes everything present on this node, replacing what they knew of it;
    /// with `askingOthers`, they answer with theirs. A node does this when it starts (asking),
    /// and when the others had taken it for gone (then it also claims its names again, which
    /// the node that found it gone released).
    public func announcePresence(askingOthers: Bool) {
        let entries = presence.withLock { presence in
            let entries = presence.localEntries()
            replicator?.publish(.snapshot(entries, reply: askingOthers))
            return entries
        }
        guard !askingOthers, let names, !entries.isEmpty else { return }
        Task {
            for entry in entries { _ = try? await names.claim(entry.identity.name, in: entry.room, for: entry.identity.id, on: entry.connection) }
        }
    }

    /// After this node missed what other nodes published (its cluster bus lost its listening
    /// connection): it forgets every cached conversation, since a change may have gone unheard,
    /// trades presence with the others, each replacing what it knew of the other, and sends its
    /// accounts' connections what waits in their inboxes, as on a reconnect: the messages they
    /// missed live, and again those they have yet to acknowledge (clients tell them by id).
    public func catchUpWithOtherNodes() {
        cache.withLock { $0.forgetAll() }
        announcePresence(askingOthers: true)
        let connections = accountConnections.withLock { $0 }
        guard !connections.isEmpty else { return }
        Task {
            for (connection, identity) in connections {
                do throws(ChatError) {
                    try await replayInbox(of: identity, to: connection)
                } catch {
                    logger.error("could not catch up a connection's inbox", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }

    /// Records a change this node made to a conversation: its own cache forgets the old value
    /// at once, and the other nodes are told to forget theirs.
    func conversationChanged(_ change: ConversationChange) {
        apply(change)
        replicator?.publish(change)
    }

    /// Forgets what the cache knew about a conversation another node changed.
    public func apply(_ change: ConversationChange) {
        cache.withLock { cache in
            switch change {
            case .members(let room): cache.membersChanged(in: room)
            case .retention(let conversation): cache.retentionChanged(of: conversation)
            }
        }
    }

    /// Applies a change that node `node` published.
    public func applyPresence(_ change: PresenceChange, from node: String) {
        presence.withLock { presence in
            switch change {
            case .entered(let entry):
                _ = presence.add(entry.connection, entry.identity, to: entry.room, origin: node)
            case .left(let room, let connection):
                _ = presence.remove(connection, from: room)
            case .snapshot(let entries, let reply):
                _ = presence.removeAll(of: [node])
                for entry in entries { _ = presence.add(entry.connection, entry.identity, to: entry.room, origin: node) }
                if reply { replicator?.publish(.snapshot(presence.localEntries(), reply: false)) }
            case .evict(let room, let user):
                for connection in presence.connections(of: user, in: room) {
                    guard presence.remove(connection, from: room) != nil else { continue }
                    sink.unsubscribe(connection, from: .room(room))
                    replicator?.publish(.left(room: room, connection: connection))
                    releaseNames(of: connection, in: [room])
                }
            case .nodesDown(let nodes):
                _ = presence.removeAll(of: Set(nodes))
            }
        }
    }

    /// This node found `nodes` gone: their connections leave every room, the other nodes are
    /// told to forget them, and each room hears who left and who remains.
    public func nodesDown(_ nodes: [String]) {
        presence.withLock { presence in
            let removed = presence.removeAll(of: Set(nodes))
            replicator?.publish(.nodesDown(nodes))
            var rooms = Set<String>()
            for departure in removed {
                rooms.insert(departure.room)
                if departure.last { sink.publish(.notice(room: departure.room, kind: .left, who: departure.identity), to: .room(departure.room)) }
            }
            for room in rooms.sorted() {
                sink.publish(.members(room: room, members: presence.members(of: room)), to: .room(room))
            }
        }
    }
}
