import Foundation
import ParleyCore
import Testing

@Suite("Devices' end-to-end keys")
struct DeviceTests {
    @Test(arguments: StoreKind.allCases)
    func aStoreKeepsEachAccountsDevicesInOrderAndReplacesAChangedKey(kind: StoreKind) async throws {
        let store = try await kind.make()
        let ada = UserID(rawValue: "a_ada"), bob = UserID(rawValue: "a_bob")
        let laptop = DeviceKey(user: ada, deviceID: "laptop", publicKey: Data(repeating: 1, count: 32), publishedAt: 10)
        let phone = DeviceKey(user: ada, deviceID: "phone", publicKey: Data(repeating: 2, count: 32), publishedAt: 10)
        try await store.putDevice(laptop)
        try await store.putDevice(phone)
        try await store.putDevice(DeviceKey(user: bob, deviceID: "laptop", publicKey: Data(repeating: 3, count: 32), publishedAt: 11))
        #expect(try await store.devices(of: ada) == [laptop, phone])
        // A new key for the laptop: replaced in place.
        let rekeyed = DeviceKey(user: ada, deviceID: "laptop", publicKey: Data(repeating: 9, count: 32), publishedAt: 20)
        try await store.putDevice(rekeyed)
        #expect(try await store.devices(of: ada) == [rekeyed, phone])
        #expect(try await store.devices(of: bob).map(\.publicKey) == [Data(repeating: 3, count: 32)])
        #expect(try await store.devices(of: UserID(rawValue: "a_nobody")).isEmpty)
    }

    @Test func accountsPublishKeysThatTheirFriendsAndOnlyTheyCanRead() async throws {
        let (service, _, _) = try await makeService()
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        let eve = try await service.register(handle: "eve", password: "long enough").identity
        let key = Data((0..<32).map { UInt8($0) })
        let published = try await service.publishDevice("ada-laptop_1", publicKey: key, by: ada)
        #expect(published.user == ada.id && published.publicKey == key)
        #expect(try await service.devices(of: "ada", for: ada).devices == [published])

        // Bad input is refused with a reason.
        for (id, bytes) in [("", key), (String(repeating: "x", count: 65), key), ("has space", key), ("é", key), ("ok", Data(count: 31))] {
            let refused = await #expect(throws: ChatError.self) { try await service.publishDevice(id, publicKey: bytes, by: ada) }
            #expect(refused?.code == .invalidArgument)
        }
        let guest = try service.guest(name: "gus")
        let noAccount = await #expect(throws: ChatError.self) { try await service.publishDevice("g", publicKey: key, by: guest) }
        #expect(noAccount?.code == .accountRequired)

        // Only friends see each other's devices.
        let stranger = await #expect(throws: ChatError.self) { try await service.devices(of: "ada", for: eve) }
        #expect(stranger?.code == .notFriends)
        _ = try await service.requestFriend("ada", from: bob)
        _ = try await service.acceptFriend("bob", by: ada)
        let seen = try await service.devices(of: "ADA", for: bob)
        #expect(seen.user == ada && seen.devices == [published])
        let unknown = await #expect(throws: ChatError.self) { try await service.devices(of: "nobody", for: bob) }
        #expect(unknown?.code == .unknownUser)
    }

    @Test func anAccountHasAtMostTenDevicesButMayRekeyThem() async throws {
        let (service, _, _) = try await makeService()
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        for index in 0..<ChatService.maxDevices {
            _ = try await service.publishDevice("d\(index)", publicKey: Data(repeating: UInt8(index), count: 32), by: ada)
        }
        let full = await #expect(throws: ChatError.self) { try await service.publishDevice("one-more", publicKey: Data(count: 32), by: ada) }
        #expect(full?.code == .invalidArgument)
        _ = try await service.publishDevice("d3", publicKey: Data(repeating: 99, count: 32), by: ada)
        let devices = try await service.devices(of: "ada", for: ada).devices
        #expect(devices.count == ChatService.maxDevices && devices[3].publicKey == Data(repeating: 99, count: 32))
    }
}

@Suite("End-to-end encrypted direct messages")
struct EncryptedMessageTests {
    static func copy(_ device: String, _ byte: UInt8 = 7) -> SealedCopy {
        SealedCopy(device: device, ephemeralPublic: Data(repeating: byte, count: 32), nonce: Data(repeating: byte, count: 12),
                   ciphertext: Data(repeating: byte, count: 40))
    }

