"""Thousands of random and malformed packets from many clients at once, over both
transports, while a well-behaved client keeps chatting: the server stays up, and the good
client sees every one of its messages."""

import random
import threading
import time

import requests
import socketio
import websocket

from conftest import InOrderClient, eventually
from wire import SEP

GARBAGE_TEXT = [
    "", "4", "42", "42[", "42{}", "42[]", "42[null]", '42["connect"]', "45-[]", "451-", "451-[\"x\",{\"_placeholder\":true,\"num\":9}]",
    "4999999999999999999999[\"x\"]", "40/nowhere,", "40[]", "41/admin,", "44{}", "43", "46-", "7", "x", "5", "6", "1", "0{}",
    "2probe", "3probe", '42["x",' + "[" * 500 + "]" * 500 + "]", '42["' + "\\u" + '"]', '42["\\ud800"]',
    "4" + "2" * 5000, '42["echo",' + '"a",' * 2000 + '"z"]',
]


def random_text(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(GARBAGE_TEXT)
    if choice < 0.8:
        alphabet = '0123456789[]{}",:/-_abc\\ \x1e\x00\u00e9\u2603'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
    return "42" + "".join(rng.choice('["{}],:0123456789') for _ in range(rng.randint(1, 200)))


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 120)))


def websocket_attacker(server, seed: int, packets: int, counts: dict):
    rng = random.Random(seed)
    sent = 0
    while sent < packets:
        try:
            ws = websocket.create_connection(f"{server.ws_url}/socket.io/?EIO=4&transport=websocket", timeout=5)
            ws.recv()
            if rng.random() < 0.5:
                ws.send("40")
            for _ in range(rng.randint(1, 60)):
                kind = rng.random()
                if kind < 0.6:
                    ws.send(random_text(rng))
                elif kind < 0.85:
                    ws.send_binary(random_bytes(rng))
                else:
                    # Invalid UTF-8 in a text frame.
                    ws.send(b"42[\"\xff\xfe\"]", opcode=websocket.ABNF.OPCODE_TEXT)
                sent += 1
            ws.close()
        except (websocket.WebSocketException, OSError):
            sent += 1
    counts["ws"] += sent


def polling_attacker(server, seed: int, packets: int, counts: dict):
    rng = random.Random(seed)
    sent = 0
    http = requests.Session()
    base = server.url + "/socket.io/"
    while sent < packets:
        try:
            handshake = http.get(base, params={"EIO": "4", "transport": "polling"}, timeout=5)
            sid = handshake.text.split('"sid":"')[1].split('"')[0]
            params = {"EIO": "4", "transport": "polling", "sid": sid}
            for _ in range(rng.randint(1, 20)):
                kind = rng.random()
                if kind < 0.6:
                    body = SEP.join(random_text(rng) for _ in range(rng.randint(1, 5))).encode()
                elif kind < 0.8:
                    body = random_bytes(rng)
                else:
                    body = b"4" + random_bytes(rng)
                http.post(base, params=params, data=body, timeout=5)
                sent += 1
            # Random query strings too.
            http.get(base, params={"EIO": rng.choice(["4", "3", "x", ""]), "transport": rng.choice(["polling", "websocket", "x"]), "sid": rng.choice([sid, "", "zzz"])}, timeout=5)
        except (requests.RequestException, IndexError):
            sent += 1
    counts["polling"] += sent


def test_malformed_flood_does_not_disturb_a_good_client(make_testbed):
    server = make_testbed()
    good = socketio.Client(reconnection=False)
    listener = InOrderClient(reconnection=False)
    heard = []
    listener.on("room-message", lambda *args: heard.append(args[0]))
    good.connect(server.url, transports=["websocket"], wait_timeout=5)
    listener.connect(server.url, transports=["polling"], wait_timeout=5)
    good.call("join", "calm", timeout=5)
    listener.call("join", "calm", timeout=5)

    counts = {"ws": 0, "polling": 0}
    attackers = [threading.Thread(target=websocket_attacker, args=(server, seed, 400, counts)) for seed in range(6)]
    attackers += [threading.Thread(target=polling_attacker, args=(server, 100 + seed, 250, counts)) for seed in range(6)]
    for thread in attackers:
        thread.start()
    expected = []
    try:
        for index in range(200):
            text = f"message {index}"
            expected.append(text)
            assert good.call("to-room", ("calm", text), timeout=10) is None
            time.sleep(0.005)
    finally:
        for thread in attackers:
            thread.join(120)
    assert counts["ws"] + counts["polling"] >= 3500
    eventually(lambda: len(heard) >= len(expected), timeout=10)
    assert heard == expected
    assert server.alive()
    # Still serving new clients normally.
    fresh = socketio.Client(reconnection=False)
    fresh.connect(server.url, transports=["polling", "websocket"], wait_timeout=5)
    assert fresh.call("echo", "after the storm", timeout=5) == "after the storm"
    for client in (fresh, good, listener):
        client.disconnect()
