"""The Engine.IO wire rules, checked byte by byte: HTTP errors, the one-GET/one-POST rule,
maxPayload on both transports, the heartbeat, the upgrade, CORS, and the plain Engine.IO
library on its own path (with python-engineio's client)."""

import json
import socket
import threading
import time

import engineio
import pytest
import requests
import socketio
import websocket

from conftest import eventually
from wire import SEP, Polling, joined_polling, joined_websocket, open_websocket, raw_http


def error_of(response):
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "params,method,expected",
    [
        ({"EIO": "4"}, "GET", (400, {"code": 0, "message": "Transport unknown"})),
        ({"EIO": "4", "transport": "smoke"}, "GET", (400, {"code": 0, "message": "Transport unknown"})),
        ({"EIO": "4", "transport": "polling", "sid": "nope"}, "GET", (400, {"code": 1, "message": "Session ID unknown"})),
        ({"EIO": "4", "transport": "polling", "sid": "nope"}, "POST", (400, {"code": 1, "message": "Session ID unknown"})),
        ({"EIO": "4", "transport": "polling"}, "POST", (400, {"code": 2, "message": "Bad handshake method"})),
        ({"EIO": "4", "transport": "polling"}, "PUT", (400, {"code": 2, "message": "Bad handshake method"})),
        ({"EIO": "4", "transport": "websocket"}, "GET", (400, {"code": 3, "message": "Bad request"})),
        ({"EIO": "3", "transport": "polling"}, "GET", (400, {"code": 5, "message": "Unsupported protocol version"})),
        ({"transport": "polling"}, "GET", (400, {"code": 5, "message": "Unsupported protocol version"})),
    ],
)
def test_http_error_codes(testbed, params, method, expected):
    response = requests.request(method, testbed.url + "/socket.io/", params=params, timeout=5)
    assert error_of(response) == expected
    assert response.headers["Content-Type"] == "application/json"


def test_polling_request_for_a_websocket_session_is_bad(testbed):
    ws = open_websocket(testbed.ws_url)
    sid = json.loads(ws.recv()[1:])["sid"]
    response = requests.get(testbed.url + "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, timeout=5)
    assert error_of(response) == (400, {"code": 3, "message": "Bad request"})
    ws.close()


def test_forbidden_origin(make_testbed):
    server = make_testbed(cors="https://chat.example")
    # WebSocket from another origin: refused before the upgrade.
    request = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example\r\n\r\n"
    ).encode()
    answer = raw_http(server.port, request, read_timeout=1)
    assert answer.startswith(b"HTTP/1.1 403")
    assert answer.endswith(b'{"code":4,"message":"Forbidden"}')
    with pytest.raises(websocket.WebSocketBadStatusException):
        open_websocket(server.ws_url, origin="https://evil.example")
    # The allowed origin opens a WebSocket.
    ws = open_websocket(server.ws_url, origin="https://chat.example")
    assert ws.recv().startswith("0{")
    ws.close()


