"""End-to-end encrypted direct messages in `parley chat` (a real pseudo-terminal): two
terminals read each other's sealed messages, show equal safety numbers, a changed key stops the
next message until the user accepts it, and a ciphertext changed in the database is shown as a
decryption failure."""

import base64
import json
import sqlite3
from pathlib import Path

import pexpect
import requests

from conftest import eventually, start_parley
from test_chat import Chatter, register
from test_terminal import spawn

PASSWORD = "a long password"
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a2f1d6f7"
    "0000000049454e44ae426082"
)


def terminal(server, handle, keys):
    chat = spawn("chat", "--server", server.url, "--login", handle, "--keys", str(keys), "--room", "e2e-lobby",
                 env={"PARLEY_PASSWORD": PASSWORD})
    chat.expect(r"end-to-end encrypted \(device (term-[0-9a-f]+)\)")
    device = chat.match.group(1)
    chat.expect("type /help")
    return chat, device


def safety_number(chat, handle):
    chat.sendline(f"/verify {handle}")
    chat.expect(r"safety number with \S+: ((?:\d{5} ){11}\d{5})")
    return chat.match.group(1)


def befriend(server, a, b):
    one = Chatter(server, auth={"token": register(server, a)["token"]})
    token = requests.post(server.url + "/api/login", json={"handle": b, "password": PASSWORD}, timeout=10).json().get("token")
    two = Chatter(server, auth={"token": token or register(server, b)["token"]})
    one.ok("friend:request", {"handle": b})
    two.ok("friend:accept", {"handle": a})
    one.close()
    two.close()


def test_two_terminals_exchange_sealed_messages_and_agree_on_safety_numbers(tmp_path):
    server = start_parley(database=str(tmp_path / "t.sqlite"))
    ada = bob = None
    try:
        befriend(server, "t_ada", "t_bob")
        ada, _ = terminal(server, "t_ada", tmp_path / "ada-keys")
        bob, bob_device = terminal(server, "t_bob", tmp_path / "bob-keys")
        key_file = next((tmp_path / "bob-keys").glob("*.key"))
        assert key_file.stat().st_mode & 0o777 == 0o600
        ada.sendline("/dm t_bob meet me at the old mill")
        ada.expect(r"sent 🔒 #\d+")
        bob.expect("@t_ada→t_bob t_ada: 🔒 meet me at the old mill")
        bob.sendline("/dm t_ada on my way")
        ada.expect("t_bob: 🔒 on my way")
        assert safety_number(ada, "t_bob") == safety_number(bob, "t_ada")

        # An image, encrypted once with its key in the sealed copies: bob saves what ada sent.
        picture = tmp_path / "picture one.png"
        picture.write_bytes(PNG)
        ada.sendline(f"/image @t_bob {picture}")
        ada.expect(r"sent 🔒 #\d+")
        bob.expect(r"t_ada: \[🔒 image image/png: /save (\d+) FILE\]")
        image_id = int(bob.match.group(1))
        saved = tmp_path / "saved.png"
        bob.sendline(f"/save {image_id} {saved}")
        bob.expect(f"saved #{image_id}")
        assert saved.read_bytes() == PNG
        # Without the key, what the server hands out is not the image.
        raw = Chatter(server, auth={"token": requests.post(server.url + "/api/login", json={"handle": "t_bob", "password": PASSWORD},
                                                           timeout=10).json()["token"]})
        stored = raw.ok("image:get", {"id": image_id})
        assert stored["type"] == "application/octet-stream" and PNG not in stored["data"] and len(stored["data"]) == len(PNG) + 16
        raw.close()

        # bob's device gets a new key (same device id): ada is warned and must accept it.
        bob.sendline("/quit")
        bob.expect(pexpect.EOF)
        key_file.write_text(json.dumps({"deviceId": bob_device, "privateKey": base64.b64encode(bytes(range(1, 33))).decode()}))
        bob, _ = terminal(server, "t_bob", tmp_path / "bob-keys")
        ada.sendline("/dm t_bob are you still you?")
        ada.expect("CHANGED since you last wrote. Not sent.")
        ada.sendline("/verify t_bob")
        ada.expect("KEY CHANGED")
        ada.sendline("/trust t_bob")
        ada.expect("accepted")
        ada.sendline("/dm t_bob are you still you?")
        bob.expect("t_ada: 🔒 are you still you\\?")
    finally:
        for chat in (ada, bob):
            if chat is not None and chat.isalive():
                chat.terminate(force=True)
        server.stop()


def test_a_ciphertext_changed_in_the_database_is_shown_as_a_failure(tmp_path):
    database = tmp_path / "tamper.sqlite"
    server = start_parley(database=str(database))
    ada = bob = None
    try:
        befriend(server, "x_ada", "x_bob")
        bob, _ = terminal(server, "x_bob", tmp_path / "bob-keys")
        bob.sendline("/quit")
        bob.expect(pexpect.EOF)
        ada, _ = terminal(server, "x_ada", tmp_path / "ada-keys")
        for text in ("first, left alone", "second, changed at rest"):
            ada.sendline(f"/dm x_bob {text}")
            ada.expect(r"sent 🔒 #\d+")
        # Flip one byte of the second message's ciphertext where the server keeps it.
        with sqlite3.connect(database) as db:
            row_id, stored = db.execute("SELECT id, e2e FROM message WHERE e2e IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
            body = json.loads(stored)
            raw = bytearray(base64.b64decode(body["copies"][0]["ciphertext"]))
            raw[0] ^= 1
            body["copies"][0]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
            db.execute("UPDATE message SET e2e = ? WHERE id = ?", (json.dumps(body).encode(), row_id))
        # The inbox is replayed as the connection opens, before the prompt: read it as it comes.
        bob = spawn("chat", "--server", server.url, "--login", "x_bob", "--keys", str(tmp_path / "bob-keys"), "--room", "e2e-lobby",
                    env={"PARLEY_PASSWORD": PASSWORD})
        bob.expect("x_ada: 🔒 first, left alone")
        bob.expect(r"x_ada: \[could not decrypt this message")
    finally:
        for chat in (ada, bob):
            if chat is not None and chat.isalive():
                chat.terminate(force=True)
        server.stop()
