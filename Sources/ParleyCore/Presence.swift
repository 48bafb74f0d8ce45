/// Who is in which room right now, by connection, in the order they arrived. Owned by the chat
/// service, under its lock.
///
/// In a cluster it also holds the other nodes' connections, each marked with its node (its
/// origin), so that member lists, "joined" and "left" notices and taken names count everyone.
struct Presence {
    private(set) var rooms: [String: [ConnectionID: Identity]] = [:]
    private(set) var connections: [ConnectionID: Set<String>] = [:]
    /// When each connection entered each room, to list members in arrival order.
    private var arrivals: [String: [ConnectionID: Int]] = [:]
    /// The node of each connection that is not this node's.
    private var origins: [ConnectionID: String] = [:]
    private var clock = 0

    /// Whether `connection` is in `room`.
    func contains(_ connection: ConnectionID, in room: String) -> Bool {
        rooms[room]?[connection] != nil
    }

    /// Whether someone other than `identity` uses its name (ignoring case) in `room`.
    func nameConflict(_ identity: Identity, in room: String) -> Bool {
        let key = identity.name.lowercased()
        return rooms[room]?.values.contains { $0.id != identity.id && $0.name.lowercased() == key } ?? false
    }

    /// Adds a connection (of node `origin`, or this node's when `nil`) to a room. Returns whether
    /// it is the user's first connection there.
    mutating func add(_ connection: ConnectionID, _ identity: Identity, to room: String, origin: String? = nil) -> Bool {
        let first = !(rooms[room]?.values.contains { $0.id == identity.id } ?? false)
        rooms[room, default: [:]][connection] = identity
        connections[connection, default: []].insert(room)
        if let origin { origins[connection] = origin }
        clock += 1
        arrivals[room, default: [:]][connection] = clock
        return first
    }

    /// Removes a connection from a room. Returns who it was and whether that user has no other
    /// connection left there; `nil` if it was not there.
    mutating func remove(_ connection: ConnectionID, from room: String) -> (identity: Identity, last: Bool)? {
        guard let identity = rooms[room]?.removeValue(forKey: connection) else { return nil }
        arrivals[room]?[connection] = nil
        if rooms[room]?.isEmpty == true {
            rooms[room] = nil
            arrivals[room] = nil
        }
        connections[connection]?.remove(room)
        if connections[connection]?.isEmpty == true {
            connections[connection] = nil
            origins[connection] = nil
        }
        let last = !(rooms[room]?.values.contains { $0.id == identity.id } ?? false)
        return (identity, last)
    }

    /// Removes every connection of the nodes `nodes`. Returns, room by room, who left and whether
    /// it was that user's last connection there.
    mutating func removeAll(of nodes: Set<String>) -> [(room: String, identity: Identity, last: Bool)] {
        var removed: [(room: String, identity: Identity, last: Bool)] = []
        for (connection, origin) in origins where nodes.contains(origin) {
            for room in (connections[connection] ?? []).sorted() {
                guard let gone = remove(connection, from: room) else { continue }
                removed.append((room, gone.identity, gone.last))
            }
        }
        return removed
    }

    /// The connections of `user` in `room`, this node's (`local`) or the other nodes'.
    func connections(of user: UserID, in room: String, local: Bool = true) -> [ConnectionID] {
        (rooms[room] ?? [:]).filter { $0.value.id == user && (origins[$0.key] == nil) == local }.map(\.key)
    }

    /// This node's own connections in every room, each room's in arrival order.
    func localEntries() -> [PresenceEntry] {
        rooms.keys.sorted().flatMap { room -> [PresenceEntry] in
            let order = arrivals[room] ?? [:]
            return (rooms[room] ?? [:]).filter { origins[$0.key] == nil }
                .sorted { order[$0.key, default: 0] < order[$1.key, default: 0] }
                .map { PresenceEntry(room: room, connection: $0.key, identity: $0.value) }
        }
    }

    /// The people present in `room`, once each, in the order they arrived.
    func members(of room: String) -> [Identity] {
        guard let present = rooms[room], let order = arrivals[room] else { return [] }
        var seen = Set<UserID>()
        return present.sorted { order[$0.key, default: 0] < order[$1.key, default: 0] }
            .map(\.value)
            .filter { seen.insert($0.id).inserted }
    }
}
