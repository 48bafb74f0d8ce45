"""A store that stops answering: PostgreSQL going down and coming back, a SQLite file that
cannot grow, a full disk under either store. The client gets a clear error in seconds, the server
stays up, what it stored stays, and it takes messages again once the store is back."""

import contextlib
import errno
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import STORE_CANNOT_WRITE, STORE_UNAVAILABLE, eventually, free_port, start_parley
from test_chat import Chatter, register
from test_parley import metric

POSTGRES = Path(__file__).resolve().parents[2] / "scripts" / "postgres"


def postgres(*args: str) -> str:
    """Runs `scripts/postgres ARGS…`; its output (the URL, for `start`)."""
    return subprocess.run([str(POSTGRES), *args], check=True, capture_output=True, text=True, timeout=120).stdout.strip()


@contextlib.contextmanager
def own_postgres():
    """A PostgreSQL server of the test's own (so that it may stop it): its admin URL, its
    directory and its port."""
    directory, port = tempfile.mkdtemp(prefix="parley-outage-"), free_port()
    try:
        yield postgres("start", directory, str(port)), directory, port
    finally:
        postgres("stop", directory)


def sql(url, statement):
    return subprocess.run(["psql", url, "-q", "-t", "-A", "-c", statement], check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


class TwoNodes:
    """Nodes A and B on one database (A first, so that it applies the migrations), with account
    chatters in the room `lobby`, closed at the end."""

    def __init__(self, url_a, url_b):
        self.a = start_parley(database=url_a)
        self.b = start_parley(database=url_b)
        self.chatters = []

    def join(self, server, handle):
        """A new account joins `lobby` on `server`: its chatter and the member names it is told."""
        chatter = Chatter(server, auth={"token": register(server, handle)["token"]})
        self.chatters.append(chatter)
        reply = chatter.ok("room:join", {"room": "lobby"})
        return chatter, sorted(member["name"] for member in reply["members"])

    def leave(self, chatter):
        chatter.close()
        self.chatters.remove(chatter)

    def members_seen_on_b_once(self, gone, timeout):
        """The members a newcomer on B is told of, once `gone` is not among them (or `timeout`
        has passed)."""
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.5)
            members = self.join(self.b, f"late{len(self.chatters)}")[1]
            if gone not in members or time.monotonic() > deadline:
                return members

    def close(self):
        for chatter in self.chatters:
            chatter.close()
        self.a.stop()
        self.b.stop()


def texts(chatter, room):
    return [message["text"] for message in chatter.ok("history:get", {"room": room, "limit": 50})["messages"]]


def test_a_postgres_outage_is_answered_store_unavailable_within_seconds_and_survived():
    """With the database down, a message is refused with `store_unavailable` after the 5 s wait
    for a connection (postgres-nio alone kept it waiting a minute), reads too; the refused
    message is not stored later, and once the database is back the same connection sends again.
    Stopped while the database is down, the server exits at once."""
    with own_postgres() as (url, directory, port):
        server = start_parley(database=url)
        chatter = None
        try:
            token = register(server, "operator")["token"]
            chatter = Chatter(server, auth={"token": token})
            chatter.ok("room:join", {"room": "ops"})
            chatter.ok("message:send", {"room": "ops", "text": "before", "clientId": "b"})

            postgres("down", directory)
            started = time.monotonic()
            reply = chatter.call("message:send", {"room": "ops", "text": "refused", "clientId": "r"})
            waited = time.monotonic() - started
            assert reply == {"ok": False, "error": {"code": "store_unavailable", "message": STORE_UNAVAILABLE}}
            assert 4.5 < waited < 9, waited
            assert chatter.error("history:get", {"room": "ops"}) == "store_unavailable"
            assert server.alive()
            assert refusals(server, "postgres", "no_connection") >= 2
            assert refusals(server, "postgres", "cannot_write") == 0

            postgres("up", directory, str(port))
            deadline = time.monotonic() + 60
            while True:
                reply = chatter.call("message:send", {"room": "ops", "text": "after", "clientId": "a"})
                if reply["ok"] or time.monotonic() > deadline:
                    break
                assert reply["error"]["code"] == "store_unavailable", reply
                time.sleep(0.5)
            assert reply["ok"], reply
            # "Nothing was changed" held: the refused message never reached the database.
            assert texts(chatter, "ops") == ["before", "after"]

            # A server told to stop while its database is down stops at once (it used to wait
            # for the pool to give up on the cluster's goodbye, a minute, and be killed).
            postgres("down", directory)
            chatter.close()
            chatter = None
            started = time.monotonic()
            assert server.stop() == 0
            assert time.monotonic() - started < 5
        finally:
            if chatter:
                chatter.close()
            server.stop()


