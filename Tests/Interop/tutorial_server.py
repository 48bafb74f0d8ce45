"""The first tutorial's server, on python-socketio and aiohttp: login, join, chat → message to the
room. A peer to measure with `parley bench` beside Parley.

Usage: tutorial_server.py PORT
"""

import sys

import socketio
from aiohttp import web

server = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[])
app = web.Application()
server.attach(app)
sessions = {}


@server.on("login")
async def login(sid, name):
    sessions.setdefault(sid, {})["name"] = name


@server.on("join")
async def join(sid, room):
    sessions.setdefault(sid, {})["room"] = room
    await server.enter_room(sid, room)


@server.on("chat")
async def chat(sid, message):
    session = sessions.get(sid, {})
    if "room" in session:
        await server.emit("message", {"user": session.get("name"), "message": message}, room=session["room"])


@server.on("disconnect")
async def disconnect(sid, *args):
    sessions.pop(sid, None)


web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