    /// ada and bob, friends, with devices ada-1, ada-2 and bob-1.
    static func friendsWithDevices(_ kind: StoreKind = .memory) async throws -> (ChatService, RecordingSink, Identity, Identity) {
        let (service, sink, _) = try await makeService(kind)
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let bob = try await service.register(handle: "bob", password: "long enough").identity
        _ = try await service.requestFriend("bob", from: ada)
        _ = try await service.acceptFriend("ada", by: bob)
        _ = try await service.publishDevice("ada-1", publicKey: Data(repeating: 1, count: 32), by: ada)
        _ = try await service.publishDevice("ada-2", publicKey: Data(repeating: 2, count: 32), by: ada)
        _ = try await service.publishDevice("bob-1", publicKey: Data(repeating: 3, count: 32), by: bob)
        return (service, sink, ada, bob)
    }

    @Test(arguments: StoreKind.allCases)
    func theServerStoresAndRelaysSealedCopiesUnread(kind: StoreKind) async throws {
        let (service, sink, ada, bob) = try await Self.friendsWithDevices(kind)
        let body = EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1", 1), Self.copy("ada-2", 2)])
        sink.clear()
        let (stored, _) = try await service.sendDirect("", encrypted: body, to: "bob", clientID: "m-1", from: ada)
        #expect(stored.encrypted == body && stored.text.isEmpty)
        #expect(sink.published.contains(.direct(stored, to: bob)))
        let history = try await service.directHistory(with: "ada", before: nil, limit: nil, for: bob).messages
        #expect(history.map(\.encrypted) == [body])
        // A retry with the same client id is the same message.
        #expect(try await service.sendDirect("", encrypted: body, to: "bob", clientID: "m-1", from: ada).message.id == stored.id)
    }

