import Crypto
import CryptoExtras
import Foundation

/// Random tokens, and the one-way hash under which the store keeps them.
public enum Token {
    /// `bytes` random bytes as URL-safe base64 without padding. The bytes come eight at a
    /// time from the system's secure generator (a system call each), not one by one: a guest
    /// id is made for every connection.
    public static func random(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        var data = Data(capacity: bytes + 7)
        while data.count < bytes {
            withUnsafeBytes(of: generator.next()) { data.append(contentsOf: $0) }
        }
        let base64 = data.prefix(bytes).base64EncodedString().utf8.compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            case UInt8(ascii: "="): nil
            default: byte
            }
        }
        return String(decoding: base64, as: UTF8.self)
    }

    /// The SHA-256 of a token, hex: what the store keeps, so that a leaked database does not
    /// leak working tokens.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Salted scrypt password hashes, encoded as `scrypt$N$r$p$salt$hash` (base64 parts).
public struct PasswordHasher: Sendable {
    /// scrypt's CPU/memory cost N (a power of two). Default 2^15 (32 MiB with r = 8).
    public var cost: Int
    /// scrypt's block size r. Default 8.
    public var blockSize: Int
    /// scrypt's parallelism p. Default 1.
    public var parallelism: Int

    public init(cost: Int = 1 << 15, blockSize: Int = 8, parallelism: Int = 1) {
        self.cost = cost
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    /// A cheap hasher for tests only.
    public static let forTesting = PasswordHasher(cost: 1 << 10, blockSize: 8, parallelism: 1)

    /// Hashes `password` with a new random salt.
    public func hash(_ password: String) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = Data((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let key = try derive(password, salt: salt, cost: cost, blockSize: blockSize, parallelism: parallelism)
        return "scrypt$\(cost)$\(blockSize)$\(parallelism)$\(salt.base64EncodedString())$\(key.base64EncodedString())"
    }

    /// Whether `password` matches `encoded`, compared in constant time.
    public func verify(_ password: String, against encoded: String) -> Bool {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              let salt = Data(base64Encoded: String(parts[4])), let expected = Data(base64Encoded: String(parts[5])),
              let actual = try? derive(password, salt: salt, cost: n, blockSize: r, parallelism: p)
        else { return false }
        guard actual.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(actual, expected) { difference |= a ^ b }
        return difference == 0
    }

    private func derive(_ password: String, salt: Data, cost: Int, blockSize: Int, parallelism: Int) throws -> Data {
        let key = try KDF.Scrypt.deriveKey(
            from: Data(password.utf8), salt: salt, outputByteCount: 32,
            rounds: cost, blockSize: blockSize, parallelism: parallelism, maxMemory: 256 << 20
        )
        return key.withUnsafeBytes { Data($0) }
    }
}
