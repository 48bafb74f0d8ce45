"""The tutorials' own protocols on `parley serve`, exactly as their Node servers behaved, and
rooms shared across dialects."""

import json
import re
import socket
import time

import pytest
import requests
import socketio
import websocket

from conftest import InOrderClient, eventually
from test_chat import Chatter

MODES = {"polling+upgrade": ["polling", "websocket"], "websocket": ["websocket"]}


class Recorder:
    """A python-socketio client that records every event it gets, in order."""

    def __init__(self, server, transports):
        self.client = InOrderClient(reconnection=False)
        self.events = []
        self.client.on("*", lambda event, *args: self.events.append((event, list(args))))
        self.client.connect(server.url, transports=transports, wait_timeout=5)

    def emit(self, event, *args):
        self.client.emit(event, args if len(args) != 1 else args[0])

    def call(self, event, *args):
        return self.client.call(event, args if len(args) != 1 else args[0], timeout=5)

    def close(self):
        self.client.disconnect()


@pytest.mark.parametrize("mode", MODES)
def test_tutorial_1(parley, mode):
    room = f"t1-{mode}"
    one, two, elsewhere, nameless, early = (Recorder(parley, MODES[mode]) for _ in range(5))
    try:
        # Before any join, a chat reaches nobody, not even its sender.
        early.emit("login", "early")
        early.emit("chat", "into the void")
        one.emit("login", "one")
        one.emit("join", room)
        two.emit("login", "two")
        two.emit("join", room)
        elsewhere.emit("login", "three")
        elsewhere.emit("join", room.upper())
        nameless.emit("join", room)
        time.sleep(0.3)
        text = 'héllo  "quoted" <b>html</b> 😀'
        one.emit("chat", text)
        eventually(lambda: len(two.events) == 1 and len(one.events) == 1 and len(nameless.events) == 1)
        assert one.events == two.events == nameless.events == [("message", [{"user": "one", "message": text}])]
        # Joined but never logged in: no user.
        nameless.emit("chat", "who am I?")
        eventually(lambda: len(one.events) == 2)
        assert one.events[1] == ("message", [{"message": "who am I?"}])
        # A second login replaces the name; order is kept.
        two.emit("login", "deux")
        for index in range(15):
            two.emit("chat", f"n{index}")
        eventually(lambda: len(one.events) == 17)
        assert [payload[0]["message"] for _, payload in one.events[2:]] == [f"n{i}" for i in range(15)]
        assert {payload[0]["user"] for _, payload in one.events[2:]} == {"deux"}
        time.sleep(0.3)
        # Case-sensitive rooms; no notices of any kind; nothing for the early chat.
        assert elsewhere.events == [] and early.events == []
        nameless.close()
        time.sleep(0.3)
        assert len(one.events) == 17
    finally:
        for client in (one, two, elsewhere, early):
            client.close()


def test_tutorial_names_are_mended_before_they_are_shown_or_stored(parley):
    """The tutorials' clients take any name and hear of no refusal. A name with control
    characters (a NUL among them, which PostgreSQL cannot store in text) or of any length is
    shown, and stored with the message, without them and cut to 32 characters."""
    room = "t-names"
    long_name = "\x00Zoé\tthe\u200b " + "z" * 5000
    mended = ("Zoéthe " + "z" * 5000)[:32]
    one, two = Recorder(parley, ["websocket"]), Recorder(parley, ["websocket"])
    reader = Chatter(parley, auth={"name": "reader"})
    try:
        reader.ok("room:join", {"room": room})
        one.emit("login", long_name)
        one.emit("join", room)
        assert two.call("join", {"name": " \x00Bob\x01 ", "room": room}) is None
        time.sleep(0.3)
        one.emit("chat", "from one")
        # Two senders' messages have no order between them: the second is sent once the first is in.
        eventually(lambda: any(event == "message" for event, _ in one.events))
        assert two.call("sendMessage", "from two") is None
        eventually(lambda: len([e for e in one.events if e[0] == "message"]) == 2)
        assert [payload for event, payload in one.events if event == "message"] == [
            [{"user": mended, "message": "from one"}], [{"user": "bob", "message": "from two"}]]
        stored = reader.ok("history:get", {"room": room})["messages"]
        assert [(m["from"]["name"], m["text"]) for m in stored] == [(mended, "from one"), ("bob", "from two")]
    finally:
        for client in (one, two, reader):
            client.close()


