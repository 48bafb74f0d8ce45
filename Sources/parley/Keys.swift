import Crypto
import Foundation
import ParleyE2E
import SocketIO
import Synchronization

/// This installation's end-to-end identity (docs/E2E.md): a device id and an X25519 private key
/// in a file only its owner may read, made on first use.
struct DeviceIdentity: Sendable {
    let deviceID: String
    let key: Curve25519.KeyAgreement.PrivateKey

    /// The identity in `path`, or a new one written there (mode 0600).
    static func load(path: String) throws -> DeviceIdentity {
        if let data = FileManager.default.contents(atPath: path),
           let object = (try? JSONValue(parsing: String(decoding: data, as: UTF8.self)))?.objectValue,
           let id = object["deviceId"]?.stringValue, let encoded = object["privateKey"]?.stringValue,
           let raw = Data(base64Encoded: encoded), let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw) {
            return DeviceIdentity(deviceID: id, key: key)
        }
        let identity = DeviceIdentity(deviceID: "term-" + UUID().uuidString.prefix(8).lowercased(), key: .init())
        let file: JSONValue = ["deviceId": .string(identity.deviceID), "privateKey": .string(identity.key.rawRepresentation.base64EncodedString())]
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(file.json.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return identity
    }
}

/// The keys this installation has seen for other accounts' devices (trust on first use), with
/// what the user confirmed: kept in a file beside the identity.
final class KnownKeys: Sendable {
    struct Entry: Codable, Sendable {
        var key: Data
        var verified: Bool
    }

    private let path: String
    private let entries: Mutex<[String: [String: Entry]]>

    init(path: String) {
        self.path = path
        let stored = FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode([String: [String: Entry]].self, from: $0) }
        entries = Mutex(stored ?? [:])
    }

    /// The devices of `user` whose key differs from the one seen before.
    func changed(_ user: String, _ devices: [(id: String, key: Data)]) -> [String] {
        entries.withLock { entries in
            devices.filter { device in entries[user]?[device.id].map { $0.key != device.key } ?? false }.map(\.id)
        }
    }

    /// Records the keys as seen (and confirmed, for changed ones); new devices are trusted on first use.
    func accept(_ user: String, _ devices: [(id: String, key: Data)], verified: Bool? = nil) {
        entries.withLock { entries in
            for device in devices {
                let wasVerified = entries[user]?[device.id].map { $0.key == device.key && $0.verified } ?? false
                entries[user, default: [:]][device.id] = Entry(key: device.key, verified: verified ?? wasVerified)
            }
        }
        save()
    }

    func isVerified(_ user: String, _ device: String) -> Bool {
        entries.withLock { $0[user]?[device]?.verified ?? false }
    }

    private func save() {
        guard let data = try? JSONEncoder().encode(entries.withLock { $0 }) else { return }
        _ = FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
    }
}
