import Crypto
import Foundation

/// Parley's end-to-end encryption of direct messages (docs/E2E.md): each message is sealed once
/// per recipient device with a fresh ephemeral X25519 key, a key derived with HKDF-SHA256 from
/// two Diffie-Hellman results, and AES-256-GCM. The server only ever relays what ``seal(_:aad:sender:recipient:ephemeral:nonce:)``
/// returns.
public enum E2E {
    /// The version string that starts the HKDF info and the associated data.
    public static let version = Data("parley-e2e-v1".utf8)

    /// A message sealed for one recipient device: what travels.
    public struct Sealed: Sendable, Hashable {
        /// The sender's ephemeral public key, 32 bytes.
        public var ephemeralPublic: Data
        /// The AES-GCM nonce, 12 bytes.
        public var nonce: Data
        /// The ciphertext followed by the 16-byte tag.
        public var ciphertext: Data

        public init(ephemeralPublic: Data, nonce: Data, ciphertext: Data) {
            self.ephemeralPublic = ephemeralPublic
            self.nonce = nonce
            self.ciphertext = ciphertext
        }
    }

    /// Why a sealed message could not be opened.
    public enum Failure: Error, Equatable, Sendable {
        /// A key, nonce or ciphertext of the wrong length.
        case malformed
        /// The ciphertext, its tag or the associated data were changed, or the keys are not the
        /// ones it was sealed with.
        case authenticationFailed
    }

    /// The associated data of a message: the version, then the sender's user id and device id,
    /// the recipient's user id and device id, and the message's client id, each as its UTF-8
    /// length (2 bytes, big-endian) and its UTF-8 bytes.
    public static func associatedData(
        senderUser: String, senderDevice: String, recipientUser: String, recipientDevice: String, messageID: String
    ) -> Data {
        fields([senderUser, senderDevice, recipientUser, recipientDevice, messageID], after: version)
    }

    /// Seals `plaintext` from `sender` to one device's identity key `recipient`. The ephemeral
    /// key and the nonce are fresh unless given (tests give them to reproduce the vectors).
    public static func seal(
        _ plaintext: Data, aad: Data, sender: Curve25519.KeyAgreement.PrivateKey, recipient: Curve25519.KeyAgreement.PublicKey,
        ephemeral: Curve25519.KeyAgreement.PrivateKey = .init(), nonce: Data? = nil
    ) throws -> Sealed {
        let key = try messageKey(
            dh1: ephemeral.sharedSecretFromKeyAgreement(with: recipient),
            dh2: sender.sharedSecretFromKeyAgreement(with: recipient),
            ephemeralPublic: ephemeral.publicKey.rawRepresentation, senderPublic: sender.publicKey.rawRepresentation,
            recipientPublic: recipient.rawRepresentation
        )
        let box = try gcmSeal(plaintext, key: key, nonce: nonce, aad: aad)
        return Sealed(ephemeralPublic: ephemeral.publicKey.rawRepresentation, nonce: box.nonce, ciphertext: box.ciphertext)
    }

