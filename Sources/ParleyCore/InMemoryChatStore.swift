import Synchronization

/// A ``ChatStore`` in memory, for tests and throwaway servers: everything is lost on exit.
public final class InMemoryChatStore: ChatStore {
    private struct Tables {
        var accounts: [UserID: Account] = [:]
        var handles: [String: UserID] = [:]
        var sessions: [String: UserID] = [:]
        var rooms: [String: Room] = [:]
        var members: Set<Pair> = []
        var messages: [ConversationKey: [StoredMessage]] = [:]
        var clientIDs: [ClientKey: StoredMessage] = [:]
        var nextMessageID: Int64 = 1
        var inboxes: [UserID: Set<Int64>] = [:]
        /// Per message and account, the devices yet to acknowledge (``NewMessage/inboxDevices``).
        var inboxDevices: [Int64: [UserID: Set<String>]] = [:]
        var messagesByID: [Int64: StoredMessage] = [:]
        var images: [Int64: MessageImage] = [:]
        var retention: [ConversationKey: RetentionPolicy] = [:]
        var friendRequests: [Set<UserID>: FriendRequest] = [:]
        var blocks: Set<Block> = []
        var devices: [DeviceKey] = []
    }

    private struct Block: Hashable {
        let blocker: UserID
        let blocked: UserID
    }

    private struct Pair: Hashable {
        let room: String
        let user: UserID
    }

    private struct ClientKey: Hashable {
        let sender: UserID
        let clientID: String
    }

    private let tables = Mutex(Tables())

    public init() {}

    public func createAccount(_ account: Account) async throws {
        try tables.withLock { tables throws(ChatError) in
            guard tables.handles[account.handleKey] == nil else { throw ChatError(.handleTaken, "That handle is taken.") }
            tables.handles[account.handleKey] = account.id
            tables.accounts[account.id] = account
        }
    }

    public func account(handleKey: String) async throws -> Account? {
        tables.withLock { tables in tables.handles[handleKey].flatMap { tables.accounts[$0] } }
    }

    public func account(id: UserID) async throws -> Account? {
        tables.withLock { $0.accounts[id] }
    }

    public func createSession(tokenHash: String, user: UserID, createdAt: Timestamp) async throws {
        tables.withLock { $0.sessions[tokenHash] = user }
    }

    public func sessionUser(tokenHash: String) async throws -> UserID? {
        tables.withLock { $0.sessions[tokenHash] }
    }

    public func deleteSession(tokenHash: String) async throws {
        tables.withLock { _ = $0.sessions.removeValue(forKey: tokenHash) }
    }

    public func room(named name: String) async throws -> Room? {
        tables.withLock { $0.rooms[name] }
    }

    public func createRoom(_ room: Room) async throws -> Room {
        tables.withLock { tables in
            if let existing = tables.rooms[room.name] { return existing }
            tables.rooms[room.name] = room
            return room
        }
    }

    public func addMember(room: String, user: UserID) async throws {
        tables.withLock { _ = $0.members.insert(Pair(room: room, user: user)) }
    }

    public func removeMember(room: String, user: UserID) async throws {
        tables.withLock { _ = $0.members.remove(Pair(room: room, user: user)) }
    }

    public func isMember(room: String, user: UserID) async throws -> Bool {
        tables.withLock { $0.members.contains(Pair(room: room, user: user)) }
    }

    public func friendRequest(between a: UserID, and b: UserID) async throws -> FriendRequest? {
        tables.withLock { $0.friendRequests[[a, b]] }
    }

    public func saveFriendRequest(_ request: FriendRequest) async throws {
        tables.withLock { $0.friendRequests[[request.from, request.to]] = request }
    }

    public func deleteFriendRequest(between a: UserID, and b: UserID) async throws {
        tables.withLock { _ = $0.friendRequests.removeValue(forKey: [a, b]) }
    }

    public func friendRequests(of user: UserID) async throws -> [FriendRequest] {
        tables.withLock { tables in
            tables.friendRequests.values.filter { $0.from == user || $0.to == user }.sorted { ($0.updatedAt, $0.from, $0.to) < ($1.updatedAt, $1.from, $1.to) }
        }
    }

    public func block(_ blocked: UserID, by blocker: UserID) async throws {
        tables.withLock { _ = $0.blocks.insert(Block(blocker: blocker, blocked: blocked)) }
    }

    public func unblock(_ blocked: UserID, by blocker: UserID) async throws {
        tables.withLock { _ = $0.blocks.remove(Block(blocker: blocker, blocked: blocked)) }
    }

    public func isBlocked(_ blocked: UserID, by blocker: UserID) async throws -> Bool {
        tables.withLock { $0.blocks.contains(Block(blocker: blocker, blocked: blocked)) }
    }

    public func blocked(by blocker: UserID) async throws -> [UserID] {
        tables.withLock { tables in tables.blocks.filter { $0.blocker == blocker }.map(\.blocked).sorted() }
    }

