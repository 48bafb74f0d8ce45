// Parley's end-to-end encryption of direct messages in the browser, on WebCrypto (docs/E2E.md):
// X25519 identity and ephemeral keys, HKDF-SHA256, AES-256-GCM, and safety numbers. The same
// format as the Swift code (ParleyE2E); both are checked against docs/e2e-test-vectors.json.

const VERSION = new TextEncoder().encode("parley-e2e-v1");
const SAFETY = new TextEncoder().encode("parley-safety-v1");
const IMAGE_VERSION = new TextEncoder().encode("parley-e2e-image-v1");

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A new identity key pair whose private key cannot be exported (kept in IndexedDB as is). */
export async function generateIdentity() {
  return crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
}

/** The raw 32 bytes of a public key. */
export async function rawPublic(publicKey) {
  return new Uint8Array(await crypto.subtle.exportKey("raw", publicKey));
}

/** A public key from its raw 32 bytes. */
export async function importPublic(raw) {
  return crypto.subtle.importKey("raw", raw, { name: "X25519" }, true, []);
}

/** A private key from its raw 32 bytes and its public key's (for test vectors and imports). */
export async function importPrivate(rawPrivate, rawPublicKey, extractable = false) {
  const jwk = { kty: "OKP", crv: "X25519", d: base64url(rawPrivate), x: base64url(rawPublicKey) };
  return crypto.subtle.importKey("jwk", jwk, { name: "X25519" }, extractable, ["deriveBits"]);
}

async function dh(privateKey, publicKey) {
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: publicKey }, privateKey, 256));
}

/** HKDF-SHA256 of dh1 ‖ dh2, no salt, info = version ‖ the three public keys: an AES-GCM key. */
async function messageKey(dh1, dh2, ephemeralPublic, senderPublic, recipientPublic) {
  const material = await crypto.subtle.importKey("raw", concat(dh1, dh2), "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: concat(VERSION, ephemeralPublic, senderPublic, recipientPublic) },
    material, 256);
  return crypto.subtle.importKey("raw", bits, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** `prefix`, then each field as a 2-byte big-endian length and UTF-8. */
function fields(prefix, values) {
  const parts = [prefix];
  for (const field of values) {
    const bytes = new TextEncoder().encode(field);
    if (bytes.length > 0xffff) throw new Error("an associated-data field is at most 65,535 bytes");
    parts.push(new Uint8Array([bytes.length >> 8, bytes.length & 0xff]), bytes);
  }
  return concat(...parts);
}

/** The associated data: the version, then each field as a 2-byte big-endian length and UTF-8. */
export function associatedData({ senderUser, senderDevice, recipientUser, recipientDevice, messageId }) {
  return fields(VERSION, [senderUser, senderDevice, recipientUser, recipientDevice, messageId]);
}

/** An image's associated data: the image version, the sender's user id and the message id. */
export function imageAssociatedData({ senderUser, messageId }) {
  return fields(IMAGE_VERSION, [senderUser, messageId]);
}

/**
 * Encrypts an image (bytes) once, under a fresh AES-256 key and nonce unless given: returns
 * {key, nonce, ciphertext}. The ciphertext travels beside the sealed copies, the key and nonce
 * inside each of them.
 */
export async function sealImage(image, ids, rawKey = null, nonce = null) {
  rawKey = rawKey ?? crypto.getRandomValues(new Uint8Array(32));
  nonce = nonce ?? crypto.getRandomValues(new Uint8Array(12));
  const key = await crypto.subtle.importKey("raw", rawKey, "AES-GCM", false, ["encrypt"]);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: imageAssociatedData(ids), tagLength: 128 }, key, image));
  return { key: rawKey, nonce, ciphertext };
}

/** Decrypts an image with the key and nonce from its message's sealed copy; throws an Error
 *  named "DecryptionFailed" when it does not authenticate. */
export async function openImage({ key, nonce, ciphertext }, ids) {
  try {
    const aesKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: imageAssociatedData(ids), tagLength: 128 }, aesKey, ciphertext));
  } catch (cause) {
    const error = new Error("This image could not be decrypted.");
    error.name = "DecryptionFailed";
    error.cause = cause;
    throw error;
  }
}

/**
 * Seals `plaintext` (bytes) from `sender` ({privateKey, publicKey}) to a device's identity public
 * key. The ephemeral key pair and the nonce are fresh unless given (test vectors give them).
 * Returns {ephemeralPublic, nonce, ciphertext} (ciphertext ends with the 16-byte tag).
 */
export async function seal(plaintext, aad, sender, recipientPublic, ephemeral = null, nonce = null) {
  ephemeral = ephemeral ?? await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  nonce = nonce ?? crypto.getRandomValues(new Uint8Array(12));
  const ephemeralPublic = await rawPublic(ephemeral.publicKey);
  const key = await messageKey(
    await dh(ephemeral.privateKey, recipientPublic), await dh(sender.privateKey, recipientPublic),
    ephemeralPublic, await rawPublic(sender.publicKey), await rawPublic(recipientPublic));
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, plaintext));
  return { ephemeralPublic, nonce, ciphertext };
}

/** Opens what `senderPublic` sealed for this device (`recipient` = {privateKey, publicKey}).
 *  Throws an Error named "DecryptionFailed" when it does not authenticate. */
export async function open(sealed, aad, recipient, senderPublic) {
  try {
    if (sealed.nonce.length !== 12 || sealed.ciphertext.length < 16 || sealed.ephemeralPublic.length !== 32) throw new Error("malformed");
    const ephemeral = await importPublic(sealed.ephemeralPublic);
    const key = await messageKey(
      await dh(recipient.privateKey, ephemeral), await dh(recipient.privateKey, senderPublic),
      sealed.ephemeralPublic, await rawPublic(senderPublic), await rawPublic(recipient.publicKey));
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.nonce, additionalData: aad, tagLength: 128 }, key, sealed.ciphertext));
  } catch (cause) {
    const error = new Error("This message could not be decrypted.");
    error.name = "DecryptionFailed";
    error.cause = cause;
    throw error;
  }
}

/** The safety number of two identity public keys (raw bytes): twelve groups of five digits. */
export async function safetyNumber(a, b) {
  let low = a, high = b;
  for (let i = 0; i < 32; i++) {
    if (a[i] !== b[i]) {
      if (a[i] > b[i]) [low, high] = [b, a];
      break;
    }
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", concat(SAFETY, low, high)));
  const groups = [];
  for (let group = 0; group < 12; group++) {
    let value = 0;
    for (let i = 0; i < 5; i++) value = value * 256 + digest[group * 5 + i];
    groups.push(String(value % 100000).padStart(5, "0"));
  }
  return groups.join(" ");
}

/** Hex text to bytes, and back. */
export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
