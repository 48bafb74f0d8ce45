/// Store-and-forward, receipts and typing.
extension ChatService {
    /// The most messages handed over in one step of a replay; memory stays bounded whatever the
    /// inbox holds.
    static let replayPage = 100

    /// A connection of `identity` opened. Every connection receives what is addressed to its
    /// user (direct messages, friend requests, receipts). An account is then present in every
    /// room it is a member of, and gets what waits in its inbox, oldest first, page by page;
    /// each message stays there until a connection acknowledges it (``delivered(_:by:)``).
    public func connected(_ identity: Identity, on connection: ConnectionID) async {
        sink.subscribe(connection, to: .user(identity.id))
        guard identity.isAccount else { return }
        if replicator != nil { accountConnections.withLock { $0[connection] = identity } }
        do throws(ChatError) {
            for room in try await storage({ try await store.rooms(of: identity.id) }) {
                presence.withLock { enter(room, identity, connection, presence: &$0) }
            }
            try await replayInbox(of: identity, to: connection)
        } catch {
            logger.error("could not restore a connection's rooms and inbox", metadata: ["error": .string("\(error)")])
        }
    }

    /// Sends a connection what waits in its account's inbox, oldest first, page by page.
    func replayInbox(of identity: Identity, to connection: ConnectionID) async throws(ChatError) {
        var after: Int64?
        while true {
            let page = try await storage { try await store.pendingMessages(for: identity.id, after: after, limit: Self.replayPage) }
            for message in page {
                let event: ChatEvent = message.conversation.roomName != nil ? .message(message) : .direct(message, to: identity)
                sink.publish(event, to: .connection(connection))
            }
            guard page.count == Self.replayPage, let last = page.last else { break }
            after = last.id
        }
    }

    /// A connection of `identity` acknowledges messages: they leave its inbox, and each sender
    /// gets a delivery receipt. Ids that were not waiting for this account are ignored. `device`
    /// is the account's device that acknowledges, which an `until-delivered` encrypted message
    /// waits for (each of its recipient devices must acknowledge it).
    public func delivered(_ ids: [Int64], by identity: Identity, device: String? = nil) async throws(ChatError) {
        try checkIDs(ids)
        try checkDevice(device)
        guard identity.isAccount else { return }
        for message in try await storage({ try await store.markDelivered(ids, for: identity.id, device: device) }) {
            sink.publish(
                .receipt(messageID: message.id, conversation: message.conversation, by: identity, status: .delivered),
                to: .user(message.sender.id)
            )
        }
    }

    /// A connection of `identity` read messages: they are delivered too, and each sender gets a
    /// read receipt, for the messages of conversations `identity` belongs to. Read receipts are
    /// relayed, not stored. `device` is as for ``delivered(_:by:device:)``.
    public func read(_ ids: [Int64], by identity: Identity, device: String? = nil, on connection: ConnectionID) async throws(ChatError) {
        try checkIDs(ids)
        try checkDevice(device)
        if identity.isAccount { _ = try await storage { try await store.markDelivered(ids, for: identity.id, device: device) } }
        for id in ids {
            guard let message = try await storage({ try await store.message(id: id) }), message.sender.id != identity.id,
                  try await belongs(identity, to: message.conversation, on: connection)
            else { continue }
            sink.publish(
                .receipt(messageID: message.id, conversation: message.conversation, by: identity, status: .read),
                to: .user(message.sender.id)
            )
        }
    }

    private func checkDevice(_ device: String?) throws(ChatError) {
        if let device, !(1...64).contains(device.utf8.count) {
            throw ChatError(.invalidArgument, "device is a device id of 1 to 64 characters.")
        }
    }

    private func checkIDs(_ ids: [Int64]) throws(ChatError) {
        guard (1...Self.replayPage).contains(ids.count) else {
            throw ChatError(.invalidArgument, "ids lists 1 to \(Self.replayPage) message ids.")
        }
    }

    /// The image of a stored message, for someone who belongs to its conversation. Anything
    /// else is `not_found`, so that nobody learns what exists elsewhere.
    public func image(ofMessage id: Int64, for identity: Identity, on connection: ConnectionID) async throws(ChatError) -> MessageImage {
        let notFound = ChatError(.notFound, "No such image.")
        guard let message = try await storage({ try await store.message(id: id) }),
              try await belongs(identity, to: message.conversation, on: connection),
              let image = try await storage({ try await store.image(ofMessage: id) })
        else { throw notFound }
        return image
    }

    /// Whether `identity` may see the conversation: present in or member of the room, or one of
    /// the two accounts of a direct conversation.
    private func belongs(_ identity: Identity, to conversation: ConversationKey, on connection: ConnectionID) async throws(ChatError) -> Bool {
        if let room = conversation.roomName {
            if presence.withLock({ $0.contains(connection, in: room) }) { return true }
            guard identity.isAccount else { return false }
            return try await storage { try await store.isMember(room: room, user: identity.id) }
        }
        guard let (a, b) = conversation.participants else { return false }
        return identity.id == a || identity.id == b
    }

    /// Tells a room (everyone else there) or a friend that `identity` is typing or stopped.
    /// Volatile: dropped for whoever cannot take it at once, never stored.
    public func typing(
        in room: String?, to handle: String?, isTyping: Bool, from identity: Identity, on connection: ConnectionID
    ) async throws(ChatError) {
        switch (room, handle) {
        case (let room?, nil):
            let name = try Names.roomName(room)
            guard presence.withLock({ $0.contains(connection, in: name) }) else {
                throw ChatError(.notMember, "You are not in \(name).")
            }
            sink.publish(
                .typing(conversation: .room(name), from: identity, isTyping: isTyping), to: .room(name),
                options: PublishOptions(except: connection, volatile: true)
            )
        case (nil, let handle?):
            let other = try await friend(handle, of: identity)
            sink.publish(
                .typing(conversation: .direct(identity.id, other.id), from: identity, isTyping: isTyping), to: .user(other.id),
                options: PublishOptions(volatile: true)
            )
        default:
            throw ChatError(.invalidArgument, "Give either room or to.")
        }
    }
}
