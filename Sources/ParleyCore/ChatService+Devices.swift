import Foundation

/// Devices' end-to-end identity keys (docs/E2E.md). The server keeps and hands out public keys
/// only; it cannot tell whether a key is a device's real one, which is what safety numbers are
/// for.
extension ChatService {
    /// The most devices an account may have.
    public static let maxDevices = 10

    /// Publishes the key of one of the account's devices (a new device, or a new key for a device
    /// id it had). Returns the key as stored.
    public func publishDevice(_ deviceID: String, publicKey: Data, by identity: Identity) async throws(ChatError) -> DeviceKey {
        guard identity.isAccount else { throw ChatError(.accountRequired, "Only accounts have devices.") }
        guard (1...64).contains(deviceID.utf8.count),
              deviceID.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
        else { throw ChatError(.invalidArgument, "deviceId has 1 to 64 letters, digits, _ or -.") }
        guard publicKey.count == 32 else { throw ChatError(.invalidArgument, "publicKey is a raw X25519 public key of 32 bytes.") }
        let devices = try await storage { try await store.devices(of: identity.id) }
        guard devices.contains(where: { $0.deviceID == deviceID }) || devices.count < Self.maxDevices else {
            throw ChatError(.invalidArgument, "An account has at most \(Self.maxDevices) devices.")
        }
        let device = DeviceKey(user: identity.id, deviceID: deviceID, publicKey: publicKey, publishedAt: clock())
        try await storage { try await store.putDevice(device) }
        return device
    }

    /// The devices of the account `handle`: the caller's own, or a friend's.
    public func devices(of handle: String, for identity: Identity) async throws(ChatError) -> (user: Identity, devices: [DeviceKey]) {
        guard identity.isAccount else { throw ChatError(.accountRequired, "Only accounts have devices.") }
        let owner = try await account(handle: handle)
        let user = owner.id == identity.id ? owner : try await friend(handle, of: identity)
        return (user.identity, try await storage { try await store.devices(of: user.id) })
    }
}