@pytest.mark.parametrize("mode", MODES)
def test_tutorial_2(parley, mode):
    alice, bob, idle = (Recorder(parley, MODES[mode]) for _ in range(3))
    room = f"t2-{mode}"
    try:
        assert alice.call("join", {"name": " Alice ", "room": f" {room.upper()} "}) is None
        assert alice.events == [("message", [{"user": "admin", "text": f"alice, welcome to room {room}."}]),
                                ("roomData", [{"room": room, "users": [{"id": alice.client.get_sid(), "name": "alice", "room": room}]}])]
        assert bob.call("join", {"name": "ALICE", "room": room}) == "Username is taken."
        assert bob.call("join", {"name": "", "room": room}) == "Username and room are required."
        assert bob.call("join", {"name": "bob", "room": "   "}) == "Username and room are required."
        assert bob.events == []
        assert bob.call("join", {"name": "bob", "room": room}) is None
        users = [{"id": alice.client.get_sid(), "name": "alice", "room": room}, {"id": bob.client.get_sid(), "name": "bob", "room": room}]
        assert bob.events == [("message", [{"user": "admin", "text": f"bob, welcome to room {room}."}]), ("roomData", [{"room": room, "users": users}])]
        eventually(lambda: len(alice.events) == 4)
        assert alice.events[2:] == [("message", [{"user": "admin", "text": "bob has joined!"}]), ("roomData", [{"room": room, "users": users}])]
        # Messages: to everyone in the room, then the ack.
        assert alice.call("sendMessage", "hi <b>bob</b> 😀") is None
        eventually(lambda: len(bob.events) == 3 and len(alice.events) == 5)
        assert bob.events[2] == alice.events[4] == ("message", [{"user": "alice", "text": "hi <b>bob</b> 😀"}])
        # From a socket that never joined: nothing to anyone.
        idle.emit("sendMessage", "ignored")
        # Leaving: Admin (capital A), then the member list without the leaver.
        bob.close()
        eventually(lambda: len(alice.events) == 7)
        assert alice.events[5:] == [("message", [{"user": "Admin", "text": "bob has left."}]), ("roomData", [{"room": room, "users": users[:1]}])]
        # The name is free again.
        again = Recorder(parley, MODES[mode])
        assert again.call("join", {"name": "bob", "room": room}) is None
        again.close()
        time.sleep(0.2)
        assert idle.events == []
    finally:
        for client in (alice, bob, idle):
            client.close()


def test_tutorial_2_abrupt_close_of_a_raw_websocket(parley):
    watcher = Recorder(parley, ["websocket"])
    watcher.call("join", {"name": "watcher", "room": "t2-abrupt"})
    ws = websocket.create_connection(f"{parley.ws_url}/socket.io/?EIO=4&transport=websocket", timeout=5)
    ws.recv()
    ws.send("40")
    ws.recv()
    ws.send('421["join",{"name":"ghost","room":"t2-abrupt"}]')
    while not ws.recv().startswith("431"):
        pass
    eventually(lambda: len(watcher.events) == 4)
    # No close frame: the TCP connection just goes.
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()
    eventually(lambda: len(watcher.events) == 6)
    assert watcher.events[4] == ("message", [{"user": "Admin", "text": "ghost has left."}])
    assert [u["name"] for u in watcher.events[5][1][0]["users"]] == ["watcher"]
    watcher.close()