def test_cors_preflight_and_credentials(make_testbed):
    server = make_testbed(cors="https://chat.example")
    base = server.url + "/socket.io/"
    preflight = requests.options(
        base, params={"EIO": "4", "transport": "polling"},
        headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=5,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://chat.example"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    handshake = requests.get(base, params={"EIO": "4", "transport": "polling"}, headers={"Origin": "https://chat.example"}, timeout=5)
    assert handshake.status_code == 200
    assert handshake.headers["Access-Control-Allow-Origin"] == "https://chat.example"
    assert handshake.headers["Access-Control-Allow-Credentials"] == "true"


def test_cors_is_off_by_default(testbed):
    response = requests.get(testbed.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Origin": "https://any.example"}, timeout=5)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = requests.options(testbed.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Origin": "https://any.example"}, timeout=5)
    assert preflight.status_code == 400


def test_polling_handshake_packets_and_ok(testbed):
    session = Polling(testbed.url)
    assert session.handshake["upgrades"] == ["websocket"]
    assert session.handshake["pingInterval"] == 25000
    assert session.handshake["pingTimeout"] == 20000
    assert session.handshake["maxPayload"] == 1000000
    post = session.post("40")
    assert post.status_code == 200 and post.text == "ok"
    connect = session.packets()
    assert connect[0].startswith('40{"sid":"')
    # Two packets in one POST; binary as base64 both ways.
    assert session.post('421["echo","a"]' + SEP + '451-2["echo",{"_placeholder":true,"num":0}]' + SEP + "bAAEC/w==").text == "ok"
    answers = []
    while len(answers) < 3:
        answers += session.packets()
    assert answers == ['431["a"]', '461-2[{"_placeholder":true,"num":0}]', "bAAEC/w=="]


def test_second_get_is_refused_and_closes_the_session(testbed):
    session = joined_polling(testbed.url)
    first = {}
    parked = threading.Thread(target=lambda: first.update(response=session.get()))
    parked.start()
    time.sleep(0.3)
    second = requests.get(session.base, params=session.params(), timeout=5)
    assert second.status_code == 400
    assert second.json()["code"] == 3
    parked.join(5)
    # The parked GET was answered with a close packet, and the session is gone.
    assert first["response"].text == "1"
    assert error_of(session.get()) == (400, {"code": 1, "message": "Session ID unknown"})


def test_second_post_is_refused_and_closes_the_session(testbed):
    session = joined_polling(testbed.url)
    query = f"/socket.io/?EIO=4&transport=polling&sid={session.sid}"
    # A POST whose body never finishes stays in flight...
    import socket as sockets
    slow = sockets.create_connection(("127.0.0.1", testbed.port))
    slow.sendall(f"POST {query} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n42[".encode())
    time.sleep(0.3)
    # ...so a second one is an overlap.
    second = requests.post(testbed.url + query, data=b'42["echo","x"]', timeout=5)
    assert second.status_code == 400
    assert second.json()["code"] == 3
    slow.close()
    eventually(lambda: session.get().status_code == 400)


def test_max_payload_over_polling_closes_only_that_client(make_testbed):
    server = make_testbed(max_payload=1000)
    bystander = joined_polling(server.url)
    session = Polling(server.url)
    session.post("40")
    session.packets()
    assert session.post('42["echo","' + "x" * 900 + '"]').text == "ok"
    response = session.post('42["echo","' + "x" * 2000 + '"]')
    assert response.status_code == 413
    assert error_of(session.get()) == (400, {"code": 1, "message": "Session ID unknown"})
    # The other client is untouched.
    assert bystander.post('421["echo","still here"]').text == "ok"
    assert bystander.packets() == ['431["still here"]']


def test_max_payload_over_websocket_closes_only_that_client(make_testbed):
    server = make_testbed(max_payload=1000)
    bystander = joined_websocket(server.ws_url)
    ws = open_websocket(server.ws_url)
    ws.recv()
    ws.send("40")
    ws.recv()
    ws.send('421["echo","' + "y" * 900 + '"]')
    assert ws.recv().startswith("431")
    ws.send('42["echo","' + "y" * 5000 + '"]')
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        for _ in range(5):
            frame = ws.recv()
            if frame == "":
                raise websocket.WebSocketConnectionClosedException()
    bystander.send('421["echo","fine"]')
    assert bystander.recv() == '431["fine"]'
    bystander.close()


def connected_websocket(server):
    ws = open_websocket(server.ws_url)
    ws.recv()
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def close_code(ws):
    """The status code of the close frame the server sends next."""
    opcode, data = ws.recv_data(control_frame=True)
    while opcode != websocket.ABNF.OPCODE_CLOSE:
        opcode, data = ws.recv_data(control_frame=True)
    return int.from_bytes(data[:2], "big")


def test_websocket_fragments_pings_and_protocol_errors(make_testbed):
    server = make_testbed(max_payload=1000)
    ws = connected_websocket(server)
    # A text message in three fragments, with a ping between two of them, arrives whole; the
    # ping is answered at once with its payload.
    ABNF = websocket.ABNF
    ws.send_frame(ABNF(fin=0, opcode=ABNF.OPCODE_TEXT, data='42["ec'))
    ws.send_frame(ABNF(fin=0, opcode=ABNF.OPCODE_CONT, data='ho","in '))
    ws.ping("are you there")
    ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_CONT, data='pieces"]'))
    assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PONG, b"are you there")
    assert ws.recv() == '42["echo","in pieces"]'
    # A frame split across TCP writes is read whole.
    frame = ABNF(fin=1, opcode=ABNF.OPCODE_TEXT, data='42["echo","slowly"]').format()
    for index in range(0, len(frame), 3):
        ws.sock.sendall(frame[index:index + 3])
        time.sleep(0.01)
    assert ws.recv() == '42["echo","slowly"]'
    ws.close()

    # An unmasked client frame is a protocol error: close 1002.
    ws = connected_websocket(server)
    ws.sock.sendall(b"\x81\x02hi")
    assert close_code(ws) == 1002
    # So is a continuation with no message to continue.
    ws = connected_websocket(server)
    ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_CONT, data="x"))
    assert close_code(ws) == 1002
    # A frame that announces more than maxPayload is refused from its header: close 1009.
    ws = connected_websocket(server)
    ws.sock.sendall(b"\x81\xfe" + (2000).to_bytes(2, "big") + b"mask")
    assert close_code(ws) == 1009
    # As is a message whose fragments add up to more.
    ws = connected_websocket(server)
    ws.send_frame(ABNF(fin=0, opcode=ABNF.OPCODE_TEXT, data="4" * 600))
    ws.send_frame(ABNF(fin=1, opcode=ABNF.OPCODE_CONT, data="2" * 600))
    assert close_code(ws) == 1009
    # The server is still there for everyone else.
    ws = connected_websocket(server)
    ws.send('421["echo","fine"]')
    assert ws.recv() == '431["fine"]'
    ws.close()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_ping_timeout_closes_a_silent_client(make_testbed, transport):
    server = make_testbed(ping_interval=200, ping_timeout=300)
    started = time.time()
    if transport == "polling":
        session = Polling(server.url)
        assert session.handshake["pingInterval"] == 200
        assert session.packets() == ["2"]
        # No pong: the session is closed within interval + timeout.
        eventually(lambda: session.get().status_code == 400, timeout=3)
    else:
        ws = open_websocket(server.ws_url)
        ws.recv()
        assert ws.recv() == "2"
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            while True:
                if ws.recv() == "":
                    raise websocket.WebSocketConnectionClosedException()
    assert time.time() - started < 3


