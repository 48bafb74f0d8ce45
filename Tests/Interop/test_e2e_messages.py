"""End-to-end encrypted direct messages through the real server, sealed and opened by a client
that is not Parley's (python-socketio with Python's `cryptography`): the server relays sealed
copies it cannot read, and neither its database file, its write-ahead log nor its log holds a
plaintext."""

import importlib.util
import json
import time
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from conftest import LOGS, ROOT, eventually, start_parley
from test_chat import Chatter, register

loader = SourceFileLoader("e2e_vectors", str(ROOT / "scripts" / "e2e-vectors"))
e2e = importlib.util.module_from_spec(importlib.util.spec_from_loader("e2e_vectors", loader))
loader.exec_module(e2e)


class Device:
    """One device of an account: its identity key, published on connecting."""

    def __init__(self, chatter, user_id, device_id):
        self.chatter, self.user_id, self.id = chatter, user_id, device_id
        self.key = X25519PrivateKey.generate()
        self.public = e2e.raw_public(self.key)
        chatter.ok("device:publish", {"deviceId": device_id, "publicKey": self.public})

    def seal_for(self, devices, recipient_user, plaintext: bytes, message_id: str):
        """A sealed copy for each device of `devices` ({id, publicKey} as device:list gives)."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        import os

        copies = []
        for device in devices:
            aad = e2e.associated_data(self.user_id, self.id, recipient_user, device["deviceId"], message_id)
            ephemeral, nonce = X25519PrivateKey.generate(), os.urandom(12)
            ciphertext = e2e.seal(self.key, X25519PublicKey.from_public_bytes(device["publicKey"]), ephemeral, nonce, plaintext, aad)
            copies.append({"device": device["deviceId"], "ephemeralPublic": e2e.raw_public(ephemeral), "nonce": nonce,
                           "ciphertext": ciphertext})
        return {"senderDevice": self.id, "copies": copies}

    def open(self, message, sender_public):
        copy = next(c for c in message["e2e"]["copies"] if c["device"] == self.id)
        aad = e2e.associated_data(message["from"]["id"], message["e2e"]["senderDevice"], self.user_id, self.id, message["clientId"])
        return e2e.open_sealed(self.key, sender_public, copy["ephemeralPublic"], copy["nonce"], copy["ciphertext"], aad)


def seal_image(image: bytes, sender_user: str, message_id: str):
    """docs/E2E.md: the image encrypted once under a fresh key; returns (what goes in the sealed
    plaintext, the encrypted bytes)."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
    aad = e2e.with_fields(e2e.IMAGE_VERSION, (sender_user, message_id))
    sealed = AESGCM(key).encrypt(nonce, image, aad)
    return {"type": "image/png", "key": base64.b64encode(key).decode(), "nonce": base64.b64encode(nonce).decode()}, sealed


def open_image(content, encrypted: bytes, sender_user: str, message_id: str) -> bytes:
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aad = e2e.with_fields(e2e.IMAGE_VERSION, (sender_user, message_id))
    return AESGCM(base64.b64decode(content["key"])).decrypt(base64.b64decode(content["nonce"]), encrypted, aad)


IMAGE_SECRET = b"image secret: the floor plan of the vault"
# A 1x1 PNG with a text chunk that says the secret.
IMAGE = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
) + len(IMAGE_SECRET).to_bytes(4, "big") + b"tEXt" + IMAGE_SECRET + bytes(4) + bytes.fromhex(
    "0000000d4944415478da63f8cfc0f01f0005000201a2f1d6f70000000049454e44ae426082"
)


