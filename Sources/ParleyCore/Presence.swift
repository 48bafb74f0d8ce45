/// Who is in which room right now, by connection. Owned by the chat service, under its lock.
struct Presence {
    private(set) var rooms: [String: [ConnectionID: Identity]] = [:]
    private(set) var connections: [ConnectionID: Set<String>] = [:]

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
        return first
    }

    /// Removes a connection from a room. Returns who it was and whether that user has no other
    /// connection left there; `nil` if it was not there.
    mutating func remove(_ connection: ConnectionID, from room: String) -> (identity: Identity, last: Bool)? {
        guard let identity = rooms[room]?.removeValue(forKey: connection) else { return nil }
        if rooms[room]?.isEmpty == true { rooms[room] = nil }
        connections[connection]?.remove(room)
        if connections[connection]?.isEmpty == true { connections[connection] = nil }
        let last = !(rooms[room]?.values.contains { $0.id == identity.id } ?? false)
        return (identity, last)
    }

    /// The connections of `user` in `room`.
    func connections(of user: UserID, in room: String) -> [ConnectionID] {
        (rooms[room] ?? [:]).filter { $0.value.id == user }.map(\.key)
    }

    /// The people present in `room`, once each, sorted by name then id.
    func members(of room: String) -> [Identity] {
        var seen = Set<UserID>()
        return (rooms[room]?.values ?? [:].values)
            .filter { seen.insert($0.id).inserted }
            .sorted { ($0.name.lowercased(), $0.id) < ($1.name.lowercased(), $1.id) }
    }
}
