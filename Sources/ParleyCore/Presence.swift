/// Who is in which room right now, by connection, in the order they arrived. Owned by the chat
/// service, under its lock.
struct Presence {
    private(set) var rooms: [String: [ConnectionID: Identity]] = [:]
    private(set) var connections: [ConnectionID: Set<String>] = [:]
    /// When each connection entered each room, to list members in arrival order.
    private var arrivals: [String: [ConnectionID: Int]] = [:]
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

    /// Adds a connection to a room. Returns whether it is the user's first connection there.
    mutating func add(_ connection: ConnectionID, _ identity: Identity, to room: String) -> Bool {
        let first = !(rooms[room]?.values.contains { $0.id == identity.id } ?? false)
        rooms[room, default: [:]][connection] = identity
        connections[connection, default: []].insert(room)
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
        if connections[connection]?.isEmpty == true { connections[connection] = nil }
        let last = !(rooms[room]?.values.contains { $0.id == identity.id } ?? false)
        return (identity, last)
    }

    /// The connections of `user` in `room`.
    func connections(of user: UserID, in room: String) -> [ConnectionID] {
        (rooms[room] ?? [:]).filter { $0.value.id == user }.map(\.key)
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