def ignore_file_size_signal():
    # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the server.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_sqlite_file_that_cannot_grow_refuses_messages_and_keeps_what_it_stored(tmp_path):
    """A disk that is full, as the server sees it: its files may not grow (RLIMIT_FSIZE, raised
    again afterwards). Messages fail with a clear error, the server stays up, reads still work,
    nothing stored is lost, and it stores again once the files may grow."""
    database = str(tmp_path / "full.sqlite")
    server = start_parley(database=database, preexec_fn=ignore_file_size_signal)
    chatter = None
    try:
        token = register(server, "archivist")["token"]
        chatter = Chatter(server, auth={"token": token})
        chatter.ok("room:join", {"room": "archive"})
        stored = [chatter.ok("message:send", {"room": "archive", "text": f"kept {i}", "clientId": f"k{i}"})["message"]["text"]
                  for i in range(3)]

        # Every file as large as it is now: the next commit cannot append to the log.
        largest = max(os.path.getsize(database + suffix) for suffix in ("", "-wal"))
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))
        reply = chatter.call("message:send", {"room": "archive", "text": "too much " * 50, "clientId": "x"})
        assert reply == {"ok": False, "error": {"code": "store_unavailable", "message": STORE_CANNOT_WRITE}}
        # Not only messages: every write says so (here, creating a room).
        assert chatter.error("room:join", {"room": "annex"}) == "store_unavailable"
        assert server.alive()
        assert texts(chatter, "archive") == stored

        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        # The refused message, sent again as a client would (same clientId), is stored once.
        chatter.ok("message:send", {"room": "archive", "text": "too much " * 50, "clientId": "x"})
        chatter.ok("message:send", {"room": "archive", "text": "after", "clientId": "a"})
        chatter.close()
        chatter = None
        assert server.stop() == 0
        with open(server.log, errors="replace") as log:
            logged = log.read()
        assert "disk I/O error" in logged and "is its disk full?" in logged

        restarted = start_parley(database=database)
        try:
            back = Chatter(restarted, auth={"token": token})
            assert texts(back, "archive") == stored + ["too much " * 50, "after"]
            back.close()
        finally:
            assert restarted.stop() == 0
    finally:
        if chatter:
            chatter.close()
        server.stop()


@contextlib.contextmanager
def small_disk(megabytes):
    """A file system of the test's own (tmpfs, mounted as root), `megabytes` large: its path."""
    path = Path(tempfile.mkdtemp(prefix="parley-small-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0777", "tmpfs", str(path)], check=True,
                   capture_output=True, text=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False, timeout=30)
        path.rmdir()


def fill(disk):
    """Fills `disk` to its last page with a file of its own: that file, to remove to make room."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as file:
        for size in (1 << 20, 4096):
            try:
                while True:
                    file.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def refusals(server, store, reason):
    """What `parley_store_refusals_total` says of `store` and `reason` on /metrics."""
    return metric(requests.get(server.url + "/metrics", timeout=5).text, "parley_store_refusals_total",
                  '{store="%s",reason="%s"}' % (store, reason))


def history(chatter, room):
    """Every text stored in `room`, oldest first, page by page."""
    found, before = [], None
    while True:
        page = chatter.ok("history:get", {"room": room, "limit": 100, **({"before": before} if before else {})})
        found[:0] = [message["text"] for message in page["messages"]]
        if not page["more"]:
            return found
        before = page["messages"][0]["id"]


def send_until_refused(chatter, room, limit=5000):
    """Sends messages of about 500 bytes until one is refused: the texts stored, and the refused
    message's payload and reply."""
    stored = []
    for number in range(limit):
        payload = {"room": room, "text": f"{number:05} " + "x" * 500, "clientId": f"fill-{number}"}
        reply = chatter.call("message:send", payload)
        if not reply["ok"]:
            return stored, payload, reply
        stored.append(payload["text"])
    raise AssertionError(f"{limit} messages stored on a full disk")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_full_disk_refuses_writes_with_store_unavailable_and_loses_nothing(store, tmp_path):
    """A disk with no space left (ENOSPC, on a tmpfs of the test's own): SQLite's file, or the
    tablespace of PostgreSQL's message table. Once the space is gone, a message is refused with
    `store_unavailable` and a message that says why (it used to be `internal_error`, which the
    web app showed and dropped); the server stays up and reads still work. Once there is room
    again, the refused message sent again with its clientId is stored once, and after a restart
    the history holds every message acknowledged, in order, and nothing else."""
    with contextlib.ExitStack() as stack:
        disk = stack.enter_context(small_disk(8))
        if store == "sqlite":
            database = str(disk / "parley.sqlite")
        else:
            database, directory, _ = stack.enter_context(own_postgres())
            (disk / "tablespace").mkdir()
            shutil.chown(disk / "tablespace", "postgres", "postgres")
            sql(database, f"CREATE TABLESPACE small_disk LOCATION '{disk / 'tablespace'}'")
        server = start_parley(database=database)
        stack.callback(server.stop)
        if store == "postgres":
            sql(database, "ALTER TABLE message SET TABLESPACE small_disk")
        token = register(server, "hoarder")["token"]
        chatter = Chatter(server, auth={"token": token})
        stack.callback(chatter.close)
        chatter.ok("room:join", {"room": "attic"})
        before = [chatter.ok("message:send", {"room": "attic", "text": f"before {i}", "clientId": f"b{i}"})["message"]["text"]
                  for i in range(3)]

        filler = fill(disk)
        stored, refused, reply = send_until_refused(chatter, "attic")
        assert reply == {"ok": False, "error": {"code": "store_unavailable", "message": STORE_CANNOT_WRITE}}, reply
        assert server.alive()
        assert history(chatter, "attic") == before + stored
        assert refusals(server, store, "cannot_write") >= 1

        filler.unlink()
        assert chatter.ok("message:send", refused)["message"]["text"] == refused["text"]
        chatter.ok("message:send", {"room": "attic", "text": "after", "clientId": "after"})
        chatter.close()
        assert server.stop() == 0
        with open(server.log, errors="replace") as log:
            assert "is its disk full?" in log.read()

        restarted = start_parley(database=database)
        stack.callback(restarted.stop)
        back = Chatter(restarted, auth={"token": token})
        stack.callback(back.close)
        assert history(back, "attic") == before + stored + [refused["text"], "after"]


