"""Runs one scenario with python-socketio 4.6.1 (Engine.IO v3) and prints a JSON result.

Usage: legacy_client.py SCENARIO URL   (run with the legacy virtual environment's Python)
"""

import json
import sys
import threading
import time

import socketio

scenario, url = sys.argv[1], sys.argv[2]
transports = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[scenario]
result = {}
client = socketio.Client(reconnection=False)
received = []
questions = []
got_event = threading.Event()


@client.on("echo")
def on_echo(*args):
    received.append(list(args))
    got_event.set()


@client.on("question")
def on_question(*args):
    questions.append(list(args))
    return "legacy answer"


client.connect(url, transports=transports)
try:
    if scenario == "upgrade":
        deadline = time.time() + 5
        while client.transport() != "websocket" and time.time() < deadline:
            time.sleep(0.05)
    result["transport"] = client.transport()
    result["sid"] = client.sid
    answers = {}
    done = threading.Event()

    def ack(*args):
        answers["echo"] = list(args)
        done.set()

    client.emit("echo", {"text": "héllo", "n": 3}, callback=ack)
    done.wait(5)
    result["ack"] = answers.get("echo")
    client.emit("echo", "no ack")
    got_event.wait(5)
    result["event"] = received[:1]
    binary = {}
    binary_done = threading.Event()
    client.emit("echo", b"\x00\x01\xff", callback=lambda *args: (binary.update(value=list(args)), binary_done.set()))
    binary_done.wait(5)
    result["binary"] = [list(item) if isinstance(item, bytes) else item for item in binary.get("value", [])]
    asked = {}
    asked_done = threading.Event()
    client.emit("ask-me", "why", callback=lambda *args: (asked.update(value=list(args)), asked_done.set()))
    asked_done.wait(5)
    result["asked"] = asked.get("value")
    whoami = {}
    who_done = threading.Event()
    client.emit("whoami", {}, callback=lambda *args: (whoami.update(value=args[0]), who_done.set()))
    who_done.wait(5)
    result["whoami"] = whoami.get("value")
finally:
    client.disconnect()
print(json.dumps(result))