    /// Opens what `sender` (by its identity public key) sealed for `recipient`'s device.
    public static func open(
        _ sealed: Sealed, aad: Data, recipient: Curve25519.KeyAgreement.PrivateKey, sender: Curve25519.KeyAgreement.PublicKey
    ) throws(Failure) -> Data {
        guard sealed.nonce.count == 12, sealed.ciphertext.count >= 16,
              let ephemeral = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: sealed.ephemeralPublic)
        else { throw .malformed }
        do {
            let key = try messageKey(
                dh1: recipient.sharedSecretFromKeyAgreement(with: ephemeral),
                dh2: recipient.sharedSecretFromKeyAgreement(with: sender),
                ephemeralPublic: sealed.ephemeralPublic, senderPublic: sender.rawRepresentation,
                recipientPublic: recipient.publicKey.rawRepresentation
            )
            return try gcmOpen(sealed.ciphertext, key: key, nonce: sealed.nonce, aad: aad)
        } catch {
            throw .authenticationFailed
        }
    }

    /// AES-256-GCM under `key`, with `nonce` (fresh when `nil`): the nonce used, and the
    /// ciphertext followed by its 16-byte tag, as fresh zero-based bytes (the box's parts are
    /// slices of its combined form).
    static func gcmSeal(_ plaintext: Data, key: SymmetricKey, nonce: Data?, aad: Data) throws -> (nonce: Data, ciphertext: Data) {
        let gcmNonce = try nonce.map { try AES.GCM.Nonce(data: $0) } ?? AES.GCM.Nonce()
        let box = try AES.GCM.seal(plaintext, using: key, nonce: gcmNonce, authenticating: aad)
        return (Data(Array(gcmNonce)), Data(Array(box.ciphertext) + Array(box.tag)))
    }

    /// Opens what ``gcmSeal(_:key:nonce:aad:)`` made; throws if anything was changed.
    static func gcmOpen(_ ciphertext: Data, key: SymmetricKey, nonce: Data, aad: Data) throws -> Data {
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16))
        return try AES.GCM.open(box, using: key, authenticating: aad)
    }

    /// An image encrypted once for every device: the encrypted bytes travel beside the message's
    /// sealed copies, and the key and nonce inside each of them (docs/E2E.md).
    public struct SealedImage: Sendable, Hashable {
        /// The AES-256 key, 32 random bytes.
        public var key: Data
        /// The AES-GCM nonce, 12 bytes.
        public var nonce: Data
        /// The encrypted image followed by the 16-byte tag.
        public var ciphertext: Data

        public init(key: Data, nonce: Data, ciphertext: Data) {
            self.key = key
            self.nonce = nonce
            self.ciphertext = ciphertext
        }
    }

    /// The version string that starts an image's associated data.
    public static let imageVersion = Data("parley-e2e-image-v1".utf8)

    /// An image's associated data: the image version, then the sender's user id and the
    /// message's client id, each as its UTF-8 length (2 bytes, big-endian) and its UTF-8 bytes.
    public static func imageAssociatedData(senderUser: String, messageID: String) -> Data {
        fields([senderUser, messageID], after: imageVersion)
    }

    /// Encrypts an image under a fresh random key (and nonce, unless given) with AES-256-GCM.
    public static func sealImage(
        _ image: Data, senderUser: String, messageID: String, key: SymmetricKey = .init(size: .bits256), nonce: Data? = nil
    ) throws -> SealedImage {
        let box = try gcmSeal(image, key: key, nonce: nonce, aad: imageAssociatedData(senderUser: senderUser, messageID: messageID))
        return SealedImage(key: key.withUnsafeBytes { Data($0) }, nonce: box.nonce, ciphertext: box.ciphertext)
    }

    /// Decrypts an image with the key and nonce its message's sealed copy carried.
    public static func openImage(_ sealed: SealedImage, senderUser: String, messageID: String) throws(Failure) -> Data {
        guard sealed.key.count == 32, sealed.nonce.count == 12, sealed.ciphertext.count >= 16 else { throw .malformed }
        do {
            return try gcmOpen(
                sealed.ciphertext, key: SymmetricKey(data: sealed.key), nonce: sealed.nonce,
                aad: imageAssociatedData(senderUser: senderUser, messageID: messageID)
            )
        } catch {
            throw .authenticationFailed
        }
    }

    /// `prefix`, then each field as its UTF-8 length (2 bytes, big-endian) and its UTF-8 bytes.
    static func fields(_ fields: [String], after prefix: Data) -> Data {
        var out = prefix
        for field in fields {
            let bytes = Data(field.utf8)
            precondition(bytes.count <= Int(UInt16.max), "an associated-data field is at most 65,535 bytes")
            out.append(UInt8(bytes.count >> 8))
            out.append(UInt8(bytes.count & 0xFF))
            out.append(bytes)
        }
        return out
    }

    /// HKDF-SHA256 of `dh1 ‖ dh2`, no salt (RFC 5869's zeros), info = version ‖ ephemeral public
    /// ‖ sender identity public ‖ recipient identity public; 32 bytes.
    static func messageKey(
        dh1: SharedSecret, dh2: SharedSecret, ephemeralPublic: Data, senderPublic: Data, recipientPublic: Data
    ) -> SymmetricKey {
        var input = Data()
        dh1.withUnsafeBytes { input.append(contentsOf: $0) }
        dh2.withUnsafeBytes { input.append(contentsOf: $0) }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: input), salt: Data(), info: version + ephemeralPublic + senderPublic + recipientPublic,
            outputByteCount: 32
        )
    }

    /// The safety number of two identity keys: the same whichever side computes it. SHA-512 of
    /// `"parley-safety-v1"` and the two raw public keys in byte order, of which the first 30
    /// bytes make twelve groups of five digits (each group a 5-byte big-endian number modulo
    /// 100,000).
    public static func safetyNumber(_ a: Curve25519.KeyAgreement.PublicKey, _ b: Curve25519.KeyAgreement.PublicKey) -> String {
        let (x, y) = (a.rawRepresentation, b.rawRepresentation)
        let (low, high) = x.lexicographicallyPrecedes(y) ? (x, y) : (y, x)
        let digest = Array(SHA512.hash(data: Data("parley-safety-v1".utf8) + low + high))
        return (0..<12).map { group -> String in
            let value = digest[group * 5..<group * 5 + 5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % 100_000
            let digits = String(value)
            return String(repeating: "0", count: 5 - digits.count) + digits
        }.joined(separator: " ")
    }
}
