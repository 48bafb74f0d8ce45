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
