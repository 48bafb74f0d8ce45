"""The web app's end-to-end encryption (`/e2e.js`, on WebCrypto) in headless Chromium: it seals
every vector of docs/e2e-test-vectors.json to the same bytes, opens it, computes the same safety
number, and refuses a message with one byte changed."""

import json

from conftest import ROOT
from test_webapp import make_browser

CHECK_VECTORS = """
const [vectors, done] = arguments;
(async () => {
  const e2e = await import('/e2e.js');
  const results = [];
  for (const v of vectors) {
    const h = e2e.fromHex;
    const sender = { privateKey: await e2e.importPrivate(h(v.senderIdentityPrivate), h(v.senderIdentityPublic)),
                     publicKey: await e2e.importPublic(h(v.senderIdentityPublic)) };
    const recipient = { privateKey: await e2e.importPrivate(h(v.recipientIdentityPrivate), h(v.recipientIdentityPublic)),
                        publicKey: await e2e.importPublic(h(v.recipientIdentityPublic)) };
    const ephemeral = { privateKey: await e2e.importPrivate(h(v.ephemeralPrivate), h(v.ephemeralPublic)),
                        publicKey: await e2e.importPublic(h(v.ephemeralPublic)) };
    const aad = e2e.associatedData(v);
    const sealed = await e2e.seal(h(v.plaintext), aad, sender, recipient.publicKey, ephemeral, h(v.nonce));
    const opened = await e2e.open(sealed, aad, recipient, sender.publicKey);
    const tampered = { ...sealed, ciphertext: sealed.ciphertext.slice() };
    tampered.ciphertext[0] ^= 1;
    let refused = null;
    try { await e2e.open(tampered, aad, recipient, sender.publicKey); } catch (error) { refused = error.name; }
    results.push({
      name: v.name, aad: e2e.toHex(aad), ephemeralPublic: e2e.toHex(sealed.ephemeralPublic), ciphertext: e2e.toHex(sealed.ciphertext),
      opened: e2e.toHex(opened), tampered: refused,
      safety: await e2e.safetyNumber(h(v.senderIdentityPublic), h(v.recipientIdentityPublic)),
      safetyReversed: await e2e.safetyNumber(h(v.recipientIdentityPublic), h(v.senderIdentityPublic)),
    });
  }
  return results;
})().then(done, (error) => done({ error: String(error) }));
"""


def test_the_browser_code_passes_every_test_vector(parley):
    vectors = json.loads((ROOT / "docs" / "e2e-test-vectors.json").read_text())
    browser = make_browser()
    try:
        browser.get(parley.url + "/")
        browser.set_script_timeout(30)
        results = browser.execute_async_script(CHECK_VECTORS, vectors)
        assert isinstance(results, list), results
        assert len(results) == len(vectors) >= 3
        for vector, result in zip(vectors, results):
            assert result["aad"] == vector["aad"], vector["name"]
            assert result["ephemeralPublic"] == vector["ephemeralPublic"], vector["name"]
            assert result["ciphertext"] == vector["ciphertext"], vector["name"]
            assert result["opened"] == vector["plaintext"], vector["name"]
            assert result["tampered"] == "DecryptionFailed", vector["name"]
            assert result["safety"] == result["safetyReversed"] == vector["safetyNumber"], vector["name"]
    finally:
        browser.quit()
