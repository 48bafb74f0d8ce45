import Foundation

/// Messages of `none` conversations, which are never stored: their ids, and the client ids
/// recently seen, so that a retried send is still recognised. Bounded.
struct EphemeralMessages {
    static let capacity = 10_000
    private var lastID: Int64 = 0
    private var byClientID: [String: StoredMessage] = [:]
    private var order: [String] = []

    /// A new id, above every id a store hands out (2^52 and up), growing with time so that it
    /// stays unique across restarts, and below 2^53 so that JavaScript reads it exactly.
    mutating func nextID(now: Timestamp) -> Int64 {
        lastID = max(lastID + 1, (Int64(1) << 52) + now * 1000)
        return lastID
    }

    func existing(sender: UserID, clientID: String) -> StoredMessage? {
        byClientID[sender.rawValue + "\u{0}" + clientID]
    }

    mutating func remember(_ message: StoredMessage) {
        guard let clientID = message.clientID else { return }
        let key = message.sender.id.rawValue + "\u{0}" + clientID
        if byClientID.updateValue(message, forKey: key) == nil { order.append(key) }
        if order.count > Self.capacity {
            byClientID[order.removeFirst()] = nil
        }
    }
}

extension ChatService {
    /// The retention policy of a conversation: its own, or the server's default.
    public func retention(of conversation: ConversationKey) async throws(ChatError) -> RetentionPolicy {
        let (known, generation) = cache.withLock { ($0.retention(of: conversation), $0.generation) }
        if let known { return known ?? configuration.defaultRetention }
        let policy = try await storage { try await store.retention(of: conversation) }
        cache.withLock { $0.setRetention(policy, of: conversation, readAt: generation) }
        return policy ?? configuration.defaultRetention
    }

    /// Stores a message under its conversation's retention policy and waits for the commit: kept
    /// only in memory under `none` (and under `until-delivered` when nobody is to receive it).
    /// Returns the message and whether it is new (not a retry of a known client id).
    func post(
        _ text: String, image: MessageImage?, encrypted: EncryptedBody? = nil, in conversation: ConversationKey, clientID: String?,
        from identity: Identity, recipients: [UserID], recipientDevices: [String] = []
    ) async throws(ChatError) -> (message: StoredMessage, inserted: Bool) {
        let outcome = Outcome<(message: StoredMessage, inserted: Bool)>()
        try await post(
            text, image: image, encrypted: encrypted, in: conversation, clientID: clientID, from: identity, recipients: recipients,
            recipientDevices: recipientDevices, completion: outcome.settle
        )
        return try await outcome.value.get()
    }

    /// Like ``post(_:image:in:clientID:from:recipients:)``, without waiting for the store: returns
    /// once the message is queued; `completion` runs once it is stored, in submission order.
    /// `recipientDevices` (of an encrypted direct message) each acknowledge it under
    /// `until-delivered`.
    func post(
        _ text: String, image: MessageImage?, encrypted: EncryptedBody? = nil, in conversation: ConversationKey, clientID: String?,
        from identity: Identity, recipients: [UserID], recipientDevices: [String] = [],
        completion: @escaping @Sendable (Result<(message: StoredMessage, inserted: Bool), ChatError>) -> Void
    ) async throws(ChatError) {
        let policy = try await retention(of: conversation)
        let now = clock()
        if policy == .none || (policy == .untilDelivered && recipients.isEmpty) {
            let result = ephemeral.withLock { log -> (message: StoredMessage, inserted: Bool) in
                if let clientID, let known = log.existing(sender: identity.id, clientID: clientID) { return (known, false) }
                let message = StoredMessage(
                    id: log.nextID(now: now), conversation: conversation, sender: identity, text: text,
                    clientID: clientID, sentAt: now, retention: .none, image: image, encrypted: encrypted
                )
                log.remember(message)
                return (message, true)
            }
            completion(.success(result))
            return
        }
        let new = NewMessage(
            conversation: conversation, sender: identity, text: text, clientID: clientID, sentAt: now, retention: policy, image: image,
            encrypted: encrypted, inboxDevices: policy == .untilDelivered ? recipientDevices : []
        )
        await store.submitMessage(new, recipients: recipients) { [self] result in
            sink.afterCommit { completion(result.mapError(self.storageError)) }
        }
    }

    /// Sets a room's retention for the messages sent from now on. Only its owner may.
    public func setRetention(_ policy: RetentionPolicy, ofRoom room: String, by identity: Identity) async throws(ChatError) {
        let name = try await ownedRoom(room, by: identity)
        try await storage { try await store.setRetention(policy, for: .room(name)) }
        conversationChanged(.retention(.room(name)))
    }

    /// Sets the retention of the direct conversation with a friend; either side may.
    public func setRetention(_ policy: RetentionPolicy, withFriend handle: String, by identity: Identity) async throws(ChatError) {
        let other = try await friend(handle, of: identity)
        try await storage { try await store.setRetention(policy, for: .direct(identity.id, other.id)) }
        conversationChanged(.retention(.direct(identity.id, other.id)))
    }

    /// Deletes `until-delivered` messages older than the maximum age. Returns how many.
    @discardableResult
    public func sweepUndelivered() async throws(ChatError) -> Int {
        let horizon = clock() - configuration.undeliveredMaxAge
        return try await storage { try await store.deleteUndelivered(sentBefore: horizon) }
    }
}