    public func putDevice(_ device: DeviceKey) async throws {
        tables.withLock { tables in
            if let index = tables.devices.firstIndex(where: { $0.user == device.user && $0.deviceID == device.deviceID }) {
                tables.devices[index] = device
            } else {
                tables.devices.append(device)
            }
        }
    }

    public func devices(of user: UserID) async throws -> [DeviceKey] {
        tables.withLock { tables in tables.devices.filter { $0.user == user } }
    }

    public func members(of room: String) async throws -> [UserID] {
        tables.withLock { tables in tables.members.filter { $0.room == room }.map(\.user).sorted() }
    }

    public func rooms(of user: UserID) async throws -> [String] {
        tables.withLock { tables in tables.members.filter { $0.user == user }.map(\.room).sorted() }
    }

    public func message(id: Int64) async throws -> StoredMessage? {
        tables.withLock { $0.messagesByID[id] }
    }

    public func image(ofMessage id: Int64) async throws -> MessageImage? {
        tables.withLock { $0.images[id] }
    }

    public func pendingMessages(for user: UserID, after: Int64?, limit: Int) async throws -> [StoredMessage] {
        tables.withLock { tables in
            let ids = (tables.inboxes[user] ?? []).filter { $0 > (after ?? 0) }.sorted().prefix(limit)
            return ids.compactMap { tables.messagesByID[$0] }
        }
    }

    public func markDelivered(_ ids: [Int64], for user: UserID, device: String?) async throws -> [StoredMessage] {
        tables.withLock { tables in
            var seen = Set<Int64>()
            let delivered = ids.compactMap { id -> StoredMessage? in
                guard seen.insert(id).inserted, tables.inboxes[user]?.contains(id) == true else { return nil }
                let tookDevice = device.map { tables.inboxDevices[id]?[user]?.remove($0) != nil } ?? false
                if let waiting = tables.inboxDevices[id]?[user], !waiting.isEmpty {
                    return tookDevice ? tables.messagesByID[id] : nil
                }
                tables.inboxDevices[id]?[user] = nil
                tables.inboxes[user]?.remove(id)
                return tables.messagesByID[id]
            }
            for message in delivered where message.retention == .untilDelivered {
                if !tables.inboxes.values.contains(where: { $0.contains(message.id) }) { Self.delete(message, from: &tables) }
            }
            return delivered
        }
    }

    public func deleteUndelivered(sentBefore time: Timestamp) async throws -> Int {
        tables.withLock { tables in
            let expired = tables.messagesByID.values.filter { $0.retention == .untilDelivered && $0.sentAt < time }
            for message in expired { Self.delete(message, from: &tables) }
            return expired.count
        }
    }

    public func deleteMessages(in conversation: ConversationKey) async throws -> Int {
        tables.withLock { tables in
            let messages = tables.messages[conversation] ?? []
            for message in messages { Self.delete(message, from: &tables) }
            return messages.count
        }
    }

    private static func delete(_ message: StoredMessage, from tables: inout Tables) {
        tables.messagesByID[message.id] = nil
        tables.images[message.id] = nil
        tables.messages[message.conversation]?.removeAll { $0.id == message.id }
        for user in tables.inboxes.keys { tables.inboxes[user]?.remove(message.id) }
        tables.inboxDevices[message.id] = nil
        tables.clientIDs = tables.clientIDs.filter { $0.value.id != message.id }
    }

    public func retention(of conversation: ConversationKey) async throws -> RetentionPolicy? {
        tables.withLock { $0.retention[conversation] }
    }

    public func setRetention(_ policy: RetentionPolicy, for conversation: ConversationKey) async throws {
        tables.withLock { $0.retention[conversation] = policy }
    }

    public func insertMessage(_ message: NewMessage, recipients: [UserID]) async throws -> (message: StoredMessage, inserted: Bool) {
        tables.withLock { tables in
            if let clientID = message.clientID, let existing = tables.clientIDs[ClientKey(sender: message.sender.id, clientID: clientID)] {
                return (existing, false)
            }
            let stored = StoredMessage(id: tables.nextMessageID, message)
            tables.nextMessageID += 1
            tables.messagesByID[stored.id] = stored
            if let image = message.image { tables.images[stored.id] = image }
            for recipient in recipients {
                tables.inboxes[recipient, default: []].insert(stored.id)
                if !message.inboxDevices.isEmpty { tables.inboxDevices[stored.id, default: [:]][recipient] = Set(message.inboxDevices) }
            }
            tables.messages[message.conversation, default: []].append(stored)
            if let clientID = message.clientID {
                tables.clientIDs[ClientKey(sender: message.sender.id, clientID: clientID)] = stored
            }
            return (stored, true)
        }
    }

    public func messages(in conversation: ConversationKey, before: Int64?, limit: Int) async throws -> [StoredMessage] {
        tables.withLock { tables in
            let all = tables.messages[conversation] ?? []
            let end = before.map { bound in all.firstIndex { $0.id >= bound } ?? all.endIndex } ?? all.endIndex
            return Array(all[max(0, end - limit)..<end])
        }
    }
}
