import Crypto
import Foundation
import ParleyE2E
import SocketIO
import SocketIOClient

/// What `parley chat` needs for end-to-end encrypted direct messages: this device's identity,
/// the keys seen for other devices, and who is signed in.
struct E2EContext: Sendable {
    let device: DeviceIdentity
    let known: KnownKeys
    let userID: String
    let handle: String
}

/// What opens an encrypted image: the key and nonce its message's sealed copy carried.
struct SealedImageKey: Sendable {
    let key: Data
    let nonce: Data
    let senderUser: String
    let messageID: String

    /// The image, or `nil` if the encrypted bytes were changed.
    func open(_ ciphertext: Data) -> Data? {
        try? E2E.openImage(.init(key: key, nonce: nonce, ciphertext: ciphertext), senderUser: senderUser, messageID: messageID)
    }
}

/// A device as `device:list` gives it.
struct PublishedDevice: Sendable {
    let id: String
    let key: Data
}

extension ChatSession {
    /// Publishes this device's key.
    func publishDevice(_ e2e: E2EContext) async -> Bool {
        await command("device:publish", [
            "deviceId": .string(e2e.device.deviceID), "publicKey": .binary(.init(bytes: e2e.device.key.publicKey.rawRepresentation)),
        ]) != nil
    }

    /// The devices of `handle`, and its user id.
    func devices(of handle: String) async -> (user: String, devices: [PublishedDevice])? {
        guard let answer = await command("device:list", ["handle": .string(handle)]), let user = answer["user"]?["id"]?.stringValue else {
            return nil
        }
        let devices = (answer["devices"]?.arrayValue ?? []).compactMap { device -> PublishedDevice? in
            guard let id = device["deviceId"]?.stringValue, let key = device["publicKey"]?.binaryValue else { return nil }
            return PublishedDevice(id: id, key: Data(key.readableBytesView))
        }
        return (user, devices)
    }

