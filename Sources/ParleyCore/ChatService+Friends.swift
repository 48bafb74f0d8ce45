import Foundation

/// Friends, blocks and direct messages: accounts only.
public struct FriendList: Sendable, Hashable {
    /// Accepted friends.
    public var friends: [Identity] = []
    /// Requests waiting for this account's answer.
    public var incoming: [Identity] = []
    /// Requests this account sent, not answered yet.
    public var outgoing: [Identity] = []
    /// Accounts this account blocks.
    public var blocked: [Identity] = []
}

extension ChatService {
    private func requireAccount(_ identity: Identity) throws(ChatError) {
        guard identity.isAccount else { throw ChatError(.accountRequired, "Only accounts can have friends and direct messages.") }
    }

    /// The account with this handle.
    func account(handle: String) async throws(ChatError) -> Account {
        let unknown = ChatError(.unknownUser, "No account has that handle.")
        guard let (_, key) = try? Names.handle(handle) else { throw unknown }
        guard let account = try await storage({ try await store.account(handleKey: key) }) else { throw unknown }
        return account
    }

    private func blockedEitherWay(_ a: UserID, _ b: UserID) async throws(ChatError) -> Bool {
        if try await storage({ try await store.isBlocked(a, by: b) }) { return true }
        return try await storage { try await store.isBlocked(b, by: a) }
    }

    /// The latest friend request between `identity` and the account `handle`, if any.
    public func friendRequest(with handle: String, of identity: Identity) async throws(ChatError) -> FriendRequest? {
        try requireAccount(identity)
        let other = try await account(handle: handle)
        return try await storage { try await store.friendRequest(between: identity.id, and: other.id) }
    }

    /// Asks `handle` to be friends. A request crossing one from them accepts it at once.
    /// Returns the friendship's status afterwards (`pending` or `accepted`).
    public func requestFriend(_ handle: String, from identity: Identity) async throws(ChatError) -> FriendStatus {
        try requireAccount(identity)
        let target = try await account(handle: handle)
        guard target.id != identity.id else { throw ChatError(.invalidArgument, "You cannot befriend yourself.") }
        guard try await !blockedEitherWay(identity.id, target.id) else {
            throw ChatError(.refused, "This friend request cannot be sent.")
        }
        let existing = try await storage { try await store.friendRequest(between: identity.id, and: target.id) }
        switch existing?.status {
        case .accepted?:
            throw ChatError(.alreadyFriends, "You are already friends with \(target.handle).")
        case .pending? where existing?.from == identity.id:
            return .pending
        case .pending?:
            try await settle(existing!, as: .accepted)
            return .accepted
        case .rejected?, nil:
            let request = FriendRequest(from: identity.id, to: target.id, status: .pending, updatedAt: clock())
            try await storage { try await store.saveFriendRequest(request) }
            sink.publish(.friendRequest(from: identity), to: .user(target.id))
            return .pending
        }
    }

    /// Accepts the pending request from `handle`.
    public func acceptFriend(_ handle: String, by identity: Identity) async throws(ChatError) -> Identity {
        try await answer(handle, by: identity, with: .accepted)
    }

    /// Rejects the pending request from `handle`; it may send a new one later.
    public func rejectFriend(_ handle: String, by identity: Identity) async throws(ChatError) {
        _ = try await answer(handle, by: identity, with: .rejected)
    }

    private func answer(_ handle: String, by identity: Identity, with status: FriendStatus) async throws(ChatError) -> Identity {
        try requireAccount(identity)
        let requester = try await account(handle: handle)
        guard let request = try await storage({ try await store.friendRequest(between: identity.id, and: requester.id) }),
              request.status == .pending, request.to == identity.id
        else { throw ChatError(.noRequest, "\(requester.handle) has no pending request for you.") }
        try await settle(request, as: status)
        return requester.identity
    }

