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
