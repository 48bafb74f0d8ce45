"""python-socketio's Client and AsyncClient against the real server: every feature of the
Socket.IO layer, over polling, WebSocket, and polling upgraded to WebSocket."""

import asyncio
import threading
import time

import pytest
import socketio

from conftest import eventually

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}

PAYLOAD = {"text": "héllo ☃ \"quoted\"\n", "n": 42, "f": -1.5, "ok": True, "none": None, "list": [1, [2, {"x": "y"}]]}


def connect(server, transports, **kwargs):
    client = socketio.Client(reconnection=False)
    client.connect(server.url, transports=transports, wait_timeout=5, **kwargs)
    return client


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_transport_json_binary_and_acks_both_ways(testbed, mode):
    client = connect(testbed, TRANSPORTS[mode])
    try:
        if mode == "upgrade":
            eventually(lambda: client.transport() == "websocket")
            assert client.call("whoami", timeout=5)["transport"] == "websocket"
        else:
            assert client.transport() == mode
        # JSON both ways, with an ack from the server.
        assert client.call("echo", PAYLOAD, timeout=5) == PAYLOAD
        assert client.call("echo", ("a", 1, None), timeout=5) == ("a", 1, None)
        # Binary both ways: as an argument, and nested inside an object.
        blob = bytes(range(256)) * 4
        assert client.call("echo", blob, timeout=5) == blob
        nested = {"name": "pic.png", "data": b"\x89PNG\r\n\x1a\n", "parts": [b"\x00", "text"]}
        assert client.call("echo", nested, timeout=5) == nested
        # An event without ack comes back as an event.
        received = []
        client.on("echo", lambda *args: received.append(args))
        client.emit("echo", ({"k": "v"}, b"\x01\x02"))
        eventually(lambda: received)
        assert received[0] == ({"k": "v"}, b"\x01\x02")
        # An ack the server asks the client for.
        client.on("question", lambda *args: {"answer": list(args)})
        assert client.call("ask-me", ("why", 7), timeout=5) == {"answer": ["why", 7]}
    finally:
        client.disconnect()


def test_rooms_and_broadcasts(testbed):
    a, b, c = (connect(testbed, TRANSPORTS[mode]) for mode in ("websocket", "polling", "upgrade"))
    inbox = {name: [] for name in "abc"}
    for name, client in zip("abc", (a, b, c)):
        client.on("room-message", lambda *args, name=name: inbox[name].append(("room", args)))
        client.on("broadcast", lambda *args, name=name: inbox[name].append(("all", args)))
    try:
        rooms = a.call("join", "r1", timeout=5)
        # Each socket is in the room of its own id, which is not the Engine.IO session id.
        assert rooms == sorted(["r1", a.get_sid()])
        assert a.get_sid() != a.eio.sid
        b.call("join", "r1", timeout=5)
        c.call("join", "r2", timeout=5)
        # To a room, all but the sender.
        a.call("to-room", ("r1", "hello r1"), timeout=5)
        eventually(lambda: inbox["b"])
        # To a room, sender included.
        b.call("to-all-in", ("r1", "everyone in r1"), timeout=5)
        eventually(lambda: len(inbox["a"]) == 1 and len(inbox["b"]) == 2)
        # To everyone but the sender.
        c.call("broadcast", "from c", timeout=5)
        eventually(lambda: len(inbox["a"]) == 2 and len(inbox["b"]) == 3)
        time.sleep(0.2)
        assert inbox["a"] == [("room", ("everyone in r1",)), ("all", ("from c",))]
        assert inbox["b"] == [("room", ("hello r1",)), ("room", ("everyone in r1",)), ("all", ("from c",))]
        assert inbox["c"] == []
        # After leaving, no more room messages.
        b.call("leave", "r1", timeout=5)
        a.call("to-all-in", ("r1", "after leave"), timeout=5)
        eventually(lambda: len(inbox["a"]) == 3)
        time.sleep(0.2)
        assert len(inbox["b"]) == 3
    finally:
        for client in (a, b, c):
            client.disconnect()