    /// Stores the answer to a request and tells both sides (a rejection only its sender).
    private func settle(_ request: FriendRequest, as status: FriendStatus) async throws(ChatError) {
        let settled = FriendRequest(from: request.from, to: request.to, status: status, updatedAt: clock())
        try await storage { try await store.saveFriendRequest(settled) }
        guard let from = try await storage({ try await store.account(id: request.from) }),
              let to = try await storage({ try await store.account(id: request.to) })
        else { return }
        sink.publish(.friendship(user: to.identity, status: status), to: .user(from.id))
        if status == .accepted { sink.publish(.friendship(user: from.identity, status: status), to: .user(to.id)) }
    }

    /// Blocks `handle`: any friendship or request between the two ends, and the blocked account
    /// can neither request nor message. It is not told.
    public func block(_ handle: String, by identity: Identity) async throws(ChatError) {
        try requireAccount(identity)
        let target = try await account(handle: handle)
        guard target.id != identity.id else { throw ChatError(.invalidArgument, "You cannot block yourself.") }
        try await storage { try await store.block(target.id, by: identity.id) }
        try await storage { try await store.deleteFriendRequest(between: identity.id, and: target.id) }
    }

    /// Lifts a block (a friendship does not come back by itself).
    public func unblock(_ handle: String, by identity: Identity) async throws(ChatError) {
        try requireAccount(identity)
        let target = try await account(handle: handle)
        try await storage { try await store.unblock(target.id, by: identity.id) }
    }

    /// The account's friends, pending requests both ways, and blocks, sorted by name.
    public func friends(of identity: Identity) async throws(ChatError) -> FriendList {
        try requireAccount(identity)
        var list = FriendList()
        for request in try await storage({ try await store.friendRequests(of: identity.id) }) {
            let other = request.from == identity.id ? request.to : request.from
            guard let account = try await storage({ try await store.account(id: other) }) else { continue }
            switch request.status {
            case .accepted: list.friends.append(account.identity)
            case .pending where request.to == identity.id: list.incoming.append(account.identity)
            case .pending: list.outgoing.append(account.identity)
            case .rejected: continue
            }
        }
        for blocked in try await storage({ try await store.blocked(by: identity.id) }) {
            if let account = try await storage({ try await store.account(id: blocked) }) { list.blocked.append(account.identity) }
        }
        let byName: (Identity, Identity) -> Bool = { $0.name.lowercased() < $1.name.lowercased() }
        list.friends.sort(by: byName)
        list.incoming.sort(by: byName)
        list.outgoing.sort(by: byName)
        list.blocked.sort(by: byName)
        return list
    }

    /// The friend with this handle, or a `not_friends` refusal.
    func friend(_ handle: String, of identity: Identity) async throws(ChatError) -> Account {
        try requireAccount(identity)
        let notFriends = ChatError(.notFriends, "You can only write to your friends.")
        guard let other = try? await account(handle: handle) else { throw notFriends }
        let request = try await storage { try await store.friendRequest(between: identity.id, and: other.id) }
        guard request?.status == .accepted, try await !blockedEitherWay(identity.id, other.id) else { throw notFriends }
        return other
    }