@pytest.mark.parametrize("mode", MODES)
def test_tutorial_3_chat_message_is_relayed_verbatim(parley, mode):
    a, b, outsider = (Recorder(parley, MODES[mode]) for _ in range(3))
    try:
        outsider.emit("login", "someone else")
        listener = Recorder(parley, MODES[mode])  # a page that only listens
        time.sleep(0.2)
        a.emit("chat message", "first")
        eventually(lambda: len(b.events) == 1)
        b.emit("chat message", "")
        eventually(lambda: len(a.events) == 2)
        for payload in [(None,), {"nested": [1, "x"]}, 42, "😀"]:
            a.emit("chat message", payload)
        eventually(lambda: len(a.events) == 6 and len(b.events) == 6 and len(listener.events) == 6)
        assert [args for _, args in a.events] == [["first"], [""], [None], [{"nested": [1, "x"]}], [42], ["😀"]]
        assert b.events == a.events and listener.events == a.events
        time.sleep(0.2)
        # A socket of another dialect hears none of it.
        assert outsider.events == []
        listener.close()
    finally:
        for client in (a, b, outsider):
            client.close()


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_tutorial_4_global_history(parley):
    first = Recorder(parley, ["websocket"])
    second = Recorder(parley, ["websocket"])
    try:
        first.emit("CreateUserData")
        eventually(lambda: first.events)
        event, (data,) = first.events[0]
        assert event == "SetUserData" and UUID.fullmatch(data["userID"])
        assert re.fullmatch(r"[a-z]+_[A-Z][a-z]+", data["username"])
        second.emit("ClearChat")
        eventually(lambda: second.events)
        first.events.clear()
        second.events.clear()
        first.emit("UserEnteredRoom", {"userID": data["userID"], "username": data["username"]})
        entered = {"message": f"{data['username']} has entered the chat", "username": "", "userID": 0, "timeStamp": None}
        eventually(lambda: first.events and second.events)
        assert first.events == second.events == [("RetrieveChatRoomData", [[entered]])]
        message = {"message": "hello", "username": data["username"], "userID": data["userID"], "timeStamp": 1700000000, "extra": {"kept": True}}
        second.emit("SendMessage", message)
        eventually(lambda: len(first.events) == 2)
        assert first.events[1] == ("RetrieveChatRoomData", [[entered, message]])
        first.close()
        eventually(lambda: len(second.events) == 3)
        left = {**entered, "message": f"{data['username']} has left the chat"}
        assert second.events[2] == ("RetrieveChatRoomData", [[entered, message, left]])
        second.emit("ClearChat")
        eventually(lambda: len(second.events) == 4)
        assert second.events[3] == ("RetrieveChatRoomData", [[]])
    finally:
        second.close()


def test_dialects_share_rooms_each_in_its_own_shape(parley):
    one = Recorder(parley, ["websocket"])
    two = Recorder(parley, ["polling", "websocket"])
    native = Chatter(parley, auth={"name": "three"})
    try:
        one.emit("login", "one")
        one.emit("join", "shared")
        assert two.call("join", {"name": "two", "room": "shared"}) is None
        native.ok("room:join", {"room": "shared"})
        time.sleep(0.3)
        one.events.clear()
        two.events.clear()
        native.messages.clear()
        one.emit("chat", "from one")
        eventually(lambda: len(two.events) == 1 and len(native.messages) == 1)
        two.call("sendMessage", "from two")
        native.ok("message:send", {"room": "shared", "text": "from three"})
        eventually(lambda: len(one.events) == 3 and len(two.events) == 3 and len(native.messages) == 3)
        assert one.events == [("message", [{"user": user, "message": f"from {user}"}]) for user in ("one", "two", "three")]
        assert two.events == [("message", [{"user": user, "text": f"from {user}"}]) for user in ("one", "two", "three")]
        assert [(m["room"], m["from"]["name"], m["text"]) for m in native.messages] == [("shared", u, f"from {u}") for u in ("one", "two", "three")]
        # The native client sees everyone in its member list.
        assert sorted(m["name"] for m in native.ok("room:members", {"room": "shared"})["members"]) == ["one", "three", "two"]
        # Events of another dialect from a socket are ignored.
        one.emit("sendMessage", "not tutorial 1's")
        time.sleep(0.3)
        assert len(two.events) == 3
    finally:
        one.close()
        two.close()
        native.close()