def test_pongs_keep_a_session_alive(make_testbed):
    server = make_testbed(ping_interval=150, ping_timeout=300)
    ws = joined_websocket(server.ws_url)
    pings = 0
    deadline = time.time() + 1.5
    while time.time() < deadline:
        frame = ws.recv()
        if frame == "2":
            pings += 1
            ws.send("3")
    assert pings >= 5
    ws.send('421["echo","alive"]')
    assert ws.recv() == '431["alive"]'
    ws.close()


def test_upgrade_loses_and_reorders_nothing(testbed):
    """Events flow while the session upgrades: every one arrives once, in order."""
    session = joined_polling(testbed.url)
    count = 400
    received = []
    session.post(f'42["burst",{count}]')
    poller_done = threading.Event()

    def poll():
        # Long-poll until the upgrade ends the polling transport with a noop.
        while True:
            packets = session.packets()
            received.extend(p for p in packets if p.startswith("42"))
            if "6" in packets:
                break
        poller_done.set()

    poller = threading.Thread(target=poll)
    poller.start()
    ws = open_websocket(testbed.ws_url, sid=session.sid)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    assert poller_done.wait(5)
    ws.send("5")
    while len(received) < count:
        frame = ws.recv()
        if frame.startswith("42"):
            received.append(frame)
    assert received == [f'42["burst",{i}]' for i in range(count)]
    # Once the server has processed `5` (an ack over the WebSocket shows it), polling is over.
    ws.send('421["echo","after upgrade"]')
    while ws.recv() != '431["after upgrade"]':
        pass
    assert session.get().status_code == 400
    ws.send('421["echo","over websocket"]')
    assert ws.recv() == '431["over websocket"]'
    ws.close()


def test_websocket_handshake_and_binary_frames(testbed):
    ws = open_websocket(testbed.ws_url)
    handshake = json.loads(ws.recv()[1:])
    assert handshake["upgrades"] == []
    ws.send("40")
    assert ws.recv().startswith('40{"sid":"')
    ws.send('451-3["echo",{"_placeholder":true,"num":0}]')
    ws.send_binary(b"\x00\xffraw")
    assert ws.recv() == '461-3[{"_placeholder":true,"num":0}]'
    opcode, data = ws.recv_data()
    assert opcode == websocket.ABNF.OPCODE_BINARY and data == b"\x00\xffraw"
    ws.close()


def test_connect_timeout_closes_idle_connections(make_testbed):
    server = make_testbed(connect_timeout=300)
    ws = open_websocket(server.ws_url)
    ws.recv()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            if ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException()


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
def test_plain_engine_io_echo_with_python_engineio(testbed, transports):
    """The EngineIO library alone, at its own path, against python-engineio's client."""
    client = engineio.Client()
    received = []
    client.on("message", lambda data: received.append(data))
    client.connect(f"http://127.0.0.1:{testbed.engine_port}", engineio_path="engine.io", transports=transports)
    try:
        client.send("text ☃")
        client.send(b"\x01\x02\x03")
        eventually(lambda: len(received) == 2)
        assert received == ["text ☃", b"\x01\x02\x03"]
    finally:
        client.disconnect()


def test_server_side_ack_times_out_when_the_client_never_answers(testbed):
    ws = joined_websocket(testbed.ws_url)
    started = time.time()
    ws.send('427["ask-me-within",300,"anyone?"]')
    question = ws.recv()
    assert question.startswith('42') and question.endswith('["question","anyone?"]')
    # Not answered: the server's emitWithAck gives up after 300 ms.
    answer = ws.recv()
    assert answer == '437[{"error":"operation has timed out"}]'
    assert 0.25 < time.time() - started < 3
    ws.close()


