"""The first tutorial's chat server on python-socketio and aiohttp: login, join, chat → message to
the room. The live peer `parley bench` measures beside Parley.

Usage: python_socketio_server.py PORT [--drop-every N] [--repeat-every N] [--drop-above N]

--drop-every N   leaves the sender out of every Nth message's delivery (a fault, for testing that
                 the bench counts lost deliveries)
--repeat-every N delivers every Nth message twice (a fault, for testing duplicate counting)
--drop-above N   relays at most N messages in each second of the clock and drops the rest (a
                 server with a known ceiling, for testing the bench's search for it)
"""

import argparse
import time

import socketio
from aiohttp import web

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--drop-every", type=int, default=0)
parser.add_argument("--repeat-every", type=int, default=0)
parser.add_argument("--drop-above", type=int, default=0)
options = parser.parse_args()

server = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[])
app = web.Application()
server.attach(app)
sessions = {}
chats = 0
second = {"at": 0, "count": 0}


@server.on("login")
async def login(sid, name):
    sessions.setdefault(sid, {})["name"] = name


@server.on("join")
async def join(sid, room):
    sessions.setdefault(sid, {})["room"] = room
    await server.enter_room(sid, room)


@server.on("chat")
async def chat(sid, message):
    global chats
    session = sessions.get(sid, {})
    if "room" not in session:
        return
    chats += 1
    if options.drop_above:
        now = int(time.monotonic())
        if second["at"] != now:
            second.update(at=now, count=0)
        second["count"] += 1
        if second["count"] > options.drop_above:
            return
    payload = {"user": session.get("name"), "message": message}
    skip = sid if options.drop_every and chats % options.drop_every == 0 else None
    await server.emit("message", payload, room=session["room"], skip_sid=skip)
    if options.repeat_every and chats % options.repeat_every == 0:
        await server.emit("message", payload, room=session["room"])


@server.on("disconnect")
async def disconnect(sid, *args):
    sessions.pop(sid, None)


web.run_app(app, host="127.0.0.1", port=options.port, print=None)