    @Test func badlyFormedOrMisaddressedCopiesAreRefused() async throws {
        let (service, _, ada, _) = try await Self.friendsWithDevices()
        let good = EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1")])
        var shortNonce = Self.copy("bob-1")
        shortNonce.nonce = Data(count: 11)
        let cases: [(String, EncryptedBody, String?)] = [
            ("text beside the copies", good, "m"),
            ("no client id", good, nil),
            ("unpublished sender device", EncryptedBody(senderDevice: "ada-9", copies: [Self.copy("bob-1")]), "m"),
            ("no copy for the recipient", EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("ada-1")]), "m"),
            ("a stranger's device", EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1"), Self.copy("eve-1")]), "m"),
            ("two copies for one device", EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1"), Self.copy("bob-1")]), "m"),
            ("a short nonce", EncryptedBody(senderDevice: "ada-1", copies: [shortNonce]), "m"),
        ]
        for (label, body, clientID) in cases {
            let text = label == "text beside the copies" ? "plain" : ""
            let refused = await #expect(throws: ChatError.self, "\(label)") {
                try await service.sendDirect(text, encrypted: body, to: "bob", clientID: clientID, from: ada)
            }
            #expect(refused?.code == .invalidArgument, "\(label)")
        }
        #expect(try await service.sendDirect("", encrypted: good, to: "bob", clientID: "m", from: ada).message.encrypted == good)
    }

    /// Under `until-delivered`, an encrypted message waits for each of the recipient's devices
    /// that has a copy, not for the account's first acknowledgement; its sender's devices and an
    /// acknowledgement that names no device do not count.
    @Test(arguments: StoreKind.allCases)
    func untilDeliveredWaitsForEachRecipientDevice(kind: StoreKind) async throws {
        let (service, sink, ada, bob) = try await Self.friendsWithDevices(kind)
        _ = try await service.publishDevice("bob-2", publicKey: Data(repeating: 4, count: 32), by: bob)
        _ = try await service.publishDevice("bob-3", publicKey: Data(repeating: 5, count: 32), by: bob)
        try await service.setRetention(.untilDelivered, withFriend: "bob", by: ada)
        // bob-3 gets no copy (say, it was added after the sender looked): it is not waited for.
        let body = EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1"), Self.copy("bob-2"), Self.copy("ada-2")])
        let (stored, _) = try await service.sendDirect("", encrypted: body, to: "bob", clientID: "m-1", from: ada)
        let plain = try await service.sendDirect("plain", to: "bob", clientID: "m-2", from: ada).message
        func kept() async throws -> [Int64] {
            try await service.directHistory(with: "ada", before: nil, limit: nil, for: bob).messages.map(\.id)
        }
        func receipts() -> Int {
            sink.published.filter { if case .receipt(let id, _, _, .delivered) = $0 { id == stored.id } else { false } }.count
        }
        #expect(try await kept() == [stored.id, plain.id])

        // No device named, the sender's device, a device without a copy: nothing changes.
        try await service.delivered([stored.id, plain.id], by: bob)
        #expect(try await kept() == [stored.id])
        try await service.delivered([stored.id], by: ada, device: "ada-2")
        try await service.delivered([stored.id], by: bob, device: "bob-3")
        #expect(try await kept() == [stored.id] && receipts() == 0)

        try await service.delivered([stored.id], by: bob, device: "bob-1")
        #expect(try await kept() == [stored.id] && receipts() == 1)
        try await service.delivered([stored.id], by: bob, device: "bob-1")
        #expect(try await kept() == [stored.id] && receipts() == 1)
        #expect(await replayed(service, sink, bob) == [stored.id])

        // Read counts as delivered (its receipt says read).
        try await service.read([stored.id], by: bob, device: "bob-2", on: .c("bob-phone"))
        #expect(try await kept().isEmpty && receipts() == 1)

        let bad = await #expect(throws: ChatError.self) {
            try await service.delivered([stored.id], by: bob, device: String(repeating: "d", count: 65))
        }
        #expect(bad?.code == .invalidArgument)
    }

    /// With `keep`, an encrypted message leaves the inbox on the account's first
    /// acknowledgement, as any message does (its history stays for every device).
    @Test func keptEncryptedMessagesLeaveTheInboxOnTheFirstAcknowledgement() async throws {
        let (service, sink, ada, bob) = try await Self.friendsWithDevices()
        _ = try await service.publishDevice("bob-2", publicKey: Data(repeating: 4, count: 32), by: bob)
        let body = EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1"), Self.copy("bob-2")])
        let (stored, _) = try await service.sendDirect("", encrypted: body, to: "bob", clientID: "m-1", from: ada)
        #expect(await replayed(service, sink, bob) == [stored.id])
        try await service.delivered([stored.id], by: bob, device: "bob-1")
        #expect(await replayed(service, sink, bob).isEmpty)
        #expect(try await service.directHistory(with: "ada", before: nil, limit: nil, for: bob).messages.map(\.id) == [stored.id])
    }

    /// An encrypted message's image is the encrypted bytes: stored and handed out unread, of
    /// no image type, within an image's limit and its tag.
    @Test(arguments: StoreKind.allCases)
    func anEncryptedImageIsKeptUnread(kind: StoreKind) async throws {
        let (service, sink, ada, bob) = try await Self.friendsWithDevices(kind)
        let body = EncryptedBody(senderDevice: "ada-1", copies: [Self.copy("bob-1")])
        let sealed = Data((0..<5000).map { UInt8(($0 * 7) % 256) })
        let (stored, _) = try await service.sendDirect("", image: sealed, encrypted: body, to: "bob", clientID: "m-1", from: ada)
        #expect(stored.image?.type == MessageImage.sealedType && stored.image?.size == sealed.count)
        #expect(sink.published.contains { if case .direct(let message, _) = $0 { message.id == stored.id } else { false } })
        let fetched = try await service.image(ofMessage: stored.id, for: bob, on: .c("bob-1"))
        #expect(fetched.data == sealed && fetched.type == MessageImage.sealedType)

        let limit = ChatConfiguration().maxImageBytes
        let tooLarge = await #expect(throws: ChatError.self) {
            try await service.sendDirect("", image: Data(count: limit + 17), encrypted: body, to: "bob", clientID: "m-2", from: ada)
        }
        #expect(tooLarge?.code == .imageTooLarge)
        _ = try await service.sendDirect("", image: Data(count: limit + 16), encrypted: body, to: "bob", clientID: "m-3", from: ada)
        let onlyTag = await #expect(throws: ChatError.self) {
            try await service.sendDirect("", image: Data(count: 16), encrypted: body, to: "bob", clientID: "m-4", from: ada)
        }
        #expect(onlyTag?.code == .unsupportedImage)
        // Without encryption, an image is still checked to be one.
        let notAnImage = await #expect(throws: ChatError.self) {
            try await service.sendDirect("", image: sealed, to: "bob", clientID: "m-5", from: ada)
        }
        #expect(notAnImage?.code == .unsupportedImage)
    }
}

/// The ids of the messages a new connection of `identity` is handed from its inbox.
func replayed(_ service: ChatService, _ sink: RecordingSink, _ identity: Identity) async -> [Int64] {
    let connection = ConnectionID(rawValue: "replay-\(UUID().uuidString)")
    await service.connected(identity, on: connection)
    return sink.events.withLock { events in
        events.compactMap { event, audience in
            guard audience == .connection(connection), case .direct(let message, _) = event else { return nil }
            return message.id
        }
    }
}