def slow_websocket(server, room: str):
    """A client that joins `room`, then never reads again; its receive buffer is kept small
    so that the server's writes back up quickly."""
    ws = websocket.WebSocket()
    ws.sock_opt.sockopt = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
    ws.connect(f"{server.ws_url}/socket.io/?EIO=4&transport=websocket", timeout=5)
    ws.recv()
    ws.send("40")
    ws.recv()
    ws.send(f'421["join","{room}"]')
    assert ws.recv().startswith("431")
    return ws


def test_what_is_sent_before_a_close_arrives_before_it(testbed):
    """Events emitted just before the server closes a connection leave before the close frame:
    every one, in order, then the namespace's DISCONNECT, then the WebSocket's close."""
    ws = joined_websocket(testbed.ws_url)
    ws.send('42["burst-then-close",200]')
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        if opcode == websocket.ABNF.OPCODE_TEXT and data != b"2":
            frames.append(data.decode())
    assert frames == [f'42["burst",{index}]' for index in range(200)] + ["41"]
    assert testbed.alive()


def test_emits_and_broadcasts_from_one_thread_arrive_in_their_order(testbed):
    """A thread other than the connection's event loop broadcasts to the socket's room, emits to
    the socket, and broadcasts again, while the loop is busy: the client gets the three in that
    order. (Emits to one socket and broadcasts took two queues to the loop, and a broadcast could
    join work queued before the emit.)"""
    ws = joined_websocket(testbed.ws_url)
    ws.send('42["interleave"]')
    frames = []
    while len(frames) < 3:
        data = ws.recv()
        if data.startswith('42["interleaved"'):
            frames.append(data)
    assert frames == [f'42["interleaved",{index}]' for index in range(3)]
    assert testbed.alive()


def test_a_client_that_stays_behind_is_disconnected_not_waited_for(make_testbed):
    """Two clients in a room take 12 MB in rounds of 0.5 MB. The one that reads keeps up; the
    one that never reads passes its 2 MiB budget (after the kernel's buffers fill) and is cut
    off; nobody waits for it."""
    server = make_testbed(buffer=2 * 1024 * 1024)
    slow = slow_websocket(server, "firehose")
    fast = socketio.Client(reconnection=False)
    got = []
    fast.on("flood", lambda index, blob: got.append(index))
    fast.connect(server.url, transports=["websocket"], wait_timeout=5)
    fast.call("join", "firehose", timeout=5)
    rounds, per_round = 24, 25
    for round_number in range(rounds):
        fast.call("flood", ("firehose", per_round, 20_000), timeout=30)
        eventually(lambda: len(got) == (round_number + 1) * per_round, timeout=30)
    assert got == [index for _ in range(rounds) for index in range(per_round)]
    # The slow client, reading at last, finds its connection closed after part of the flood
    # (a client still connected would get all of it, then wait).
    slow.settimeout(5)
    floods = 0
    try:
        while (frame := slow.recv()) != "":
            floods += frame.startswith('42["flood"')
        ended = "closed"
    except websocket.WebSocketTimeoutException:
        ended = "still open"
    except (websocket.WebSocketException, ConnectionError, OSError):
        ended = "closed"
    assert ended == "closed"
    assert floods < rounds * per_round
    assert server.alive()
    fast.disconnect()


def test_a_polling_client_that_never_polls_is_disconnected(make_testbed):
    server = make_testbed(buffer=64 * 1024)
    idle = joined_polling(server.url, room="firehose")
    sender = socketio.Client(reconnection=False)
    sender.connect(server.url, transports=["websocket"], wait_timeout=5)
    sender.call("flood", ("firehose", 100, 10_000), timeout=10)
    # The queue passed 64 KiB: the session is gone.
    assert error_of(idle.get()) == (400, {"code": 1, "message": "Session ID unknown"})
    sender.disconnect()


def test_volatile_packets_are_dropped_for_a_client_that_is_not_ready(testbed):
    idle = joined_polling(testbed.url, room="volatile-room")
    sender = socketio.Client(reconnection=False)
    sender.connect(testbed.url, transports=["websocket"], wait_timeout=5)
    # While no GET is pending, volatile packets are not queued...
    sender.call("flood", ("volatile-room", 5, 10, True), timeout=5)
    # ...but ordinary ones are.
    sender.call("flood", ("volatile-room", 2, 10, False), timeout=5)
    packets = idle.packets()
    assert [p.split(",")[1] for p in packets] == ["0", "1"]
    sender.disconnect()
