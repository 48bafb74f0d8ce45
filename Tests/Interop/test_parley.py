"""The `parley` command itself: the tutorial protocol it answers, its HTTP endpoints, and a
graceful shutdown."""

import signal
import threading
import time
from pathlib import Path

import requests
import socketio
import websocket

from conftest import STORE_UNAVAILABLE, eventually, postgres_store, start_parley
from wire import joined_polling, joined_websocket, open_websocket


def connect(server, transports):
    client = socketio.Client(reconnection=False)
    client.connect(server.url, transports=transports, wait_timeout=5)
    return client


def metric(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + (labels if labels else " ")) or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name}{labels} not found in:\n{text}")


def test_tutorial_protocol_on_parley(parley):
    """`parley serve` answers the first tutorial's login → join → chat protocol."""
    one, two, other = (connect(parley, ["websocket"]) for _ in range(3))
    inbox = {1: [], 2: [], 3: []}
    for number, client in ((1, one), (2, two), (3, other)):
        client.on("message", lambda *args, number=number: inbox[number].append(args))
    try:
        one.emit("login", "one")
        one.emit("join", "test")
        two.emit("login", "two")
        two.emit("join", "test")
        other.emit("login", "three")
        other.emit("join", "elsewhere")
        time.sleep(0.3)
        one.emit("chat", "hello")
        eventually(lambda: inbox[1] and inbox[2])
        two.emit("chat", "hi")
        eventually(lambda: len(inbox[1]) == 2 and len(inbox[2]) == 2)
        time.sleep(0.2)
        assert inbox[1] == [({"user": "one", "message": "hello"},), ({"user": "two", "message": "hi"},)]
        assert inbox[2] == inbox[1]
        assert inbox[3] == []
    finally:
        for client in (one, two, other):
            client.disconnect()