    /// Sends `text` (and an image, with its media type) to `handle` sealed for each of its
    /// devices and this account's, the image encrypted once under a key sealed with the text.
    /// A key that changed since it was last seen stops the message until `/trust HANDLE`.
    func sendEncrypted(_ text: String, image: (data: Data, type: String)?, to handle: String, _ e2e: E2EContext) async {
        guard let (user, theirs) = await devices(of: handle) else { return }
        guard !theirs.isEmpty else {
            Terminal.say(style.status("* \(handle) has no device keys yet: sent without end-to-end encryption"))
            var payload: JSONObject = ["to": .string(handle), "text": .string(text), "clientId": .string(UUID().uuidString)]
            if let image { payload["image"] = .binary(.init(bytes: image.data)) }
            sayStored(await sendMessage("dm:send", payload))
            return
        }
        let changed = e2e.known.changed(user, theirs.map { ($0.id, $0.key) })
        guard changed.isEmpty else {
            Terminal.say(style.error("""
                ! the key of \(handle)'s device \(changed.joined(separator: ", ")) CHANGED since you last wrote. Not sent.
                ! compare safety numbers with /verify \(handle), then /trust \(handle) to send to the new key.
                """))
            return
        }
        e2e.known.accept(user, theirs.map { ($0.id, $0.key) })
        // This account's devices too, this one included, so that each can read what was sent.
        let mine = (await devices(of: e2e.handle))?.devices ?? []
        let clientID = UUID().uuidString
        var content: JSONObject = ["text": .string(text)]
        var encryptedImage: Data?
        if let image {
            guard let sealed = try? E2E.sealImage(image.data, senderUser: e2e.userID, messageID: clientID) else { return }
            encryptedImage = sealed.ciphertext
            content["image"] = [
                "type": .string(image.type), "key": .string(sealed.key.base64EncodedString()), "nonce": .string(sealed.nonce.base64EncodedString()),
            ]
        }
        let plaintext = Data(JSONValue.object(content).json.utf8)
        var copies: [JSONValue] = []
        for (owner, device) in theirs.map({ (user, $0) }) + mine.map({ (e2e.userID, $0) }) {
            guard let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: device.key) else { continue }
            let aad = E2E.associatedData(
                senderUser: e2e.userID, senderDevice: e2e.device.deviceID, recipientUser: owner, recipientDevice: device.id, messageID: clientID
            )
            guard let sealed = try? E2E.seal(plaintext, aad: aad, sender: e2e.device.key, recipient: key) else { continue }
            copies.append([
                "device": .string(device.id), "ephemeralPublic": .binary(.init(bytes: sealed.ephemeralPublic)),
                "nonce": .binary(.init(bytes: sealed.nonce)), "ciphertext": .binary(.init(bytes: sealed.ciphertext)),
            ])
        }
        let body: JSONValue = ["senderDevice": .string(e2e.device.deviceID), "copies": .array(copies)]
        var payload: JSONObject = ["to": .string(handle), "clientId": .string(clientID), "e2e": body]
        if let encryptedImage { payload["image"] = .binary(.init(bytes: encryptedImage)) }
        sayStored(await sendMessage("dm:send", payload), sealed: true)
    }

    /// The text of an encrypted message for this device, or a plain statement of why not; and
    /// how to show its image, whose key is kept for `/save`.
    func decrypt(_ message: JSONValue, _ e2e: E2EContext) async -> (text: String, image: String?) {
        guard let body = message["e2e"], let senderDevice = body["senderDevice"]?.stringValue,
              let sender = message["from"]?["name"]?.stringValue, let senderID = message["from"]?["id"]?.stringValue
        else { return ("[an encrypted message this client cannot read]", nil) }
        guard let copy = body["copies"]?.arrayValue?.first(where: { $0["device"]?.stringValue == e2e.device.deviceID }),
              let ephemeral = copy["ephemeralPublic"]?.binaryValue, let nonce = copy["nonce"]?.binaryValue,
              let ciphertext = copy["ciphertext"]?.binaryValue
        else { return ("[encrypted for other devices, not this one]", nil) }
        guard let device = await devices(of: sender)?.devices.first(where: { $0.id == senderDevice }),
              let senderKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: device.key)
        else { return ("[could not decrypt: the sender's device key is unknown]", nil) }
        let aad = E2E.associatedData(
            senderUser: senderID, senderDevice: senderDevice, recipientUser: e2e.userID, recipientDevice: e2e.device.deviceID,
            messageID: message["clientId"]?.stringValue ?? ""
        )
        let sealed = E2E.Sealed(
            ephemeralPublic: Data(ephemeral.readableBytesView), nonce: Data(nonce.readableBytesView), ciphertext: Data(ciphertext.readableBytesView)
        )
        guard let plaintext = try? E2E.open(sealed, aad: aad, recipient: e2e.device.key, sender: senderKey),
              let content = try? JSONValue(parsing: String(decoding: plaintext, as: UTF8.self)), let text = content["text"]?.stringValue
        else { return ("[could not decrypt this message: it was changed, or not sealed for this device]", nil) }
        guard let image = content["image"], let id = message["id"]?.intValue, message["image"] != nil else { return ("🔒 " + text, nil) }
        guard let key = image["key"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
              let nonce = image["nonce"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
        else { return ("🔒 " + text, "[an encrypted image whose key is missing]") }
        imageKeys.withLock {
            $0[id] = SealedImageKey(key: key, nonce: nonce, senderUser: senderID, messageID: message["clientId"]?.stringValue ?? "")
        }
        let type = image["type"]?.stringValue ?? "image"
        return (text.isEmpty ? "" : "🔒 " + text, "[🔒 image \(type): /save \(id) FILE]")
    }

    /// Prints the safety number of this device with each of `handle`'s devices.
    func verify(_ handle: String, _ e2e: E2EContext) async {
        guard let (user, theirs) = await devices(of: handle) else { return }
        guard !theirs.isEmpty else { return Terminal.say("\(handle) has no device keys yet") }
        let changed = Set(e2e.known.changed(user, theirs.map { ($0.id, $0.key) }))
        for device in theirs {
            guard let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: device.key) else { continue }
            let state = changed.contains(device.id) ? " — KEY CHANGED" : e2e.known.isVerified(user, device.id) ? " — verified" : ""
            Terminal.say("safety number with \(handle)/\(device.id)\(state): \(E2E.safetyNumber(e2e.device.key.publicKey, key))")
        }
        Terminal.say(style.dim("compare it with \(handle) in person or by call; then /verified \(handle)"))
    }

    /// Accepts `handle`'s current keys (after a change), marking them verified or not.
    func trust(_ handle: String, verified: Bool, _ e2e: E2EContext) async {
        guard let (user, theirs) = await devices(of: handle) else { return }
        e2e.known.accept(user, theirs.map { ($0.id, $0.key) }, verified: verified)
        Terminal.say(style.status("* \(handle)'s current keys are \(verified ? "marked verified" : "accepted")"))
    }
}
