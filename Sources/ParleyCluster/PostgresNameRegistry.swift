import ParleyCore
import ParleyStorePostgres
import PostgresNIO

/// The cluster's names in rooms, in the unlogged table `parley_name_claim`: one row per
/// connection and room. Claims of one name in one room take turns under an advisory lock, so
/// that two people taking a free name on two nodes at the same moment cannot both get it. A
/// node's rows go when it stops (the node that finds it gone deletes them) and when a node of
/// the same name starts again.
extension PostgresBus: NameRegistry {
    public func claim(_ name: String, in room: String, for user: UserID, on connection: ConnectionID) async throws -> Bool {
        let key = name.lowercased()
        let node = nodeID
        return try await pool.transaction { [logger] db in
            try await db.query("SELECT pg_advisory_xact_lock(hashtext(\(room)), hashtext(\(key)))", logger: logger)
            let taken = try await db.query("""
                SELECT 1 FROM parley_name_claim WHERE room = \(room) AND name_key = \(key) AND user_id <> \(user.rawValue) LIMIT 1
                """, logger: logger).collect()
            guard taken.isEmpty else { return false }
            try await db.query("""
                INSERT INTO parley_name_claim (room, connection, name_key, user_id, node)
                VALUES (\(room), \(connection.rawValue), \(key), \(user.rawValue), \(node))
                ON CONFLICT (room, connection) DO UPDATE SET name_key = excluded.name_key, user_id = excluded.user_id, node = excluded.node
                """, logger: logger)
            return true
        }
    }

    public func release(_ connection: ConnectionID, from room: String) async {
        do {
            _ = try await pool.query("DELETE FROM parley_name_claim WHERE room = \(room) AND connection = \(connection.rawValue)")
        } catch {
            logger.error("cluster: could not release a name", metadata: ["error": "\(error)", "room": "\(room)"])
        }
    }
}