@pytest.mark.parametrize("retention", ["keep", "until-delivered"])
def test_an_encrypted_exchange_leaves_no_plaintext_on_the_server(tmp_path, retention):
    started = time.time()
    database = str(tmp_path / "e2e.sqlite")
    server = start_parley("--log-level", "debug", "--retention", retention, database=database)
    secrets = [f"the vault code is {n}-{retention}".encode() for n in (1234, 5678, 9012)]
    try:
        ada_account, bob_account = register(server, "e2e_ada"), register(server, "e2e_bob")
        ada = Chatter(server, auth={"token": ada_account["token"]})
        bob_phone = Chatter(server, auth={"token": bob_account["token"]})
        bob_laptop = Chatter(server, auth={"token": bob_account["token"]}, transports=("polling",))
        ada.ok("friend:request", {"handle": "e2e_bob"})
        bob_phone.ok("friend:accept", {"handle": "e2e_ada"})
        ada_device = Device(ada, ada_account["user"]["id"], "ada-laptop")
        phone = Device(bob_phone, bob_account["user"]["id"], "bob-phone")
        laptop = Device(bob_laptop, bob_account["user"]["id"], "bob-laptop")
        devices = ada.ok("device:list", {"handle": "e2e_bob"})["devices"]
        assert {d["deviceId"] for d in devices} == {"bob-phone", "bob-laptop"}
        for index, secret in enumerate(secrets):
            body = ada_device.seal_for(devices, bob_account["user"]["id"], secret, f"msg-{index}")
            sent = ada.ok("dm:send", {"to": "e2e_bob", "clientId": f"msg-{index}", "e2e": body})["message"]
            assert sent["text"] == "" and sent["e2e"]["senderDevice"] == "ada-laptop"
        # An image, encrypted once; its key travels in the sealed copies.
        image_content, encrypted_image = seal_image(IMAGE, ada_account["user"]["id"], "msg-image")
        content = json.dumps({"text": "", "image": image_content}).encode()
        body = ada_device.seal_for(devices, bob_account["user"]["id"], content, "msg-image")
        sent = ada.ok("dm:send", {"to": "e2e_bob", "clientId": "msg-image", "e2e": body, "image": encrypted_image})["message"]
        assert sent["image"] == {"type": "application/octet-stream", "size": len(IMAGE) + 16}
        # A plain message beside them: the scan below must be able to see stored text.
        control = f"plain control text {retention}".encode()
        ada.ok("dm:send", {"to": "e2e_bob", "text": control.decode(), "clientId": "plain"})
        # Both of bob's devices read every message, and the image.
        for device in (phone, laptop):
            eventually(lambda device=device: len(device.chatter.dms) == len(secrets) + 2)
            opened = [device.open(m, ada_device.public) for m in device.chatter.dms if "e2e" in m]
            assert opened[:-1] == secrets
            with_image = next(m for m in device.chatter.dms if m.get("clientId") == "msg-image")
            fetched = device.chatter.ok("image:get", {"id": with_image["id"]})
            assert fetched["type"] == "application/octet-stream" and fetched["data"] == encrypted_image
            image_key = json.loads(opened[-1])["image"]
            assert open_image(image_key, fetched["data"], ada_account["user"]["id"], "msg-image") == IMAGE
            with pytest.raises(InvalidTag):
                open_image(image_key, fetched["data"][:-1] + bytes([fetched["data"][-1] ^ 1]), ada_account["user"]["id"], "msg-image")
        # One byte changed in transit or at rest: the recipient sees a failure, not text.
        tampered = dict(phone.chatter.dms[0])
        copies = [dict(c) for c in tampered["e2e"]["copies"]]
        for copy in copies:
            copy["ciphertext"] = bytes([copy["ciphertext"][0] ^ 1]) + copy["ciphertext"][1:]
        tampered["e2e"] = {**tampered["e2e"], "copies": copies}
        with pytest.raises(InvalidTag):
            phone.open(tampered, ada_device.public)
        # Copied under another message id, it does not open either.
        with pytest.raises(InvalidTag):
            phone.open({**phone.chatter.dms[0], "clientId": "msg-1"}, ada_device.public)
        if retention == "until-delivered":
            # Each of bob's devices must have the ciphertext before it is deleted: an
            # acknowledgement without a device, or from one of them, leaves it stored.
            ids = [m["id"] for m in phone.chatter.dms]
            encrypted_ids = [m["id"] for m in phone.chatter.dms if "e2e" in m]
            history = lambda: [m["id"] for m in bob_laptop.ok("history:get", {"with": "e2e_ada"})["messages"]]
            phone.chatter.ok("message:delivered", {"ids": ids})
            assert history() == encrypted_ids
            phone.chatter.ok("message:delivered", {"ids": ids, "device": "bob-phone"})
            assert history() == encrypted_ids
            laptop.chatter.ok("message:read", {"ids": ids, "device": "bob-laptop"})
            assert history() == []
        for chatter in (ada, bob_phone, bob_laptop):
            chatter.close()
    finally:
        server.stop()
    # Nothing the server wrote holds a plaintext.
    written = [Path(database), Path(database + "-wal"), Path(database + "-shm")]
    written += [log for log in LOGS.glob("parley-*.log") if log.stat().st_mtime >= started - 1]
    scanned = [path for path in written if path.exists()]
    assert Path(database) in scanned
    if retention == "keep":
        assert any(control in path.read_bytes() for path in scanned[:3]), "the scan cannot see stored text"
    for path in scanned:
        data = path.read_bytes()
        for secret in secrets + [IMAGE_SECRET]:
            assert secret not in data, f"{secret!r} found in {path}"
    if retention == "until-delivered":
        # Deleted once delivered to each device: not even the ciphertext is left.
        for path in scanned[:3]:
            assert encrypted_image[:64] not in path.read_bytes(), f"the encrypted image is still in {path}"
