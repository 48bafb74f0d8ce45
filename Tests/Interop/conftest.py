"""Fixtures: real Parley processes on loopback ports, for clients nobody here wrote."""

import contextlib
import os
import random
import socket
import subprocess
import time
from pathlib import Path

import engineio
import pytest
import requests
import socketio

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / ".test-artifacts" / "logs"


def bin_dir() -> Path:
    configured = os.environ.get("PARLEY_BIN_DIR")
    if configured:
        return Path(configured)
    out = subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=ROOT, text=True)
    return Path(out.strip())


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port below the ephemeral range, never one handed out before in this
    run: two calls made before a server binds (a test bed's two ports) must not agree."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port")


STARTED: list["Server"] = []


class Server:
    """A server process; `url` is its Socket.IO base URL."""

    def __init__(self, process: subprocess.Popen, port: int, engine_port: int | None = None, log: str | None = None):
        self.process = process
        self.log = log
        self.port = port
        self.engine_port = engine_port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.stopping = False
        STARTED.append(self)

    def died(self) -> str | None:
        """If the process ended without being stopped: its exit status and the end of its log."""
        if self.stopping or self.process.poll() is None:
            return None
        self.stopping = True  # reported once
        tail = ""
        if self.log and os.path.exists(self.log):
            with open(self.log, errors="replace") as f:
                tail = "".join(f.readlines()[-40:])
        return f"server on port {self.port} exited with {self.process.returncode}; log {self.log}:\n{tail}"

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int:
        self.stopping = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; its log is in {LOGS}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def log_file(name: str):
    """Where a server's standard error goes, kept for reading after a failure."""
    LOGS.mkdir(parents=True, exist_ok=True)
    return open(LOGS / f"{name}-{time.strftime('%H%M%S')}-{random.randint(0, 99999):05d}.log", "w")


def start_testbed(**options) -> Server:
    """The test-bed server built on the EngineIO and SocketIO libraries alone."""
    port, engine_port = free_port(), free_port()
    args = [str(bin_dir() / "socketio-testbed"), "--port", str(port), "--engine-port", str(engine_port)]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    args += ["--log-level", os.environ.get("PARLEY_TEST_LOG_LEVEL", "info")]
    log = log_file("testbed")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True)
    server = Server(process, port, engine_port, log=log.name)
    wait_until_listening(port, process)
    wait_until_listening(engine_port, process)
    return server


# What a client is told when the server's database does not answer in time (`store_unavailable`).
STORE_UNAVAILABLE = "The server's database is not answering just now; nothing was changed. Try again in a moment."
# The same code when the database cannot write (a full disk).
STORE_CANNOT_WRITE = ("The server's database cannot store anything just now (its disk may be full); nothing was "
                      "changed. Try again later.")


def postgres_store() -> bool:
    """Whether servers run on PostgreSQL (`PARLEY_TEST_STORE=postgres`, set by scripts/test for
    its second pass of the end-to-end suite) rather than on SQLite files."""
    return os.environ.get("PARLEY_TEST_STORE") == "postgres"


def fresh_postgres_database() -> str:
    """A new, empty database on the test PostgreSQL server (PARLEY_TEST_POSTGRES_URL); its URL."""
    admin = os.environ["PARLEY_TEST_POSTGRES_URL"]
    name = f"parley_e2e_{random.randint(0, 1 << 48):012x}"
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    base, _, query = admin.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def start_parley(
    *flags: str, env: dict | None = None, database: str | None = None, port: int | None = None, preexec_fn=None,
    sign_in_limit: str | None = "0",
) -> Server:
    """The real `parley serve`, on a fresh database (a SQLite file, or a PostgreSQL database
    when `postgres_store()`) unless `database` names one; `preexec_fn` runs in the child before
    it starts the server, as `subprocess.Popen` runs it. Tests register accounts from one
    address faster than a person would, so the limit on sign-ins per address is off unless
    `sign_in_limit` gives one (`None`: the server's default)."""
    port = port or free_port()
    if database is None and postgres_store():
        database = fresh_postgres_database()
    if database is None:
        LOGS.mkdir(parents=True, exist_ok=True)
        database = str(LOGS.parent / f"parley-{port}-{random.randint(0, 999999)}.sqlite")
    limit = ["--sign-in-limit", sign_in_limit] if sign_in_limit is not None else []
    args = [str(bin_dir() / "parley"), "serve", "--host", "127.0.0.1", "--port", str(port), "--database", database, *limit, *flags]
    log = log_file("parley")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env, preexec_fn=preexec_fn)
    server = Server(process, port, log=log.name)
    wait_until_listening(port, process)
    server.database = database
    return server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report names every server that ended without being stopped, with the
    end of its log: a crash shows as itself, not as a client's "connection reset"."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        dead = [text for server in STARTED if (text := server.died())]
        if dead:
            report.sections.append(("servers that ended on their own", "\n".join(dead)))


@pytest.fixture(scope="module")
def testbed():
    server = start_testbed()
    yield server
    server.stop()


@contextlib.contextmanager
def testbed_maker():
    """A function that starts test beds, all stopped when the context ends."""
    started = []

    def make(**options):
        server = start_testbed(**options)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def make_testbed():
    with testbed_maker() as make:
        yield make


@pytest.fixture(scope="module")
def make_testbed_module():
    with testbed_maker() as make:
        yield make


@pytest.fixture(scope="module")
def parley():
    server = start_parley()
    yield server
    server.stop()


class _InOrderEngineIOClient(engineio.Client):
    """python-engineio runs each message's handler on a thread of its own, so two messages can
    be handled out of order. Tests that assert order handle them in the read loop instead."""

    def _trigger_event(self, event, *args, **kwargs):
        kwargs.pop("run_async", None)
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    """A python-socketio client whose handlers see events in the order they arrived. Its
    handlers must not block (they run in the client's read loop)."""

    def _engineio_client_class(self):
        return _InOrderEngineIOClient


def eventually(check, timeout: float = 5.0, interval: float = 0.02):
    """Polls `check` until it returns a truthy value; returns it, or fails after `timeout`."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