def test_healthz_and_unknown_routes(parley):
    health = requests.get(parley.url + "/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert requests.get(parley.url + "/no-such-page", timeout=5).status_code == 404


def test_metrics_count_sessions_packets_and_broadcasts(parley):
    before = requests.get(parley.url + "/metrics", timeout=5).text
    client = connect(parley, ["websocket"])
    poller = connect(parley, ["polling"])
    try:
        client.emit("login", "metered")
        client.emit("join", "meters")
        client.emit("chat", "one")
        client.emit("chat", "two")
        time.sleep(0.3)
        text = requests.get(parley.url + "/metrics", timeout=5).text
        assert metric(text, "engineio_open_sessions", '{transport="websocket"}') >= 1
        assert metric(text, "engineio_open_sessions", '{transport="polling"}') >= 1
        assert metric(text, "socketio_connected_sockets", '{namespace="/"}') >= 2
        assert metric(text, "socketio_broadcasts_total", '{namespace="/"}') >= 2
        assert metric(text, "engineio_packets_received_total") >= metric(before, "engineio_packets_received_total") + 4
        assert metric(text, "engineio_bytes_sent_total") > 0
        assert "engineio_volatile_packets_dropped_total" in text
    finally:
        client.disconnect()
        poller.disconnect()
    # A client that sends garbage is counted as an error of its kind.
    ws = open_websocket(parley.ws_url)
    ws.recv()
    ws.send("42[")
    time.sleep(0.3)
    text = requests.get(parley.url + "/metrics", timeout=5).text
    assert metric(text, "socketio_errors_total", '{kind="parse_error"}') >= 1


def test_metrics_time_the_stores_commits(parley):
    """Every batch of stored messages is timed, commit included, and its messages counted, by
    store; the buckets reach from half a millisecond (a quiet disk) to seconds (a stall)."""
    labels = '{store="%s"}' % ("postgres" if postgres_store() else "sqlite")
    before = requests.get(parley.url + "/metrics", timeout=5).text
    written = metric(before, "parley_store_messages_written_total", labels) if "parley_store_messages_written_total" in before else 0
    client = connect(parley, ["websocket"])
    try:
        client.emit("login", "committer")
        client.emit("join", "ledger")
        for index in range(3):
            client.emit("chat", f"entry {index}")

        def stored():
            text = requests.get(parley.url + "/metrics", timeout=5).text
            return text if metric(text, "parley_store_messages_written_total", labels) >= written + 3 else None

        text = eventually(stored)
    finally:
        client.disconnect()
    commits = metric(text, "parley_store_commit_seconds_count", labels)
    assert 1 <= commits <= metric(text, "parley_store_messages_written_total", labels)
    assert metric(text, "parley_store_commit_seconds_sum", labels) > 0
    bucket = labels[:-1] + ',le="%s"}'
    assert metric(text, "parley_store_commit_seconds_bucket", bucket % "0.0005") <= metric(
        text, "parley_store_commit_seconds_bucket", bucket % "2.5") <= commits
    assert metric(text, "parley_store_commit_seconds_bucket", bucket % "+Inf") == commits


def test_sigterm_closes_sessions_and_exits_zero():
    server = start_parley()
    ws = joined_websocket(server.ws_url)
    session = joined_polling(server.url)
    parked = {}
    poll = threading.Thread(target=lambda: parked.update(response=session.get()))
    poll.start()
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    # The WebSocket gets a close frame with 1001 "going away".
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 1001
    poll.join(5)
    assert parked["response"].text == "1"
    assert server.process.wait(timeout=10) == 0


class WriteLock:
    """Another process holding the store's write lock on `table`: a SQLite write transaction on
    the file (which locks every table), or a PostgreSQL session holding `LOCK TABLE` through psql."""

    def __init__(self, database: str, table: str = "message"):
        import sqlite3
        import subprocess

        if postgres_store():
            self.psql = subprocess.Popen(["psql", database, "-q", "-t", "-A"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
            self.psql.stdin.write(f"BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE; SELECT 'locked';\n")
            self.psql.stdin.flush()
            assert self.psql.stdout.readline().strip() == "locked"
        else:
            self.sqlite = sqlite3.connect(database, isolation_level=None, timeout=10)
            self.sqlite.execute("BEGIN IMMEDIATE")

    def release(self):
        if postgres_store():
            self.psql.stdin.write("ROLLBACK;\n")
            self.psql.stdin.close()
            assert self.psql.wait(timeout=10) == 0
        else:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()


def stored_rows(database: str, query: str) -> list[tuple]:
    """The rows of `query` on the store of a `start_parley` server (SQLite file or PostgreSQL)."""
    import sqlite3
    import subprocess

    if postgres_store():
        out = subprocess.run(["psql", database, "-q", "-t", "-A", "-F", "\t", "-c", query],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]
    with sqlite3.connect(database) as connection:
        return [tuple(str(value) for value in row) for row in connection.execute(query).fetchall()]


def chats_held_up_by_a_write_lock(server, texts: list[str]) -> WriteLock:
    """A first-tutorial client joins a room, then another process takes the store's write lock
    and the client sends `texts` as chats; returns once the server has read them all, with the
    lock still held."""
    ws = tutorial_one_in_a_stored_room(server, "ann", "held up")
    lock = WriteLock(server.database)
    for text in texts:
        ws.send(f'42["chat","{text}"]')
    all_read(ws)
    return lock


def tutorial_one_in_a_stored_room(server, name: str, room: str):
    """A first-tutorial WebSocket client named `name`, once its join of `room` is stored."""
    ws = open_websocket(server.ws_url)
    ws.recv()
    ws.send("40")
    assert ws.recv().startswith("40")
    ws.send(f'42["login","{name}"]')
    ws.send(f'42["join","{room}"]')
    eventually(lambda: (room,) in stored_rows(server.database, "SELECT name FROM room"))
    return ws


def all_read(ws):
    """Returns once the server has read everything sent on `ws` so far: packets on one
    connection are read in order, and a connect to an unknown namespace is answered at once."""
    ws.send("40/nowhere,")
    while not ws.recv().startswith("44/nowhere"):
        pass


def stopped_while_locked(server, lock: WriteLock, early: str):
    """SIGTERM, the lock released a second later: the server must still be running then (else
    `early`), and then exit 0."""
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1)
    waiting = server.process.poll() is None
    lock.release()
    assert server.process.wait(timeout=15) == 0
    assert waiting, early


def test_sigterm_stores_the_messages_the_server_took_before_it_exits():
    """A first-tutorial client hears of no failure, so a message the server has read must be
    stored even if it stops right then: on SIGTERM the server waits for the messages still
    queued for the database (here held up by another process's write lock) before it exits.
    Runs on each store."""
    server = start_parley()
    lock = chats_held_up_by_a_write_lock(server, [f"before the end {index}" for index in range(300)])
    stopped_while_locked(server, lock, "the server exited while its messages were still queued")
    stored = stored_rows(server.database, "SELECT body FROM message ORDER BY id")
    assert stored == [(f"before the end {index}",) for index in range(300)]


def test_sigterm_lets_a_handler_waiting_on_the_store_finish_and_stores_what_was_read_after_it():
    """The messages a client sent behind an event whose handler waits on the store (a join, held
    up here by another process's lock on the room table) are handled and stored before the
    server exits: it used to stop once the write queue was empty, with them never submitted.
    Runs on each store."""
    server = start_parley()
    ws = tutorial_one_in_a_stored_room(server, "bea", "early")
    lock = WriteLock(server.database, table="room")
    ws.send('42["join","late"]')
    for index in range(20):
        ws.send(f'42["chat","after the join {index}"]')
    all_read(ws)
    stopped_while_locked(server, lock, "the server exited while a handler still waited on the store")
    stored = stored_rows(server.database, "SELECT conversation, body FROM message ORDER BY id")
    assert stored == [("room:late", f"after the join {index}") for index in range(20)]


def test_sigterm_gives_up_on_a_store_that_stays_locked_and_logs_what_it_lost():
    """A store held up past --shutdown-timeout (another process keeps the write lock) does not
    keep the server from stopping: it waits that long, logs how many messages it could not
    store, and exits. Runs on each store."""
    server = start_parley("--shutdown-timeout", "1.5")
    lock = chats_held_up_by_a_write_lock(server, [f"never stored {index}" for index in range(40)])
    try:
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        lock.release()
    assert status == 0
    assert 1.5 <= took < 5, f"stopped after {took:.1f} s"
    log = Path(server.log).read_text()
    assert "stopping without storing 40 received messages" in log, log[-2000:]
    assert stored_rows(server.database, "SELECT body FROM message") == []

    for bad in ("-1", "nan", "1e300", "soon"):
        assert "--shutdown-timeout" in refused_serve("--shutdown-timeout", bad)


def test_the_readme_python_example_runs(parley):
    """The README's python-socketio example, run as written against `parley serve`."""
    import re
    import subprocess
    import sys
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert "http://localhost:3000" in example
    script = example.replace("http://localhost:3000", parley.url)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "ada: hello, lobby" in result.stdout


def test_head_healthz_has_no_body(parley):
    response = requests.head(parley.url + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.content == b""
    # The connection is still usable afterwards (no stray body bytes).
    with requests.Session() as http:
        assert http.head(parley.url + "/healthz", timeout=5).status_code == 200
        assert http.get(parley.url + "/healthz", timeout=5).json()["status"] == "ok"


def test_database_url_is_the_default_store_and_bad_postgres_urls_fail_clearly(tmp_path):
    """Without --database, DATABASE_URL names the store; a PostgreSQL URL that is malformed, or
    whose server cannot be reached, stops `parley serve` with a message saying so."""
    import os
    import subprocess

    from conftest import bin_dir, free_port, wait_until_listening, Server

    database = tmp_path / "from-env.sqlite"
    port = free_port()
    env = {**os.environ, "DATABASE_URL": str(database)}
    process = subprocess.Popen([str(bin_dir() / "parley"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(process, port)
    try:
        wait_until_listening(port, process)
        assert database.exists()
        assert not (tmp_path / "parley.sqlite").exists()
    finally:
        assert server.stop() == 0

    assert "postgres://user:password@host:5432/database" in refused_serve("--database", "postgres:///chat")

    closed = free_port()  # nothing listens there
    started = time.time()
    unreachable = refused_serve("--database", f"postgres://parley@127.0.0.1:{closed}/chat?sslmode=disable")
    assert f"Could not reach PostgreSQL at 127.0.0.1:{closed}" in unreachable
    assert "Connection refused" in unreachable
    assert time.time() - started < 40


def test_a_sqlite_file_that_cannot_be_opened_stops_serve_with_its_path_and_why(tmp_path):
    """A missing directory, or a file that is not a SQLite database, stops `parley serve` with a
    message naming the file and the reason; the file is left as it was."""
    missing = tmp_path / "no-such-directory" / "chat.sqlite"
    said = refused_serve("--database", str(missing))
    assert f"Could not open the SQLite database {missing}: it cannot be opened or created" in said
    assert not missing.parent.exists()

    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just someone's notes\n" * 100)
    said = refused_serve("--database", str(notes))
    assert f"Could not open the SQLite database {notes}: it is not a SQLite database." in said
    assert notes.read_text() == "not a database, just someone's notes\n" * 100


def refused_serve(*flags: str) -> str:
    """`parley serve` with flags that stop it before it listens: asserts that it fails, and
    returns what it wrote to stderr."""
    import subprocess

    from conftest import bin_dir, free_port

    result = subprocess.run([str(bin_dir() / "parley"), "serve", "--port", str(free_port()), *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    return result.stderr


def test_sqlite_commits_are_synced_unless_normal_is_asked(tmp_path):
    """`parley serve` on a SQLite file syncs each commit by default and says so on start;
    `--sqlite-sync normal` is taken, anything else refused with what the option takes."""
    for flags, said in (((), "commits synced: full"), (("--sqlite-sync", "normal"), "commits synced: normal")):
        server = start_parley(*flags, database=str(tmp_path / f"sync-{len(flags)}.sqlite"))
        try:
            with open(server.log, errors="replace") as log:
                assert said in log.read()
        finally:
            assert server.stop() == 0

    assert "--sqlite-sync is full or normal" in refused_serve("--sqlite-sync", "sometimes")


def test_messages_wait_for_another_process_writing_to_the_sqlite_file(tmp_path):
    """While another process holds the SQLite file's write lock (an operator's `sqlite3` shell in
    a transaction), a message waits for it instead of failing; held past the 5 s busy timeout,
    the sender gets `store_unavailable` once (so does any other write, a new room here), the
    server stays up and nothing stored is lost."""
    import sqlite3

    database = str(tmp_path / "shared.sqlite")
    server = start_parley(database=database)
    client = connect(server, ["websocket"])

    def send(text: str, reply: dict) -> threading.Thread:
        sender = threading.Thread(target=lambda: reply.update(
            client.call("message:send", {"room": "shared", "text": text}, timeout=30)))
        sender.start()
        return sender

    try:
        assert client.call("room:join", {"room": "shared"}, timeout=5)["ok"]
        assert client.call("message:send", {"room": "shared", "text": "before"}, timeout=5)["ok"]

        lock = sqlite3.connect(database, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        reply = {}
        sender = send("during", reply)
        time.sleep(1.5)
        assert sender.is_alive(), f"answered while the file was locked: {reply}"
        lock.execute("ROLLBACK")
        sender.join(10)
        assert reply["ok"] and reply["message"]["text"] == "during"

        lock.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        reply = {}
        sender = send("too late", reply)
        sender.join(12)
        waited = time.monotonic() - started
        lock.execute("ROLLBACK")
        lock.close()
        assert reply == {"ok": False, "error": {"code": "store_unavailable", "message": STORE_UNAVAILABLE}}
        # One wait of the busy timeout, not one more for the message on its own.
        assert 4.5 < waited < 9, waited

        # Any other write is refused the same way: a new room, here.
        lock = sqlite3.connect(database, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        refused = client.call("room:join", {"room": "elsewhere"}, timeout=30)
        lock.execute("ROLLBACK")
        lock.close()
        assert refused == {"ok": False, "error": {"code": "store_unavailable", "message": STORE_UNAVAILABLE}}

        assert server.alive()
        # Both refusals counted for the operator, and no others.
        text = requests.get(server.url + "/metrics", timeout=5).text
        assert metric(text, "parley_store_refusals_total", '{store="sqlite",reason="locked"}') == 2
        assert metric(text, "parley_store_refusals_total", '{store="sqlite",reason="cannot_write"}') == 0
        assert client.call("message:send", {"room": "shared", "text": "after"}, timeout=5)["ok"]
        history = client.call("history:get", {"room": "shared"}, timeout=5)
        assert [message["text"] for message in history["messages"]] == ["before", "during", "after"]
    finally:
        client.disconnect()
        assert server.stop() == 0


def test_the_deployment_guide_lists_every_option_of_serve():
    """docs/DEPLOYMENT.md's option table names each option `parley serve --help` lists, and no
    option that does not exist."""
    import re
    import subprocess

    from conftest import ROOT, bin_dir

    help_text = subprocess.check_output([str(bin_dir() / "parley"), "serve", "--help"], text=True)
    options = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M)) - {"--help"}
    assert "--node-name" in options and "--database" in options
    guide = (ROOT / "docs" / "DEPLOYMENT.md").read_text()
    table = guide.split("## Every option", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z0-9-]+)`", table, re.M))
    assert documented == options
