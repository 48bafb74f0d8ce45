"""The web app's end-to-end encryption (`/e2e.js`, on WebCrypto) in headless Chromium: it seals
every vector of docs/e2e-test-vectors.json to the same bytes, opens it, computes the same safety
number, and refuses a message with one byte changed; it encrypts every image vector of
docs/e2e-image-test-vectors.json to the same bytes. Then the web app and `parley chat` exchange
sealed messages and encrypted images."""

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


CHECK_IMAGE_VECTORS = """
const [vectors, done] = arguments;
(async () => {
  const e2e = await import('/e2e.js');
  const results = [];
  for (const v of vectors) {
    const h = e2e.fromHex;
    const ids = { senderUser: v.senderUser, messageId: v.messageId };
    const sealed = await e2e.sealImage(h(v.plaintext), ids, h(v.key), h(v.nonce));
    const opened = await e2e.openImage(sealed, ids);
    const tampered = { ...sealed, ciphertext: sealed.ciphertext.slice() };
    tampered.ciphertext[0] ^= 1;
    let refused = null;
    try { await e2e.openImage(tampered, ids); } catch (error) { refused = error.name; }
    results.push({ aad: e2e.toHex(e2e.imageAssociatedData(ids)), ciphertext: e2e.toHex(sealed.ciphertext), opened: e2e.toHex(opened),
                   tampered: refused });
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
        image_vectors = json.loads((ROOT / "docs" / "e2e-image-test-vectors.json").read_text())
        results = browser.execute_async_script(CHECK_IMAGE_VECTORS, image_vectors)
        assert isinstance(results, list), results
        assert len(results) == len(image_vectors) >= 3
        for vector, result in zip(image_vectors, results):
            assert result == {"aad": vector["aad"], "ciphertext": vector["ciphertext"], "opened": vector["plaintext"],
                              "tampered": "DecryptionFailed"}, vector["name"]
    finally:
        browser.quit()


def test_the_web_app_and_the_terminal_read_each_others_sealed_messages(tmp_path):
    """ada in the web app, bob in `parley chat` and in a second browser: messages both ways, both
    of bob's devices read ada's, the safety numbers agree, a changed key is shown before the next
    message and needs confirming, and the server keeps no plaintext."""
    import base64
    import time
    from pathlib import Path

    import pexpect
    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    from conftest import LOGS, start_parley
    from test_chat import Chatter
    from test_e2e_terminal import PASSWORD, safety_number, terminal
    import sqlite3

    from test_webapp import png_file, register_in, texts, wait

    started = time.time()
    database = tmp_path / "web.sqlite"
    server = start_parley("--log-level", "debug", database=str(database))
    ada_web = bob_web = bob_term = None
    secrets = ["from the browser, sealed", "from the terminal, sealed", "after the key change"]
    try:
        ada_web, bob_web = make_browser(), make_browser()
        register_in(ada_web, server.url, "web_ada")
        requests.post(server.url + "/api/register", json={"handle": "term_bob", "password": PASSWORD}, timeout=10)
        ada_token = requests.post(server.url + "/api/login", json={"handle": "web_ada", "password": "web password 1"}, timeout=10).json()["token"]
        bob_token = requests.post(server.url + "/api/login", json={"handle": "term_bob", "password": PASSWORD}, timeout=10).json()["token"]
        ada, bob = Chatter(server, auth={"token": ada_token}), Chatter(server, auth={"token": bob_token})
        ada.ok("friend:request", {"handle": "term_bob"})
        bob.ok("friend:accept", {"handle": "web_ada"})
        ada.close()
        bob.close()
        bob_term, bob_device = terminal(server, "term_bob", tmp_path / "bob-keys")
        # bob's second device: a browser.
        bob_web.get(server.url + "/")
        wait(bob_web, ready.visibility_of_element_located((By.ID, "handle"))).send_keys("term_bob")
        bob_web.find_element(By.ID, "password").send_keys(PASSWORD)
        bob_web.find_element(By.ID, "login").click()
        wait(bob_web, ready.text_to_be_present_in_element((By.ID, "whoami"), "term_bob (account)"))
        wait(bob_web, lambda d: d.execute_script("return document.querySelector('#verify') !== null"))

        def open_conversation(driver, name):
            wait(driver, lambda d: [n for n in d.find_elements(By.CSS_SELECTOR, "#friends li .name") if n.text == name])[0].click()
            wait(driver, ready.text_to_be_present_in_element((By.ID, "title"), name))

        open_conversation(ada_web, "@term_bob")
        ada_web.find_element(By.ID, "text").send_keys(secrets[0] + "\n")
        bob_term.expect("web_ada: 🔒 " + secrets[0])
        open_conversation(bob_web, "@web_ada")
        wait(bob_web, lambda d: secrets[0] in texts(d))
        bob_term.sendline(f"/dm web_ada {secrets[1]}")
        wait(ada_web, lambda d: secrets[1] in texts(d))
        assert ada_web.find_elements(By.CSS_SELECTOR, "#messages .message .lock")

        # The safety number of ada's browser and bob's terminal, seen from both sides.
        ada_web.find_element(By.ID, "verify").click()
        shown = wait(ada_web, lambda d: d.find_element(By.ID, "safety-numbers").text)
        line = next(l for l in shown.splitlines() if f"/{bob_device}" in l)
        assert line.split(": ", 1)[1] == safety_number(bob_term, "web_ada")

        # Images both ways, encrypted once with their keys in the sealed copies.
        ada_web.find_element(By.ID, "image").send_keys(str(png_file(tmp_path / "from-browser.png")))
        bob_term.expect(r"web_ada: \[🔒 image image/png: /save (\d+) FILE\]")
        image_id = bob_term.match.group(1)
        bob_term.sendline(f"/save {image_id} {tmp_path / 'saved.png'}")
        bob_term.expect(f"saved #{image_id}")
        assert (tmp_path / "saved.png").read_bytes() == (tmp_path / "from-browser.png").read_bytes()
        decoded = lambda driver: [img for img in driver.find_elements(By.CSS_SELECTOR, "#messages img")
                                  if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth === 16", img)]
        wait(bob_web, decoded)  # bob's other device
        png_file(tmp_path / "from-terminal.png")
        bob_term.sendline(f"/image @web_ada {tmp_path / 'from-terminal.png'}")
        bob_term.expect(r"sent 🔒 #\d+")
        wait(ada_web, lambda d: len(decoded(d)) == 2)
        stored = sqlite3.connect(database).execute("SELECT type, bytes FROM message_image").fetchall()
        assert [kind for kind, _ in stored] == ["application/octet-stream"] * 2
        assert all(b"IHDR" not in data for _, data in stored)

        # bob's terminal device gets a new key: ada's browser says so before sending.
        bob_term.sendline("/quit")
        bob_term.expect(pexpect.EOF)
        key_file = next((tmp_path / "bob-keys").glob("*.key"))
        key_file.write_text(__import__("json").dumps({"deviceId": bob_device, "privateKey": base64.b64encode(bytes(range(5, 37))).decode()}))
        bob_term, _ = terminal(server, "term_bob", tmp_path / "bob-keys")
        ada_web.find_element(By.ID, "text").send_keys(secrets[2] + "\n")
        warning = wait(ada_web, ready.visibility_of_element_located((By.ID, "key-warning")))
        assert "has changed" in warning.text and bob_device in warning.text
        assert secrets[2] not in texts(ada_web)
        ada_web.find_element(By.ID, "accept-key").click()
        bob_term.expect("web_ada: 🔒 " + secrets[2])
        wait(ada_web, lambda d: secrets[2] in texts(d))
    finally:
        for driver in (ada_web, bob_web):
            if driver is not None:
                driver.quit()
        if bob_term is not None and bob_term.isalive():
            bob_term.terminate(force=True)
        server.stop()
    written = [Path(str(database) + suffix) for suffix in ("", "-wal", "-shm")]
    written += [log for log in LOGS.glob("parley-*.log") if log.stat().st_mtime >= started - 1]
    for path in (p for p in written if p.exists()):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {path}"