def test_a_node_that_lost_its_bus_connection_catches_up_with_what_it_missed():
    """Two nodes on one database. Node B's bus connections are cut (as a database restart or a
    network blip cuts them); during the second before B listens again, the owner of a room on
    node A writes to it, makes it store nothing (`none`) and leaves it, and B hears none of it.
    Once B listens again, its member of the room gets the message it missed, without
    reconnecting (from its inbox); B no longer shows the member who left (it trades presence
    with the others again), and it does not store its clients' messages under the old policy
    (it forgets what it had cached). The nodes' heartbeats never lapse, so neither takes the
    other for gone."""
    with own_postgres() as (url, _, _):
        nodes = TwoNodes(url, url)
        try:
            leaver, _ = nodes.join(nodes.a, "leaver")
            stayer, members = nodes.join(nodes.b, "stayer")
            assert members == ["leaver", "stayer"]
            # B now knows (and caches) the room's policy.
            assert "ephemeral" not in stayer.ok("message:send", {"room": "lobby", "text": "kept"})["message"]

            node_b = requests.get(nodes.b.url + "/healthz", timeout=5).json()["node"]
            cut = sql(url, f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'parley bus {node_b}'")
            assert int(cut) >= 1, cut
            time.sleep(0.2)
            leaver.ok("message:send", {"room": "lobby", "text": "missed live"})
            leaver.ok("room:retention", {"room": "lobby", "policy": "none"})
            nodes.leave(leaver)

            members = nodes.members_seen_on_b_once("leaver", timeout=15)
            assert "leaver" not in members and "stayer" in members, members
            assert stayer.ok("message:send", {"room": "lobby", "text": "not kept"})["message"].get("ephemeral") is True
            assert texts(stayer, "lobby") == ["kept", "missed live"]
            eventually(lambda: "missed live" in [message["text"] for message in stayer.messages])
        finally:
            nodes.close()


def test_a_node_whose_messages_could_not_be_published_announces_its_presence_again():
    """Node A may not notify for a moment (its database role loses `pg_notify`, as when the
    database refuses it for a while), so the other node never hears that a member left on A.
    Once A may publish again, its next heartbeat announces its presence to the others, and B
    stops showing the member who left."""
    with own_postgres() as (admin, _, _):
        sql(admin, "CREATE ROLE node_a LOGIN")
        sql(admin, "CREATE DATABASE shared OWNER node_a")
        base = admin.split("@", 1)[1].split("/", 1)[0]
        shared = f"postgres://postgres@{base}/shared?sslmode=disable"
        nodes = TwoNodes(f"postgres://node_a@{base}/shared?sslmode=disable", shared)
        try:
            leaver, _ = nodes.join(nodes.a, "leaver")
            assert nodes.join(nodes.b, "stayer")[1] == ["leaver", "stayer"]

            # Function privileges belong to each database.
            sql(shared, "REVOKE EXECUTE ON FUNCTION pg_notify(text, text) FROM PUBLIC")
            nodes.leave(leaver)
            time.sleep(1)
            sql(shared, "GRANT EXECUTE ON FUNCTION pg_notify(text, text) TO PUBLIC")

            members = nodes.members_seen_on_b_once("leaver", timeout=10)
            assert "leaver" not in members, members
            with open(nodes.a.log, errors="replace") as log:
                assert "some messages could not be published; announcing this node's presence again" in log.read()
        finally:
            nodes.close()
