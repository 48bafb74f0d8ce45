/// What sending a message needs to know about its conversation and rarely changes: a room's
/// member accounts, a conversation's retention policy. Kept in memory so that a message costs
/// no store read; the service clears an entry whenever it changes it. Bounded: past
/// ``capacity`` entries of a kind, that kind starts over.
///
/// On a node of a cluster, another node's change reaches it through the cluster bus a few
/// milliseconds later (``ChatService/apply(_:)``); meanwhile a message may still use the old
/// value. A PostgreSQL store therefore takes a room message's inbox recipients from the
/// membership table as of its commit, not from this cache.
struct ConversationCache {
    static let capacity = 10_000
    /// Whether it keeps anything.
    let enabled: Bool
    private var members: [String: [UserID]] = [:]
    private var retention: [ConversationKey: RetentionPolicy?] = [:]
    /// Counts changes: a value read from the store is kept only if nothing changed while it was
    /// being read, so that a read racing a change cannot bring back the old value.
    private(set) var generation = 0

    func members(of room: String) -> [UserID]? { members[room] }

    init(enabled: Bool = true) {
        self.enabled = enabled
    }

    mutating func setMembers(_ users: [UserID], of room: String, readAt generation: Int) {
        guard enabled, generation == self.generation else { return }
        if members.count >= Self.capacity { members.removeAll(keepingCapacity: true) }
        members[room] = users
    }

    mutating func membersChanged(in room: String) {
        generation += 1
        members[room] = nil
    }

    /// `.some(nil)` when the conversation is known to have no policy of its own.
    func retention(of conversation: ConversationKey) -> RetentionPolicy?? { retention[conversation] }

    mutating func setRetention(_ policy: RetentionPolicy?, of conversation: ConversationKey, readAt generation: Int) {
        guard enabled, generation == self.generation else { return }
        if retention.count >= Self.capacity { retention.removeAll(keepingCapacity: true) }
        retention[conversation] = .some(policy)
    }

    mutating func retentionChanged(of conversation: ConversationKey) {
        generation += 1
        retention[conversation] = nil
    }

    /// Forgets everything, as if every conversation had changed.
    mutating func forgetAll() {
        generation += 1
        members.removeAll()
        retention.removeAll()
    }
}
