/// What a room's owner may do.
extension ChatService {
    /// The room's name, if `identity` owns it; otherwise `not_owner`.
    func ownedRoom(_ room: String, by identity: Identity) async throws(ChatError) -> String {
        let name = try Names.roomName(room)
        guard let stored = try await storage({ try await store.room(named: name) }), stored.owner == identity.id else {
            throw ChatError(.notOwner, "Only the owner of \(name) can do this.")
        }
        return name
    }

    /// Deletes a room's whole history; everyone in it is told. Returns how many messages went.
    @discardableResult
    public func clearHistory(of room: String, by identity: Identity) async throws(ChatError) -> Int {
        let name = try await ownedRoom(room, by: identity)
        let deleted = try await storage { try await store.deleteMessages(in: .room(name)) }
        sink.publish(.cleared(room: name, by: identity), to: .room(name))
        return deleted
    }

    /// Removes a member (account or guest, by user id) from a room: all its connections leave,
    /// an account stops being a member, the room and the removed user are told.
    public func remove(_ user: UserID, from room: String, by identity: Identity) async throws(ChatError) {
        let name = try await ownedRoom(room, by: identity)
        guard user != identity.id else { throw ChatError(.invalidArgument, "The owner cannot remove themselves; leave instead.") }
        let wasMember = try await storage { try await store.isMember(room: name, user: user) }
        if wasMember {
            try await storage { try await store.removeMember(room: name, user: user) }
            conversationChanged(.members(room: name))
        }
        let removed = presence.withLock { presence -> Identity? in
            var who: Identity?
            for connection in presence.connections(of: user, in: name) {
                guard let gone = presence.remove(connection, from: name) else { continue }
                who = gone.identity
                replicator?.publish(.left(room: name, connection: connection))
                sink.unsubscribe(connection, from: .room(name))
                releaseNames(of: connection, in: [name])
            }
            // Connections on other nodes: forgotten here at once; their nodes take them out.
            let elsewhere = presence.connections(of: user, in: name, local: false)
            for connection in elsewhere {
                if let gone = presence.remove(connection, from: name) { who = gone.identity }
            }
            if !elsewhere.isEmpty { replicator?.publish(.evict(room: name, user: user)) }
            if let who {
                sink.publish(.removed(room: name, user: who, by: identity), to: .room(name))
                sink.publish(.removed(room: name, user: who, by: identity), to: .user(who.id))
                sink.publish(.members(room: name, members: presence.members(of: name)), to: .room(name))
            }
            return who
        }
        guard removed != nil || wasMember else { throw ChatError(.notMember, "That user is not in \(name).") }
    }
}
