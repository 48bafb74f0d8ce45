import Crypto
import Foundation
import ParleyE2E
import Testing

/// One object of docs/e2e-test-vectors.json (computed by scripts/e2e-vectors with Python's
/// `cryptography`, not with this code).
struct Vector: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var senderIdentityPrivate: String, senderIdentityPublic: String
    var recipientIdentityPrivate: String, recipientIdentityPublic: String
    var ephemeralPrivate: String, ephemeralPublic: String
    var nonce: String, aad: String, plaintext: String, ciphertext: String
    var senderUser: String, senderDevice: String, recipientUser: String, recipientDevice: String, messageId: String
    var safetyNumber: String

    var testDescription: String { name }

    static let all: [Vector] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/e2e-test-vectors.json")
        return (try? JSONDecoder().decode([Vector].self, from: Data(contentsOf: url))) ?? []
    }()
}

/// One object of docs/e2e-image-test-vectors.json (also computed by scripts/e2e-vectors).
struct ImageVector: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var key: String, nonce: String, aad: String, plaintext: String, ciphertext: String
    var senderUser: String, messageId: String

    var testDescription: String { name }

    static let all: [ImageVector] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/e2e-image-test-vectors.json")
        return (try? JSONDecoder().decode([ImageVector].self, from: Data(contentsOf: url))) ?? []
    }()
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes)
    }
}

@Suite("End-to-end encryption")
struct E2ETests {
    @Test func theVectorsAreThere() {
        #expect(Vector.all.count >= 3)
        #expect(Vector.all.contains { $0.plaintext.isEmpty })
        #expect(Vector.all.contains { $0.plaintext.count / 2 >= 4096 })
    }

