"""Two Parley nodes and one PostgreSQL behind nginx, configured as docs/DEPLOYMENT.md says:
python-socketio clients with polling, polling + upgrade and WebSocket only are spread over the
nodes and chat across them; then one node is killed with SIGKILL while messages flow, its clients
come back through nginx on the other node, and no acknowledged message is lost or doubled."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
import socketio

from conftest import LOGS, ROOT, InOrderClient, eventually, free_port, fresh_postgres_database, start_parley, wait_until_listening
from test_chat import Chatter, register
from test_tutorials import Recorder

MODES = [["polling"], ["polling", "websocket"], ["websocket"]]


def documented_nginx_config() -> str:
    """The nginx configuration of docs/DEPLOYMENT.md, as written there."""
    text = (ROOT / "docs" / "DEPLOYMENT.md").read_text()
    block = text.split("<!-- nginx: begin -->", 1)[1].split("<!-- nginx: end -->", 1)[0]
    return re.search(r"```nginx\n(.*?)```", block, re.S).group(1)


class Nginx:
    """nginx in front of nodes a and b, with the documented configuration and these ports."""

    def __init__(self, a_port: int, b_port: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="parley-nginx-")
        os.chmod(self.dir, 0o777)
        site = (documented_nginx_config()
                .replace("127.0.0.1:3001", f"127.0.0.1:{a_port}")
                .replace("127.0.0.1:3002", f"127.0.0.1:{b_port}")
                .replace("listen 80;", f"listen 127.0.0.1:{self.port};"))
        conf = Path(self.dir) / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
{site}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen([nginx, "-p", self.dir, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_listening(self.port, self.process)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        LOGS.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(self.dir) / "error.log", LOGS / f"nginx-{self.port}.log")
        shutil.rmtree(self.dir, ignore_errors=True)


def start_cluster():
    database = fresh_postgres_database()
    a = start_parley("--node-name", "a", "--cookie", "parley_node", database=database)
    b = start_parley("--node-name", "b", "--cookie", "parley_node", database=database)
    return a, b, Nginx(a.port, b.port)


def sessions(node) -> int:
    return requests.get(node.url + "/healthz", timeout=5).json()["sessions"]


def token_for(node, handle):
    return register(node, handle)["token"]


def test_clients_through_nginx_are_spread_over_the_nodes_and_chat_across_them():
    a, b, nginx = start_cluster()
    chatters = []
    try:
        # Accounts are made on the nodes directly, so that nginx's round robin alternates the
        # chat connections between a and b.
        for index, mode in enumerate(MODES * 2):
            token = token_for(a if index % 2 else b, f"lb_{index}")
            chatters.append(Chatter(nginx, auth={"token": token}, transports=tuple(mode)))
        assert sessions(a) > 0 and sessions(b) > 0, "nginx sent every client to one node"
        assert sessions(a) + sessions(b) == len(chatters)
        # Polling clients got the cookie of the node that holds their session.
        for chatter in chatters:
            cookie = chatter.client.eio.http.cookies.get("parley_node") if chatter.client.eio.http else None
            if chatter.client.transport() == "polling":
                assert cookie in ("a", "b")
        for chatter in chatters:
            chatter.ok("room:join", {"room": "behind-nginx"})
        for index, chatter in enumerate(chatters):
            chatter.ok("message:send", {"room": "behind-nginx", "text": f"from {index}"})
        expected = {f"from {index}" for index in range(len(chatters))}
        for chatter in chatters:
            eventually(lambda chatter=chatter: {m["text"] for m in chatter.messages} == expected, timeout=10)

        # Member lists count the clients of both nodes.
        handles = [f"lb_{index}" for index in range(len(chatters))]
        for chatter in chatters:
            assert [m["name"] for m in chatter.ok("room:members", {"room": "behind-nginx"})["members"]] == handles

        # Direct messages between friends connected through nginx.
        first, last = chatters[0], chatters[-1]
        first.ok("friend:request", {"handle": "lb_5"})
        eventually(lambda: last.friend_events)
        last.ok("friend:accept", {"handle": "lb_0"})
        first.ok("dm:send", {"to": "lb_5", "text": "via nginx"})
        eventually(lambda: [m["text"] for m in last.dms] == ["via nginx"])

        # The first tutorial's protocol, one client with each transport set.
        recorders = [Recorder(nginx, mode) for mode in MODES]
        try:
            for index, recorder in enumerate(recorders):
                recorder.emit("login", f"t{index}")
                recorder.emit("join", "t1-nginx")
            time.sleep(0.5)
            recorders[0].emit("chat", "hello everyone")
            for recorder in recorders:
                eventually(lambda recorder=recorder: recorder.events == [("message", [{"user": "t0", "message": "hello everyone"}])])
        finally:
            for recorder in recorders:
                recorder.close()

        # The second tutorial's protocol: names are unique across the nodes, and every client
        # gets the same room data.
        before = sessions(a), sessions(b)
        recorders = [Recorder(nginx, mode) for mode in MODES]
        clashes = [Recorder(nginx, mode) for mode in MODES[1:]]
        try:
            assert sessions(a) > before[0] and sessions(b) > before[1], "the tutorial 2 clients are all on one node"
            for index, recorder in enumerate(recorders):
                assert recorder.call("join", {"name": f"t2_{index}", "room": "t2-nginx"}) is None
            time.sleep(0.3)
            for clash in clashes:
                assert clash.call("join", {"name": "T2_0", "room": "t2-nginx"}) == "Username is taken."
            users = [{"id": r.client.get_sid(), "name": f"t2_{i}", "room": "t2-nginx"} for i, r in enumerate(recorders)]
            for recorder in recorders:
                eventually(lambda recorder=recorder: recorder.events[-1] == ("roomData", [{"room": "t2-nginx", "users": users}]))
        finally:
            for recorder in recorders + clashes:
                recorder.close()
    finally:
        for chatter in chatters:
            chatter.close()
        nginx.stop()
        a.stop()
        b.stop()


class Resilient:
    """A python-socketio client through nginx that, like a careful app, replaces its connection
    with a new one whenever the old one fails (the library's own reconnection, racing calls made
    from another thread, lost acks in our runs)."""

    def __init__(self, url, token, mode):
        self.url, self.token, self.mode = url, token, mode
        self.client = None
        self.connects = 0

    def make(self):
        return socketio.Client(reconnection=False)

    def connected(self):
        while self.client is None or not self.client.connected:
            self.drop()
            client = self.make()
            try:
                client.connect(self.url, auth={"token": self.token}, transports=self.mode, wait_timeout=5)
                self.client = client
                self.connects += 1
                self.client.call("room:join", {"room": "kill-lb"}, timeout=5)
            except Exception:
                time.sleep(0.2)
        return self.client

    def drop(self):
        if self.client is not None:
            try:
                self.client.disconnect()
            except Exception:
                pass
        self.client = None


class Sender(Resilient):
    """Sends numbered messages with client ids, retrying each until acknowledged."""

    def __init__(self, url, token, mode, name, count):
        super().__init__(url, token, mode)
        self.name, self.count = name, count
        self.acked = {}
        self.errors = []
        self.connected()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        for index in range(self.count):
            text = f"{self.name}-{index}"
            while True:
                try:
                    reply = self.connected().call("message:send", {"room": "kill-lb", "text": text, "clientId": text}, timeout=5)
                    if reply.get("ok"):
                        self.acked[text] = reply["message"]["id"]
                        break
                    self.errors.append(str(reply))
                except Exception as error:
                    self.errors.append(f"{type(error).__name__} {error}")
                    self.drop()
            time.sleep(0.02)


class Receiver(Resilient):
    """Records the ids of the room messages it gets, live or replayed from its inbox, and
    acknowledges them; keeps a connection until stopped."""

    def __init__(self, url, token, mode):
        super().__init__(url, token, mode)
        self.ids = set()
        self.stopped = threading.Event()
        self.connected()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def make(self):
        client = InOrderClient(reconnection=False)
        client.on("message", lambda payload: self.on_message(client, payload))
        return client

    def on_message(self, client, payload):
        self.ids.add(payload["id"])
        client.emit("message:delivered", {"ids": [payload["id"]]})

    def run(self):
        while not self.stopped.is_set():
            self.connected()
            time.sleep(0.1)
        self.drop()


def test_a_node_killed_behind_nginx_loses_and_doubles_no_acknowledged_message():
    a, b, nginx = start_cluster()
    senders, receivers = [], []
    try:
        handles = [f"kl_s{index}" for index in range(4)] + [f"kl_r{index}" for index in range(4)]
        tokens = {handle: token_for(a, handle) for handle in handles}
        # Members of the room before any message, so that every message is in their inboxes.
        for handle in handles[4:]:
            joiner = Chatter(a, auth={"token": tokens[handle]})
            joiner.ok("room:join", {"room": "kill-lb"})
            joiner.close()
        for index in range(4):
            receivers.append(Receiver(nginx.url, tokens[f"kl_r{index}"], MODES[index % 3]))
        for index in range(4):
            senders.append(Sender(nginx.url, tokens[f"kl_s{index}"], MODES[index % 3], f"s{index}", 60))
        assert sessions(a) > 0 and sessions(b) > 0
        for sender in senders:
            sender.thread.start()
        eventually(lambda: sum(len(s.acked) for s in senders) >= 40, timeout=20)
        b.process.send_signal(signal.SIGKILL)
        b.process.wait(timeout=10)
        for sender in senders:
            sender.thread.join(timeout=90)
            assert not sender.thread.is_alive(), f"{sender.name} could not finish: {len(sender.acked)} acked, errors {sender.errors[-5:]}"
        acked = {}
        for sender in senders:
            acked.update(sender.acked)
        assert len(acked) == 4 * 60
        # Every connection now lives on node a.
        eventually(lambda: sessions(a) == len(senders) + len(receivers), timeout=20)
        # Nothing doubled: each client id was stored once, and the history is exactly what was
        # acknowledged.
        reader = Chatter(a, auth={"token": tokens["kl_r0"]})
        history, before = [], None
        while True:
            page = reader.ok("history:get", {"room": "kill-lb", "limit": 100, **({"before": before} if before else {})})
            history = page["messages"] + history
            if not page["more"]:
                break
            before = page["messages"][0]["id"]
        reader.close()
        assert sorted(m["text"] for m in history) == sorted(acked)
        assert {m["text"]: m["id"] for m in history} == acked
        # Nothing lost: every receiver gets every acknowledged message, live or from its inbox
        # when it next connects. A message that b committed and acknowledged but had not yet
        # published when it was killed reaches the receivers on a only that way
        # (docs/DEPLOYMENT.md, "What a node loses when it dies"), so each receiver connects once
        # more before the check.
        for receiver in receivers:
            receiver.stopped.set()
            receiver.thread.join(timeout=10)
            receiver.connected()
        for receiver in receivers:
            eventually(lambda receiver=receiver: set(acked.values()) <= receiver.ids, timeout=20)
    finally:
        for receiver in receivers:
            receiver.stopped.set()
            receiver.thread.join(timeout=10)
            receiver.drop()
        for sender in senders:
            sender.drop()
        nginx.stop()
        a.stop()
        b.stop()