def test_tutorial_3_rest_routes_on_real_accounts(parley):
    page = requests.Session()
    other = requests.Session()
    base = parley.url
    assert page.post(base + "/register", json={"name": "Tee", "handle": "t3_tee", "password": 12345678, "phone": "1", "email": "t@x"}, timeout=10).text == "success"
    assert requests.post(base + "/register", json={"handle": "t3_tee", "password": "another one"}, timeout=10).text == "User already found"
    form = other.post(base + "/register", data={"name": "Vee", "handle": "t3_vee", "password": "form password"}, timeout=10)
    assert form.status_code == 200 and form.text == "success"
    # A number password is the same number at login, whichever way it is sent.
    assert requests.post(base + "/login", json={"handle": "t3_tee", "password": 12345678}, timeout=10).text == "success"
    assert requests.post(base + "/login", data={"handle": "t3_tee", "password": "12345678"}, timeout=10).text == "success"
    assert requests.post(base + "/login", json={"handle": "t3_tee", "password": 1234}, timeout=10).text == "User has not registered"
    assert requests.post(base + "/login", json={"handle": "t3_nobody", "password": "whatever1"}, timeout=10).text == "User has not registered"
    # Friend requests act only for the signed-in account.
    stranger = requests.post(base + "/friend_request", json={"my_handle": "t3_tee", "friend_handle": "t3_vee"}, timeout=10)
    assert stranger.status_code == 401
    assert page.post(base + "/friend_request", json={"my_handle": "t3_tee", "friend_handle": "t3_vee"}, timeout=10).text == "success"
    assert page.post(base + "/friend_request", json={"my_handle": "t3_tee", "friend_handle": "t3_vee"}, timeout=10).text == "Friend request already sent "
    assert page.post(base + "/friend_request/confirmed", json={"my_handle": "t3_vee", "friend_handle": "t3_tee", "confirm": "Yes"}, timeout=10).status_code == 401
    assert other.post(base + "/friend_request/confirmed", json={"my_handle": "t3_vee", "friend_handle": "t3_tee", "confirm": "Yes"}, timeout=10).text == "success"
    assert other.post(base + "/friend_request/confirmed", json={"my_handle": "t3_vee", "friend_handle": "t3_tee", "confirm": "Yes"}, timeout=10).text == "Friend request already accepted"
    assert page.post(base + "/friend_request", json={"my_handle": "t3_tee", "friend_handle": "t3_vee"}, timeout=10).text == "Friend request already accepted"
    # They are real Parley accounts and friends: the native API knows them.
    token = requests.post(base + "/api/login", json={"handle": "t3_tee", "password": "12345678"}, timeout=10).json()["token"]
    tee = Chatter(parley, auth={"token": token})
    assert [u["name"] for u in tee.ok("friend:list", {})["friends"]] == ["t3_vee"]
    tee.close()
    # A weak password is refused clearly, and changes nothing.
    weak = requests.post(base + "/register", json={"handle": "t3_weak", "password": "123"}, timeout=10)
    assert weak.status_code == 400 and "8" in weak.text
    assert requests.post(base + "/login", json={"handle": "t3_weak", "password": "123"}, timeout=10).text == "User has not registered"


def v3_payload(*packets: str) -> bytes:
    return "".join(f"{len(p.encode('utf-16-le')) // 2}:{p}" for p in packets).encode()


def v3_packets(body: str) -> list:
    packets = []
    while body:
        length, _, rest = body.partition(":")
        units = int(length)
        text, count = "", 0
        for char in rest:
            if count >= units:
                break
            text += char
            count += 2 if ord(char) > 0xFFFF else 1
        packets.append(text)
        body = rest[len(text):]
    return packets