    /// Sends a direct message to a friend. Both accounts' connections receive it.
    ///
    /// With `encrypted`, the message is end-to-end encrypted (docs/E2E.md): it has no text of its
    /// own, a `clientID` (the associated data binds it), and a sealed copy for each device of the
    /// friend's that should read it (and of the sender's own, optionally), all of them devices
    /// those accounts published; its `image`, if any, is the encrypted image, whose key travels in
    /// the copies. The server stores and relays all of it unread. Kept `until-delivered`, it
    /// waits until each of the friend's devices that has a copy acknowledged it.
    public func sendDirect(
        _ text: String, image: Data? = nil, encrypted: EncryptedBody? = nil, to handle: String, clientID: String?, from identity: Identity
    ) async throws(ChatError) -> (message: StoredMessage, to: Identity) {
        let other: Account
        let attached: MessageImage?
        var recipientDevices: [String] = []
        if let encrypted {
            guard text.isEmpty else {
                throw ChatError(.invalidArgument, "An encrypted message carries its text inside its sealed copies.")
            }
            guard let clientID, !clientID.isEmpty, clientID.count <= 64 else {
                throw ChatError(.invalidArgument, "An encrypted message needs a clientId of 1 to 64 characters.")
            }
            attached = try image.map { (data) throws(ChatError) in try MessageImage.sealed(data, limit: configuration.maxImageBytes) }
            other = try await friend(handle, of: identity)
            recipientDevices = try await checkSealedCopies(encrypted, from: identity.id, to: other.id)
        } else {
            attached = try image.map { (data) throws(ChatError) in try MessageImage.validated(data, limit: configuration.maxImageBytes) }
            try validate(text: text, clientID: clientID, withImage: attached != nil)
            other = try await friend(handle, of: identity)
        }
        let (stored, inserted) = try await post(
            text, image: attached, encrypted: encrypted, in: .direct(identity.id, other.id), clientID: clientID, from: identity,
            recipients: [other.id], recipientDevices: recipientDevices
        )
        if inserted {
            sink.publish(.direct(stored, to: other.identity), to: .user(other.id))
            sink.publish(.direct(stored, to: other.identity), to: .user(identity.id))
        }
        return (stored, other.identity)
    }

    /// The most bytes of one sealed copy: a text of the longest length, whatever its script,
    /// with an image's key and type (an encrypted image travels once, beside the copies).
    static let maxSealedCopyBytes = 65_536

    /// Checks an encrypted message's copies: from a device of the sender's, each for a distinct
    /// device of the sender's or the recipient's (at least one of the recipient's), of the
    /// right sizes. Returns the recipient's devices that have a copy.
    private func checkSealedCopies(_ body: EncryptedBody, from sender: UserID, to recipient: UserID) async throws(ChatError) -> [String] {
        let mine = Set(try await storage { try await store.devices(of: sender) }.map(\.deviceID))
        let theirs = Set(try await storage { try await store.devices(of: recipient) }.map(\.deviceID))
        guard mine.contains(body.senderDevice) else {
            throw ChatError(.invalidArgument, "senderDevice is not one of your published devices.")
        }
        guard body.copies.contains(where: { theirs.contains($0.device) }) else {
            throw ChatError(.invalidArgument, "An encrypted message needs a copy for at least one of the recipient's devices.")
        }
        guard Set(body.copies.map(\.device)).count == body.copies.count else {
            throw ChatError(.invalidArgument, "Each device gets one copy.")
        }
        for copy in body.copies {
            guard theirs.contains(copy.device) || mine.contains(copy.device) else {
                throw ChatError(.invalidArgument, "\(copy.device) is not a published device of either side.")
            }
            guard copy.ephemeralPublic.count == 32, copy.nonce.count == 12, copy.ciphertext.count >= 16 else {
                throw ChatError(.invalidArgument, "A sealed copy has a 32-byte ephemeralPublic, a 12-byte nonce and a ciphertext of 16 bytes or more.")
            }
            guard copy.ciphertext.count <= Self.maxSealedCopyBytes else {
                throw ChatError(.messageTooLong, "A sealed copy has at most \(Self.maxSealedCopyBytes) bytes.")
            }
        }
        return body.copies.map(\.device).filter { theirs.contains($0) }
    }

    /// A page of the direct conversation with a friend (see ``history(of:before:limit:for:on:)``).
    public func directHistory(
        with handle: String, before: Int64?, limit: Int?, for identity: Identity
    ) async throws(ChatError) -> (messages: [StoredMessage], more: Bool) {
        let limit = try pageLimit(limit)
        let other = try await friend(handle, of: identity)
        let page = try await storage { try await store.messages(in: .direct(identity.id, other.id), before: before, limit: limit + 1) }
        return (Array(page.suffix(limit)), page.count > limit)
    }
}