def test_namespace_handlers_run_for_every_socket_after_its_own(testbed):
    a, b = connect(testbed, ["websocket"]), connect(testbed, ["polling"])
    try:
        # The socket's own handler runs first, then the namespace's, for the same event.
        assert a.call("order", timeout=5) == (["socket"], "namespace")
        assert b.call("join", "shared", timeout=5) == sorted(["shared", b.get_sid()])
        # The namespace's disconnect handler sees the socket that left and the reason.
        gone = a.get_sid()
        a.emit("disconnect-me")
        eventually(lambda: (b.call("last-left", timeout=5) or {}).get("id") == gone)
        assert b.call("last-left", timeout=5) == {"id": gone, "reason": "server namespace disconnect"}
    finally:
        a.disconnect()
        b.disconnect()


def test_second_namespace_and_middleware(testbed):
    client = socketio.Client(reconnection=False)
    welcome = []
    client.on("welcome", lambda *args: welcome.append(args), namespace="/admin")
    client.connect(testbed.url, namespaces=["/", "/admin"], auth={"token": "secret"}, transports=["websocket"], wait_timeout=5)
    try:
        eventually(lambda: welcome)
        assert welcome[0] == ("admin",)
        assert client.call("echo", "on admin", namespace="/admin", timeout=5) == "on admin"
        assert client.call("echo", "on main", timeout=5) == "on main"
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", ["polling", "websocket"])
def test_middleware_refusal_carries_message_and_data(testbed, mode):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data), namespace="/admin")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(testbed.url, namespaces=["/admin"], auth={"token": "wrong"}, transports=TRANSPORTS[mode], wait_timeout=3)
    eventually(lambda: errors)
    assert errors[0] == {"message": "not authorized", "data": {"code": 401}}
    client.disconnect()


def test_unknown_namespace_is_refused(testbed):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data), namespace="/nowhere")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(testbed.url, namespaces=["/nowhere"], transports=["websocket"], wait_timeout=3)
    eventually(lambda: errors)
    assert errors[0] == {"message": "Invalid namespace"}
    client.disconnect()


def test_disconnect_and_reconnect(testbed):
    client = socketio.Client(reconnection=False)
    reasons = []
    client.on("disconnect", lambda *args: reasons.append(args))
    client.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    first = client.get_sid()
    client.disconnect()
    client.connect(testbed.url, transports=["polling"], wait_timeout=5)
    assert client.get_sid() != first
    assert client.call("echo", "again", timeout=5) == "again"
    # The server removes the socket from the namespace.
    client.emit("disconnect-me")
    eventually(lambda: len(reasons) == 2)
    assert reasons[1] == (client.reason.SERVER_DISCONNECT,)
    client.disconnect()


def test_automatic_reconnection_after_transport_loss(testbed):
    client = socketio.Client(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2)
    connects = []
    client.on("connect", lambda: connects.append(time.time()))
    client.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    try:
        client.emit("drop-transport")
        eventually(lambda: len(connects) == 2, timeout=10)
        eventually(lambda: client.connected, timeout=5)
        assert client.call("echo", "back", timeout=5) == "back"
    finally:
        client.disconnect()