def test_raw_eio3_clients_of_tutorials_2_and_3_with_cors():
    from conftest import start_parley
    origin = "http://tutorial.example"
    server = start_parley("--cors-origin", origin)
    headers = {"Origin": origin}
    try:
        base = server.url + "/socket.io/"
        preflight = requests.options(base, params={"EIO": "3", "transport": "polling"},
                                     headers={**headers, "Access-Control-Request-Method": "POST"}, timeout=5)
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == origin
        handshake = requests.get(base, params={"EIO": "3", "transport": "polling"}, headers=headers, timeout=5)
        assert handshake.headers["Access-Control-Allow-Origin"] == origin
        assert handshake.headers["Access-Control-Allow-Credentials"] == "true"
        sid = json.loads(v3_packets(handshake.text)[0][1:])["sid"]
        params = {"EIO": "3", "transport": "polling", "sid": sid}
        assert requests.get(base, params=params, headers=headers, timeout=5).text == "2:40"
        # Tutorial 2 over v3 polling: welcome, roomData, then the ack.
        assert requests.post(base, params=params, headers=headers, data=v3_payload('421["join",{"name":"Légacy","room":"t2-eio3"}]'), timeout=5).text == "ok"
        received = []
        while len(received) < 3:
            received += v3_packets(requests.get(base, params=params, headers=headers, timeout=5).text)
        assert received[0] == '42["message",{"user":"admin","text":"légacy, welcome to room t2-eio3."}]'
        assert received[1] == f'42["roomData",{{"room":"t2-eio3","users":[{{"id":"{sid}","name":"légacy","room":"t2-eio3"}}]}}]'
        assert received[2] == "431[]"
        # Upgrade to WebSocket, then talk tutorial 2 there.
        ws = websocket.create_connection(f"{server.ws_url}/socket.io/?EIO=3&transport=websocket&sid={sid}", timeout=5, origin=origin)
        ws.send("2probe")
        assert ws.recv() == "3probe"
        ws.send("5")
        ws.send('422["sendMessage","over v3 websocket"]')
        assert ws.recv() == '42["message",{"user":"légacy","text":"over v3 websocket"}]'
        assert ws.recv() == "432[]"
        ws.close()
        # Tutorial 3 from a WebSocket-only v3 client: relayed verbatim, to itself too.
        t3 = websocket.create_connection(f"{server.ws_url}/socket.io/?EIO=3&transport=websocket", timeout=5, origin=origin)
        assert t3.recv().startswith("0{")
        assert t3.recv() == "40"
        t3.send('42["chat message",{"from":"v3","n":1}]')
        assert t3.recv() == '42["chat message",{"from":"v3","n":1}]'
        t3.close()
        # Another origin is refused on the WebSocket.
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(f"{server.ws_url}/socket.io/?EIO=3&transport=websocket", timeout=5, origin="http://evil.example")
    finally:
        server.stop()


def test_tutorial_4_history_keeps_the_newest_entries_under_its_cap():
    from conftest import start_parley
    server = start_parley("--tutorial4-history-cap", "3")
    try:
        client = Recorder(server, ["websocket"])
        for index in range(5):
            client.emit("SendMessage", {"message": f"m{index}"})
        eventually(lambda: len(client.events) == 5)
        assert client.events[-1] == ("RetrieveChatRoomData", [[{"message": "m2"}, {"message": "m3"}, {"message": "m4"}]])
        client.close()
    finally:
        server.stop()


def test_eio3_and_eio4_clients_share_a_room(parley):
    """A socket.io-client 2.x (Engine.IO v3) user and a current one in one tutorial-2 room."""
    modern = Recorder(parley, ["websocket"])
    assert modern.call("join", {"name": "modern", "room": "mixed-versions"}) is None
    handshake = requests.get(parley.url + "/socket.io/", params={"EIO": "3", "transport": "polling"}, timeout=5)
    sid = json.loads(v3_packets(handshake.text)[0][1:])["sid"]
    ws = websocket.create_connection(f"{parley.ws_url}/socket.io/?EIO=3&transport=websocket&sid={sid}", timeout=5)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    ws.send('421["join",{"name":"legacy","room":"mixed-versions"}]')
    # The server's own 40 (queued while polling) comes first, then welcome, roomData and the ack.
    frames = [ws.recv() for _ in range(4)]
    assert frames[0] == "40" and frames[3] == "431[]"
    assert frames[1] == '42["message",{"user":"admin","text":"legacy, welcome to room mixed-versions."}]'
    eventually(lambda: len(modern.events) == 4)
    assert modern.events[2] == ("message", [{"user": "admin", "text": "legacy has joined!"}])
    modern.call("sendMessage", "hello legacy")
    assert ws.recv() == '42["message",{"user":"modern","text":"hello legacy"}]'
    ws.send('42["sendMessage","hello modern"]')
    eventually(lambda: modern.events[-1] == ("message", [{"user": "legacy", "text": "hello modern"}]))
    ws.close()
    modern.close()
