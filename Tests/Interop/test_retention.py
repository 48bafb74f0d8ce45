"""Retention policies end to end, checked on the database's bytes: until-delivered content is
gone from the files once the last recipient acknowledges it, and none is never written."""

import subprocess
import time
import uuid
from pathlib import Path

from conftest import eventually, start_parley
from test_chat import Chatter, login, register


def database_bytes(server) -> bytes:
    """Every file of the SQLite database: the main file, its write-ahead log and shared memory.
    On PostgreSQL, whose files keep dead rows until vacuum (docs/DEPLOYMENT.md), a dump of every
    row the database holds."""
    if server.database.startswith("postgres"):
        return subprocess.run(["pg_dump", "--data-only", server.database], check=True, capture_output=True).stdout
    base = Path(server.database)
    return b"".join(path.read_bytes() for path in (base, Path(str(base) + "-wal"), Path(str(base) + "-shm")) if path.exists())


def test_until_delivered_content_is_gone_from_the_file_after_the_last_ack():
    server = start_parley("--retention", "until-delivered")
    try:
        marker = f"SECRET-{uuid.uuid4().hex}"
        sender = Chatter(server, auth={"token": register(server, "ud_sender")["token"]})
        register(server, "ud_one")
        register(server, "ud_two")
        one = Chatter(server, auth={"token": login(server, "ud_one")})
        two = Chatter(server, auth={"token": login(server, "ud_two")})
        for chatter in (sender, one, two):
            joined = chatter.ok("room:join", {"room": "ud-room"})
        assert joined["room"]["retention"] == "until-delivered"
        two.close()
        sent = sender.ok("message:send", {"room": "ud-room", "text": marker})["message"]
        # Stored while undelivered: the test can see it in the file.
        eventually(lambda: marker.encode() in database_bytes(server))
        assert [m["text"] for m in sender.ok("history:get", {"room": "ud-room"})["messages"]] == [marker]
        eventually(lambda: one.messages)
        one.ok("message:delivered", {"ids": [sent["id"]]})
        time.sleep(0.2)
        assert marker.encode() in database_bytes(server), "one recipient has not acknowledged yet"
        two = Chatter(server, auth={"token": login(server, "ud_two")})
        eventually(lambda: two.messages)
        assert two.messages[0]["text"] == marker
        two.ok("message:delivered", {"ids": [sent["id"]]})
        eventually(lambda: marker.encode() not in database_bytes(server))
        assert sender.ok("history:get", {"room": "ud-room"})["messages"] == []
        for chatter in (sender, one, two):
            chatter.close()
    finally:
        server.stop()
    # Still gone after the server closed the database.
    assert marker.encode() not in database_bytes(server)


def test_none_stores_nothing():
    server = start_parley("--retention", "none")
    try:
        marker = f"RELAY-{uuid.uuid4().hex}"
        a = Chatter(server, auth={"token": register(server, "none_a")["token"]})
        b = Chatter(server, auth={"name": "none_guest"})
        a.ok("room:join", {"room": "relay"})
        b.ok("room:join", {"room": "relay"})
        sent = a.ok("message:send", {"room": "relay", "text": marker, "clientId": "once"})["message"]
        assert sent["ephemeral"] is True
        assert a.ok("message:send", {"room": "relay", "text": marker, "clientId": "once"})["message"]["id"] == sent["id"]
        eventually(lambda: b.messages)
        assert [m["text"] for m in b.messages] == [marker]
        assert a.ok("history:get", {"room": "relay"})["messages"] == []
        a.close()
        b.close()
    finally:
        server.stop()
    assert marker.encode() not in database_bytes(server)


def test_an_owner_chooses_a_rooms_retention():
    server = start_parley()
    try:
        owner = Chatter(server, auth={"token": register(server, "rr_owner")["token"]})
        other = Chatter(server, auth={"token": register(server, "rr_other")["token"]})
        assert owner.ok("room:join", {"room": "rr-room"})["room"]["retention"] == "keep"
        other.ok("room:join", {"room": "rr-room"})
        assert other.error("room:retention", {"room": "rr-room", "policy": "none"}) == "not_owner"
        assert owner.error("room:retention", {"room": "rr-room", "policy": "forever"}) == "invalid_argument"
        owner.ok("room:retention", {"room": "rr-room", "policy": "none"})
        assert owner.ok("message:send", {"room": "rr-room", "text": "not kept"})["message"]["ephemeral"] is True
        assert owner.ok("history:get", {"room": "rr-room"})["messages"] == []
        owner.close()
        other.close()
    finally:
        server.stop()