    @Test(arguments: Vector.all)
    func sealingReproducesEachVectorAndOpeningReadsIt(vector: Vector) throws {
        let sender = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(hex: vector.senderIdentityPrivate))
        let recipient = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(hex: vector.recipientIdentityPrivate))
        let ephemeral = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(hex: vector.ephemeralPrivate))
        #expect(sender.publicKey.rawRepresentation == Data(hex: vector.senderIdentityPublic))
        #expect(recipient.publicKey.rawRepresentation == Data(hex: vector.recipientIdentityPublic))
        #expect(ephemeral.publicKey.rawRepresentation == Data(hex: vector.ephemeralPublic))
        let aad = E2E.associatedData(
            senderUser: vector.senderUser, senderDevice: vector.senderDevice, recipientUser: vector.recipientUser,
            recipientDevice: vector.recipientDevice, messageID: vector.messageId
        )
        #expect(aad == Data(hex: vector.aad))
        let sealed = try E2E.seal(
            Data(hex: vector.plaintext), aad: aad, sender: sender, recipient: recipient.publicKey, ephemeral: ephemeral,
            nonce: Data(hex: vector.nonce)
        )
        #expect(sealed == E2E.Sealed(ephemeralPublic: Data(hex: vector.ephemeralPublic), nonce: Data(hex: vector.nonce), ciphertext: Data(hex: vector.ciphertext)))
        #expect(try E2E.open(sealed, aad: aad, recipient: recipient, sender: sender.publicKey) == Data(hex: vector.plaintext))
        #expect(E2E.safetyNumber(sender.publicKey, recipient.publicKey) == vector.safetyNumber)
        #expect(E2E.safetyNumber(recipient.publicKey, sender.publicKey) == vector.safetyNumber)
    }

    /// Any changed byte (ciphertext, tag, nonce, ephemeral key, associated data) or a wrong key
    /// fails to open, visibly.
    @Test func anyChangeFailsToOpen() throws {
        let ada = Curve25519.KeyAgreement.PrivateKey(), bob = Curve25519.KeyAgreement.PrivateKey()
        let aad = E2E.associatedData(senderUser: "a_ada", senderDevice: "d1", recipientUser: "a_bob", recipientDevice: "d2", messageID: "m1")
        let sealed = try E2E.seal(Data("meet at noon".utf8), aad: aad, sender: ada, recipient: bob.publicKey)
        #expect(try E2E.open(sealed, aad: aad, recipient: bob, sender: ada.publicKey) == Data("meet at noon".utf8))
        for index in [0, sealed.ciphertext.count - 1] {
            var tampered = sealed
            tampered.ciphertext[index] ^= 0x01
            #expect(throws: E2E.Failure.authenticationFailed) { try E2E.open(tampered, aad: aad, recipient: bob, sender: ada.publicKey) }
        }
        var nonce = sealed
        nonce.nonce[0] ^= 0x80
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.open(nonce, aad: aad, recipient: bob, sender: ada.publicKey) }
        var ephemeral = sealed
        ephemeral.ephemeralPublic = Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.open(ephemeral, aad: aad, recipient: bob, sender: ada.publicKey) }
        let otherMessage = E2E.associatedData(senderUser: "a_ada", senderDevice: "d1", recipientUser: "a_bob", recipientDevice: "d2", messageID: "m2")
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.open(sealed, aad: otherMessage, recipient: bob, sender: ada.publicKey) }
        let mallory = Curve25519.KeyAgreement.PrivateKey()
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.open(sealed, aad: aad, recipient: bob, sender: mallory.publicKey) }
        var short = sealed
        short.ciphertext = Data(count: 15)
        #expect(throws: E2E.Failure.malformed) { try E2E.open(short, aad: aad, recipient: bob, sender: ada.publicKey) }
    }

    /// Two seals of one message differ (fresh ephemeral key and nonce each time).
    @Test func eachSealIsFresh() throws {
        let ada = Curve25519.KeyAgreement.PrivateKey(), bob = Curve25519.KeyAgreement.PrivateKey()
        let one = try E2E.seal(Data("same".utf8), aad: Data(), sender: ada, recipient: bob.publicKey)
        let two = try E2E.seal(Data("same".utf8), aad: Data(), sender: ada, recipient: bob.publicKey)
        #expect(one.ephemeralPublic != two.ephemeralPublic && one.nonce != two.nonce && one.ciphertext != two.ciphertext)
    }

    @Test func theImageVectorsAreThere() {
        #expect(ImageVector.all.count >= 3)
    }

    @Test(arguments: ImageVector.all)
    func sealingAnImageReproducesEachVectorAndOpeningReadsIt(vector: ImageVector) throws {
        #expect(E2E.imageAssociatedData(senderUser: vector.senderUser, messageID: vector.messageId) == Data(hex: vector.aad))
        let sealed = try E2E.sealImage(
            Data(hex: vector.plaintext), senderUser: vector.senderUser, messageID: vector.messageId,
            key: SymmetricKey(data: Data(hex: vector.key)), nonce: Data(hex: vector.nonce)
        )
        #expect(sealed == E2E.SealedImage(key: Data(hex: vector.key), nonce: Data(hex: vector.nonce), ciphertext: Data(hex: vector.ciphertext)))
        #expect(try E2E.openImage(sealed, senderUser: vector.senderUser, messageID: vector.messageId) == Data(hex: vector.plaintext))
    }

    /// An image opens only with its key, nonce, sender and message id, and unchanged.
    @Test func aChangedImageFailsToOpen() throws {
        let image = Data((0..<2000).map { UInt8($0 % 256) })
        let sealed = try E2E.sealImage(image, senderUser: "a_ada", messageID: "m1")
        #expect(sealed.key.count == 32 && sealed.nonce.count == 12 && sealed.ciphertext.count == image.count + 16)
        #expect(try E2E.openImage(sealed, senderUser: "a_ada", messageID: "m1") == image)
        var tampered = sealed
        tampered.ciphertext[100] ^= 0x01
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.openImage(tampered, senderUser: "a_ada", messageID: "m1") }
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.openImage(sealed, senderUser: "a_ada", messageID: "m2") }
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.openImage(sealed, senderUser: "a_bob", messageID: "m1") }
        var otherKey = sealed
        otherKey.key = Data(repeating: 7, count: 32)
        #expect(throws: E2E.Failure.authenticationFailed) { try E2E.openImage(otherKey, senderUser: "a_ada", messageID: "m1") }
        var short = sealed
        short.key = Data(count: 16)
        #expect(throws: E2E.Failure.malformed) { try E2E.openImage(short, senderUser: "a_ada", messageID: "m1") }
        let again = try E2E.sealImage(image, senderUser: "a_ada", messageID: "m1")
        #expect(again.key != sealed.key && again.ciphertext != sealed.ciphertext)
    }
}