class RecoveringClient(socketio.Client):
    """python-socketio does not implement connection state recovery itself: this keeps the
    pid from the CONNECT answer and the last offset received, and presents both through the
    public `auth` callable on reconnection, as the JavaScript client does."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pid = None
        self.offset = None

    def _handle_connect(self, namespace, data):
        if (namespace or "/") == "/" and isinstance(data, dict) and data.get("pid"):
            self.pid = data["pid"]
        super()._handle_connect(namespace, data)

    def auth(self):
        return {"pid": self.pid, "offset": self.offset} if self.pid and self.offset else {}


def test_connection_state_recovery_replays_missed_broadcasts(make_testbed):
    server = make_testbed(recovery=30)
    sender = connect(server, ["websocket"])
    client = RecoveringClient(reconnection=True, reconnection_delay=0.3, reconnection_delay_max=0.3)
    received = []
    connected = threading.Event()
    disconnected = threading.Event()

    def on_message(*args):
        text, offset = args
        client.offset = offset
        received.append(text)

    client.on("room-message", on_message)
    client.on("connect", connected.set)
    client.on("disconnect", lambda *args: disconnected.set())
    client.connect(server.url, transports=["websocket"], auth=client.auth, wait_timeout=5)
    try:
        before = client.call("whoami", timeout=5)
        assert before["recovered"] is False
        client.call("join", "news", timeout=5)
        client.call("remember", "kept across reconnection", timeout=5)
        sender.call("to-all-in", ("news", "m1"), timeout=5)
        eventually(lambda: received == ["m1"])
        connected.clear()
        client.emit("drop-transport")
        assert disconnected.wait(5)
        # Sent while the client is away.
        sender.call("to-all-in", ("news", "m2"), timeout=5)
        sender.call("to-all-in", ("news", "m3"), timeout=5)
        assert connected.wait(10)
        eventually(lambda: len(received) == 3)
        after = client.call("whoami", timeout=5)
        assert received == ["m1", "m2", "m3"]
        assert after["recovered"] is True
        assert after["id"] == before["id"]
        assert "news" in after["rooms"]
        assert after["data"] == {"note": "kept across reconnection"}
    finally:
        client.disconnect()
        sender.disconnect()


@pytest.mark.parametrize("mode", TRANSPORTS)
def test_async_client(testbed, mode):
    async def scenario():
        client = socketio.AsyncClient(reconnection=False)
        questions = []

        async def question(*args):
            questions.append(args)
            return "async answer"

        client.on("question", question)
        await client.connect(testbed.url, transports=TRANSPORTS[mode], wait_timeout=5)
        try:
            if mode == "upgrade":
                for _ in range(100):
                    if client.transport() == "websocket":
                        break
                    await asyncio.sleep(0.05)
                assert client.transport() == "websocket"
            assert await client.call("echo", PAYLOAD, timeout=5) == PAYLOAD
            assert await client.call("echo", b"\xff\x00bin", timeout=5) == b"\xff\x00bin"
            assert await client.call("ask-me", "q", timeout=5) == "async answer"
            assert questions == [("q",)]
            other = socketio.AsyncClient(reconnection=False)
            got = asyncio.Event()
            other.on("broadcast", lambda *args: got.set())
            await other.connect(testbed.url, transports=["websocket"], wait_timeout=5)
            await client.call("broadcast", "hi", timeout=5)
            await asyncio.wait_for(got.wait(), 5)
            await other.disconnect()
        finally:
            await client.disconnect()

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_handlers_start_on_the_event_loop_and_a_suspended_one_holds_up_only_its_socket(testbed, mode):
    a, b = connect(testbed, TRANSPORTS[mode]), connect(testbed, TRANSPORTS[mode])
    try:
        # An idle socket's event is handled on its connection's event loop, with no hop to a
        # thread pool. Right after connecting, the socket may still be running its connection
        # handlers on the pool (the connect is handled there); an event that arrives meanwhile
        # joins that run, so ask until the socket is idle. Before d1b6791 the answer was never True.
        eventually(lambda: a.call("where", timeout=5) is True)
        # A handler that suspends frees the loop: other sockets are answered meanwhile...
        rested = []
        started = time.monotonic()
        a.emit("nap", 1500, callback=lambda answer: rested.append((answer, time.monotonic() - started)))
        assert b.call("echo", "quick", timeout=5) == "quick"
        assert time.monotonic() - started < 1.0 and not rested
        # ...while the napping socket's next event waits for its nap, in order.
        assert a.call("echo", "after", timeout=5) == "after"
        assert rested and rested[0][0] == "rested" and rested[0][1] >= 1.4
    finally:
        a.disconnect()
        b.disconnect()
