"""The native chat API end to end: REST accounts, socket authentication, rooms with member
lists and notices, messages, history, refusals and bad input, and a restart that keeps every
acknowledged message."""

import time

import pytest
import requests
import socketio

from conftest import InOrderClient, eventually, start_parley


def register(server, handle, password="a long password"):
    response = requests.post(server.url + "/api/register", json={"handle": handle, "password": password}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


class Chatter:
    """A python-socketio client that records what the server pushes."""

    def __init__(self, server, auth=None, transports=("websocket",)):
        self.client = InOrderClient(reconnection=False)
        self.messages, self.members, self.notices = [], [], []
        self.client.on("message", lambda payload: self.messages.append(payload))
        self.client.on("room:members", lambda payload: self.members.append(payload))
        self.client.on("room:notice", lambda payload: self.notices.append(payload))
        self.dms, self.friend_events = [], []
        self.client.on("dm", lambda payload: self.dms.append(payload))
        self.client.on("friend:request", lambda payload: self.friend_events.append(("request", payload)))
        self.client.on("friend:update", lambda payload: self.friend_events.append(("update", payload)))
        self.receipts, self.typing = [], []
        self.client.on("receipt", lambda payload: self.receipts.append(payload))
        self.client.on("typing", lambda payload: self.typing.append(payload))
        self.client.connect(server.url, auth=auth, transports=list(transports), wait_timeout=5)

    def call(self, event, payload=None):
        return self.client.call(event, payload, timeout=10)

    def ok(self, event, payload=None):
        reply = self.call(event, payload)
        assert reply["ok"] is True, reply
        return reply

    def error(self, event, payload=None):
        reply = self.call(event, payload)
        assert reply["ok"] is False, reply
        return reply["error"]["code"]

    def close(self):
        self.client.disconnect()


def test_accounts_over_rest(parley):
    account = register(parley, "Ada_L")
    assert account["user"]["name"] == "Ada_L" and account["user"]["kind"] == "account"
    assert account["user"]["id"].startswith("a_")
    token = account["token"]
    taken = requests.post(parley.url + "/api/register", json={"handle": "ada_l", "password": "another password"}, timeout=10)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "handle_taken"
    login = requests.post(parley.url + "/api/login", json={"handle": "ADA_L", "password": "a long password"}, timeout=10)
    assert login.status_code == 200 and login.json()["user"] == account["user"]
    wrong = requests.post(parley.url + "/api/login", json={"handle": "Ada_L", "password": "not it at all"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_credentials"
    me = requests.get(parley.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["user"] == account["user"]
    assert requests.get(parley.url + "/api/me", timeout=10).status_code == 401
    assert requests.get(parley.url + "/api/me", headers={"Authorization": "Bearer forged"}, timeout=10).status_code == 401
    logout = requests.post(parley.url + "/api/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert logout.status_code == 200
    revoked = requests.get(parley.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "unauthorized"
    # The login's own token still works.
    assert requests.get(parley.url + "/api/me", headers={"Authorization": f"Bearer {login.json()['token']}"}, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "body,code",
    [
        (b"not json", "invalid_argument"),
        (b"[1,2]", "invalid_argument"),
        (b'{"handle": 5, "password": "long enough"}', "invalid_argument"),
        (b'{"handle": "ok_handle"}', "invalid_argument"),
        (b'{"handle": "a", "password": "long enough"}', "invalid_handle"),
        (b'{"handle": "has space", "password": "long enough"}', "invalid_handle"),
        (b'{"handle": "short_pw", "password": "short"}', "invalid_password"),
        (b'{"handle": "\xff\xfe", "password": "long enough"}', "invalid_argument"),
    ],
)
def test_register_refuses_bad_input_clearly(parley, body, code):
    response = requests.post(parley.url + "/api/register", data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_wrong_method_on_an_api_route(parley):
    response = requests.get(parley.url + "/api/login", timeout=10)
    assert response.status_code == 405


def test_socket_identity_from_token_name_or_nothing(parley):
    token = register(parley, "grace")["token"]
    account = Chatter(parley, auth={"token": token})
    assert account.ok("me")["user"]["name"] == "grace"
    assert account.ok("me")["user"]["kind"] == "account"
    named = Chatter(parley, auth={"name": "Zoë"}, transports=("polling",))
    assert named.ok("me")["user"] == {**named.ok("me")["user"], "name": "Zoë", "kind": "guest"}
    anonymous = Chatter(parley)
    generated = anonymous.ok("me")["user"]["name"]
    assert "-" in generated and generated.replace("-", "").isalpha()
    for chatter in (account, named, anonymous):
        chatter.close()


@pytest.mark.parametrize("auth,code", [({"token": "forged"}, "unauthorized"), ({"token": 42}, "unauthorized"), ({"name": ""}, "invalid_name"), ({"name": 7}, "invalid_name")])
def test_bad_credentials_are_refused_at_connect(parley, auth, code):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(parley.url, auth=auth, transports=["websocket"], wait_timeout=3)
    eventually(lambda: errors)
    assert errors[0]["data"]["code"] == code
    assert errors[0]["message"]
    client.disconnect()


def test_a_revoked_token_is_refused_at_connect(parley):
    token = register(parley, "revoked_one")["token"]
    requests.post(parley.url + "/api/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(parley.url, auth={"token": token}, transports=["websocket"], wait_timeout=3)
    client.disconnect()


def test_a_guest_and_two_accounts_chat_in_a_room(parley):
    ada = Chatter(parley, auth={"token": register(parley, "ada")["token"]})
    bob = Chatter(parley, auth={"token": register(parley, "bob")["token"]}, transports=("polling",))
    guest = Chatter(parley, auth={"name": "visitor"}, transports=("polling", "websocket"))
    elsewhere = Chatter(parley, auth={"name": "elsewhere"})
    try:
        joined = ada.ok("room:join", {"room": "lobby"})
        assert joined["room"]["name"] == "lobby"
        assert [m["name"] for m in joined["members"]] == ["ada"]
        bob.ok("room:join", {"room": "lobby"})
        guest.ok("room:join", {"room": "lobby"})
        elsewhere.ok("room:join", {"room": "other"})
        eventually(lambda: ada.members and [m["name"] for m in ada.members[-1]["members"]] == ["ada", "bob", "visitor"])
        eventually(lambda: [n["text"] for n in ada.notices] == ["ada joined", "bob joined", "visitor joined"])
        assert {m["kind"] for m in ada.members[-1]["members"]} == {"account", "guest"}
        # Someone else with a name already present is refused.
        impostor = Chatter(parley, auth={"name": "ADA"})
        assert impostor.error("room:join", {"room": "lobby"}) == "name_taken"
        impostor.close()
        # Messages: acked with their stored id, delivered to everyone in the room.
        sent = ada.ok("message:send", {"room": "lobby", "text": "hello, lobby", "clientId": "ada-1"})["message"]
        assert sent["text"] == "hello, lobby" and sent["from"]["name"] == "ada" and sent["clientId"] == "ada-1"
        assert isinstance(sent["id"], int) and sent["sentAt"] > 1_700_000_000_000
        guest.ok("message:send", {"room": "lobby", "text": "hi from a guest"})
        for chatter in (ada, bob, guest):
            eventually(lambda chatter=chatter: len(chatter.messages) == 2)
            assert [m["text"] for m in chatter.messages] == ["hello, lobby", "hi from a guest"]
        # A retried send with the same client id is the same message, delivered once.
        again = ada.ok("message:send", {"room": "lobby", "text": "hello, lobby", "clientId": "ada-1"})["message"]
        assert again["id"] == sent["id"]
        time.sleep(0.3)
        assert len(bob.messages) == 2
        # Nobody outside the room saw anything.
        assert elsewhere.messages == [] and all(m["room"] == "other" for m in elsewhere.members)
        # Leaving: a notice and a new member list.
        guest.ok("room:leave", {"room": "lobby"})
        eventually(lambda: ada.notices[-1]["text"] == "visitor left")
        eventually(lambda: [m["name"] for m in ada.members[-1]["members"]] == ["ada", "bob"])
        bob.close()
        eventually(lambda: ada.notices[-1]["text"] == "bob left")
    finally:
        for chatter in (ada, guest, elsewhere):
            chatter.close()


def test_history_is_paged_and_for_members_only(parley):
    token = register(parley, "historian")["token"]
    writer = Chatter(parley, auth={"token": token})
    writer.ok("room:join", {"room": "archive"})
    ids = [writer.ok("message:send", {"room": "archive", "text": f"entry {i}"})["message"]["id"] for i in range(7)]
    page = writer.ok("history:get", {"room": "archive", "limit": 3})
    assert [m["text"] for m in page["messages"]] == ["entry 4", "entry 5", "entry 6"] and page["more"] is True
    older = writer.ok("history:get", {"room": "archive", "before": page["messages"][0]["id"], "limit": 10})
    assert [m["id"] for m in older["messages"]] == ids[:4] and older["more"] is False
    outsider = Chatter(parley, auth={"name": "outsider"})
    assert outsider.error("history:get", {"room": "archive"}) == "not_a_member"
    assert outsider.error("room:members", {"room": "archive"}) == "not_a_member"
    assert outsider.error("message:send", {"room": "archive", "text": "let me in"}) == "not_a_member"
    outsider.close()
    writer.close()
    # The account is still a member after disconnecting: it reads history from a new connection.
    back = Chatter(parley, auth={"token": token})
    assert [m["text"] for m in back.ok("history:get", {"room": "archive", "limit": 1})["messages"]] == ["entry 6"]
    back.close()


@pytest.mark.parametrize(
    "event,payload,code",
    [
        ("room:join", None, "invalid_argument"),
        ("room:join", "lobby", "invalid_argument"),
        ("room:join", {"room": 5}, "invalid_argument"),
        ("room:join", {"room": ""}, "invalid_room_name"),
        ("room:join", {"room": "x" * 101}, "invalid_room_name"),
        ("room:join", {"room": "bad\nname"}, "invalid_room_name"),
        ("room:leave", {"room": "never-joined"}, "not_a_member"),
        ("message:send", {"room": "lobby"}, "empty_message"),
        ("message:send", {"room": "lobby", "image": "not bytes"}, "invalid_argument"),
        ("message:send", {"room": "lobby", "text": ["x"]}, "invalid_argument"),
        ("message:send", {"room": "lobby", "text": ""}, "empty_message"),
        ("message:send", {"room": "lobby", "text": "x" * 4001}, "message_too_long"),
        ("message:send", {"room": "lobby", "text": "ok", "clientId": 3}, "invalid_argument"),
        # PostgreSQL cannot store a NUL in text, and SQLite's text would end at it.
        ("message:send", {"room": "lobby", "text": "before\x00after"}, "invalid_argument"),
        ("message:send", {"room": "lobby", "text": "ok", "clientId": "k\x00"}, "invalid_argument"),
        ("message:send", {"room": "lobby", "text": "ok", "clientId": "line\nbreak"}, "invalid_argument"),
        ("history:get", {"room": "lobby", "limit": "ten"}, "invalid_argument"),
        ("history:get", {"room": "lobby", "limit": 1000}, "invalid_argument"),
        ("history:get", {"room": "lobby", "before": 1.5}, "invalid_argument"),
        ("history:get", {"with": 5}, "invalid_argument"),
        ("dm:send", {"to": 7, "text": "hi"}, "invalid_argument"),
        ("friend:request", {"handle": 5}, "invalid_argument"),
        ("friend:accept", {}, "invalid_argument"),
        ("block", {"handle": None}, "invalid_argument"),
        ("typing", {"room": 5}, "invalid_argument"),
        ("typing", {}, "invalid_argument"),
        ("typing", {"room": "lobby", "typing": "yes"}, "invalid_argument"),
        ("room:retention", {"room": "lobby"}, "invalid_argument"),
        ("room:remove", {"room": "lobby"}, "invalid_argument"),
        ("image:get", {"id": "x"}, "invalid_argument"),
        ("image:get", {}, "invalid_argument"),
        ("message:delivered", {"ids": ["a"]}, "invalid_argument"),
        ("message:read", {"ids": [1] * 101}, "invalid_argument"),
        ("friend:list", [], "invalid_argument"),
    ],
)
def test_bad_input_to_every_event_gets_a_clear_error(parley, event, payload, code):
    chatter = Chatter(parley, auth={"name": "tester"})
    try:
        if event in ("message:send", "history:get", "typing", "room:retention", "room:remove"):
            chatter.ok("room:join", {"room": "lobby"})
        assert chatter.error(event, payload) == code
        # The connection is still fine afterwards.
        assert chatter.ok("me")["user"]["name"] == "tester"
    finally:
        chatter.close()


def test_a_restart_loses_no_acknowledged_message():
    server = start_parley()
    token = register(server, "durable")["token"]
    chatter = Chatter(server, auth={"token": token})
    chatter.ok("room:join", {"room": "journal"})
    acked = [chatter.ok("message:send", {"room": "journal", "text": f"note {i}", "clientId": f"n{i}"})["message"]["id"] for i in range(20)]
    chatter.close()
    assert server.stop() == 0
    restarted = start_parley(database=server.database)
    try:
        back = Chatter(restarted, auth={"token": token})
        history = back.ok("history:get", {"room": "journal", "limit": 50})
        assert [m["id"] for m in history["messages"]] == acked
        # A retry after the restart is still recognised.
        assert back.ok("room:join", {"room": "journal"})
        assert back.ok("message:send", {"room": "journal", "text": "note 0", "clientId": "n0"})["message"]["id"] == acked[0]
        back.close()
    finally:
        restarted.stop()


def test_the_protocol_document_example_runs():
    """docs/PROTOCOL.md's python-socketio example, run as written against a fresh server."""
    import re
    import subprocess
    import sys
    from conftest import ROOT

    server = start_parley()
    try:
        register(server, "ada", password="correct horse battery")
        example = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "PROTOCOL.md").read_text(), re.S).group(1)
        script = example.replace("http://localhost:3000", server.url) + "\nsio.sleep(0.5)\nsio.disconnect()\n"
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "ada: hello" in result.stdout
        assert "'ok': True" in result.stdout
    finally:
        server.stop()


def test_two_accounts_become_friends_and_write_while_a_third_is_refused(parley):
    ada = Chatter(parley, auth={"token": register(parley, "dm_ada")["token"]})
    ada_phone = Chatter(parley, auth={"token": requests.post(parley.url + "/api/login", json={"handle": "dm_ada", "password": "a long password"}, timeout=10).json()["token"]}, transports=("polling",))
    bob = Chatter(parley, auth={"token": register(parley, "dm_bob")["token"]})
    eve = Chatter(parley, auth={"token": register(parley, "dm_eve")["token"]})
    guest = Chatter(parley, auth={"name": "dm_guest"})
    try:
        assert ada.ok("friend:request", {"handle": "DM_BOB"})["status"] == "pending"
        eventually(lambda: bob.friend_events)
        assert bob.friend_events[0] == ("request", {"from": ada.ok("me")["user"]})
        assert [u["name"] for u in bob.ok("friend:list", {})["incoming"]] == ["dm_ada"]
        assert ada.error("dm:send", {"to": "dm_bob", "text": "too early"}) == "not_friends"
        accepted = bob.ok("friend:accept", {"handle": "dm_ada"})
        assert accepted["user"]["name"] == "dm_ada"
        eventually(lambda: ada.friend_events)
        assert ada.friend_events[0][1]["status"] == "accepted" and ada.friend_events[0][1]["user"]["name"] == "dm_bob"
        assert [u["name"] for u in ada.ok("friend:list", {})["friends"]] == ["dm_bob"]
        # Direct messages reach both of Ada's connections and Bob, nobody else.
        sent = ada.ok("dm:send", {"to": "dm_bob", "text": "hello bob", "clientId": "x1"})["message"]
        assert sent["to"]["name"] == "dm_bob" and "room" not in sent
        bob.ok("dm:send", {"to": "dm_ada", "text": "hello ada"})
        for chatter in (ada, ada_phone, bob):
            eventually(lambda chatter=chatter: len(chatter.dms) == 2)
            assert [m["text"] for m in chatter.dms] == ["hello bob", "hello ada"]
        assert ada.ok("dm:send", {"to": "dm_bob", "text": "hello bob", "clientId": "x1"})["message"]["id"] == sent["id"]
        history = bob.ok("history:get", {"with": "dm_ada"})
        assert [m["text"] for m in history["messages"]] == ["hello bob", "hello ada"]
        # Eve is refused everywhere, and saw nothing.
        assert eve.error("dm:send", {"to": "dm_ada", "text": "psst"}) == "not_friends"
        assert eve.error("history:get", {"with": "dm_ada"}) == "not_friends"
        assert guest.error("friend:request", {"handle": "dm_ada"}) == "account_required"
        assert guest.error("dm:send", {"to": "dm_ada", "text": "hi"}) == "account_required"
        assert eve.error("friend:request", {"handle": "nobody_here"}) == "unknown_user"
        time.sleep(0.3)
        assert eve.dms == [] and guest.dms == []
        # A block: Eve's later request gets only a generic refusal; Ada's friendship with Bob ends.
        ada.ok("block", {"handle": "dm_eve"})
        assert eve.error("friend:request", {"handle": "dm_ada"}) == "refused"
        ada.ok("block", {"handle": "dm_bob"})
        assert bob.error("dm:send", {"to": "dm_ada", "text": "still there?"}) == "not_friends"
        assert [u["name"] for u in ada.ok("friend:list", {})["blocked"]] == ["dm_bob", "dm_eve"]
        # Rejection lets a new request be sent.
        ada.ok("unblock", {"handle": "dm_eve"})
        eve.ok("friend:request", {"handle": "dm_ada"})
        ada.ok("friend:reject", {"handle": "dm_eve"})
        assert eve.ok("friend:request", {"handle": "dm_ada"})["status"] == "pending"
    finally:
        for chatter in (ada, ada_phone, bob, eve, guest):
            chatter.close()


def login(server, handle, password="a long password"):
    response = requests.post(server.url + "/api/login", json={"handle": handle, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def make_friends(a, b, b_handle, a_handle):
    a.ok("friend:request", {"handle": b_handle})
    b.ok("friend:accept", {"handle": a_handle})


def test_an_offline_account_gets_room_and_direct_messages_in_order_exactly_once(parley):
    sender = Chatter(parley, auth={"token": register(parley, "sf_sender")["token"]})
    register(parley, "sf_away")
    away = Chatter(parley, auth={"token": login(parley, "sf_away")})
    make_friends(sender, away, "sf_away", "sf_sender")
    sender.ok("room:join", {"room": "sf-room"})
    away.ok("room:join", {"room": "sf-room"})
    away.close()
    expected = []
    for index in range(6):
        if index % 3 == 2:
            sender.ok("dm:send", {"to": "sf_away", "text": f"direct {index}"})
        else:
            sender.ok("message:send", {"room": "sf-room", "text": f"room {index}"})
        expected.append(f"{'direct' if index % 3 == 2 else 'room'} {index}")
    # Back: everything waits, in order, once; it is acknowledged; the sender gets receipts.
    back = Chatter(parley, auth={"token": login(parley, "sf_away")}, transports=("polling",))
    eventually(lambda: len(back.messages) + len(back.dms) == 6)
    arrived = sorted(back.messages + back.dms, key=lambda m: m["id"])
    assert [m["text"] for m in arrived] == expected
    # Direct messages carry their recipient; room messages their room.
    assert all(("to" in m) == m["text"].startswith("direct") for m in arrived)
    assert all(m.get("room") == "sf-room" for m in arrived if "to" not in m)
    ids = [m["id"] for m in arrived]
    assert len(set(ids)) == 6
    # Present in its room again without joining.
    assert [m["name"] for m in back.ok("room:members", {"room": "sf-room"})["members"]] == ["sf_away", "sf_sender"]
    back.ok("message:delivered", {"ids": ids})
    eventually(lambda: len(sender.receipts) == 6)
    assert sorted(r["id"] for r in sender.receipts) == ids
    assert {r["status"] for r in sender.receipts} == {"delivered"}
    assert {r["by"]["name"] for r in sender.receipts} == {"sf_away"}
    back.close()
    # Acknowledged messages do not come again.
    again = Chatter(parley, auth={"token": login(parley, "sf_away")})
    time.sleep(0.5)
    assert again.messages == [] and again.dms == []
    again.close()
    sender.close()


def test_an_unacknowledged_message_comes_again_on_the_next_connection(parley):
    sender = Chatter(parley, auth={"token": register(parley, "ua_sender")["token"]})
    register(parley, "ua_reader")
    reader = Chatter(parley, auth={"token": login(parley, "ua_reader")})
    make_friends(sender, reader, "ua_reader", "ua_sender")
    sent = sender.ok("dm:send", {"to": "ua_reader", "text": "ack me"})["message"]
    eventually(lambda: reader.dms)
    reader.close()
    # Not acknowledged: it comes back once on reconnecting.
    reader = Chatter(parley, auth={"token": login(parley, "ua_reader")})
    eventually(lambda: reader.dms)
    assert [m["id"] for m in reader.dms] == [sent["id"]]
    reader.close()
    sender.close()


def test_receipts_and_typing_reach_the_right_people_and_nobody_else(parley):
    ada = Chatter(parley, auth={"token": register(parley, "rt_ada")["token"]})
    bob = Chatter(parley, auth={"token": register(parley, "rt_bob")["token"]})
    cy = Chatter(parley, auth={"token": register(parley, "rt_cyd")["token"]})
    outsider = Chatter(parley, auth={"name": "rt_outsider"})
    try:
        for chatter in (ada, bob, cy):
            chatter.ok("room:join", {"room": "rt-room"})
        outsider.ok("room:join", {"room": "rt-elsewhere"})
        message = ada.ok("message:send", {"room": "rt-room", "text": "did you read this?"})["message"]
        eventually(lambda: bob.messages and cy.messages)
        bob.ok("message:delivered", {"ids": [message["id"]]})
        bob.ok("message:read", {"ids": [message["id"]]})
        eventually(lambda: len(ada.receipts) == 2)
        assert [(r["status"], r["by"]["name"], r["room"]) for r in ada.receipts] == [("delivered", "rt_bob", "rt-room"), ("read", "rt_bob", "rt-room")]
        # The outsider cannot claim to have read it.
        outsider.ok("message:read", {"ids": [message["id"]]})
        # Typing: the others in the room see it, not the typist, not the outsider.
        cy.ok("typing", {"room": "rt-room", "typing": True})
        eventually(lambda: ada.typing and bob.typing)
        assert ada.typing[0] == {"room": "rt-room", "from": cy.ok("me")["user"], "typing": True}
        # Typing to a friend.
        make_friends(ada, bob, "rt_bob", "rt_ada")
        bob.ok("typing", {"to": "rt_ada", "typing": False})
        eventually(lambda: len(ada.typing) == 2)
        assert ada.typing[1]["typing"] is False and "room" not in ada.typing[1]
        time.sleep(0.3)
        assert cy.typing == [] and outsider.typing == [] and len(bob.typing) == 1
        assert len(ada.receipts) == 2 and bob.receipts == [] and cy.receipts == [] and outsider.receipts == []
        assert outsider.error("typing", {"room": "rt-room"}) == "not_a_member"
        assert outsider.error("typing", {"to": "rt_ada"}) == "account_required"
        assert ada.error("message:delivered", {"ids": "all"}) == "invalid_argument"
        assert ada.error("message:read", {"ids": []}) == "invalid_argument"
    finally:
        for chatter in (ada, bob, cy, outsider):
            chatter.close()


def test_the_owner_moderates_a_room(parley):
    owner = Chatter(parley, auth={"token": register(parley, "mod_owner")["token"]})
    member = Chatter(parley, auth={"name": "mod_member"})
    watcher = Chatter(parley, auth={"name": "mod_watcher"})
    removed_events, cleared_events = [], []
    member.client.on("room:removed", lambda payload: removed_events.append(payload))
    watcher.client.on("room:cleared", lambda payload: cleared_events.append(payload))
    try:
        owner.ok("room:join", {"room": "mod-room"})
        member.ok("room:join", {"room": "mod-room"})
        member_id = next(m["id"] for m in member.ok("room:members", {"room": "mod-room"})["members"] if m["name"] == "mod_member")
        watcher.ok("room:join", {"room": "mod-room"})
        member.ok("message:send", {"room": "mod-room", "text": "spam"})
        assert member.error("room:clear", {"room": "mod-room"}) == "not_owner"
        assert member.error("room:remove", {"room": "mod-room", "user": member_id}) == "not_owner"
        assert owner.ok("room:clear", {"room": "mod-room"})["deleted"] == 1
        eventually(lambda: cleared_events)
        assert cleared_events[0]["by"]["name"] == "mod_owner"
        assert watcher.ok("history:get", {"room": "mod-room"})["messages"] == []
        owner.ok("room:remove", {"room": "mod-room", "user": member_id})
        eventually(lambda: removed_events)
        assert removed_events[0]["user"]["name"] == "mod_member"
        assert member.error("message:send", {"room": "mod-room", "text": "let me back"}) == "not_a_member"
        eventually(lambda: [m["name"] for m in watcher.members[-1]["members"]] == ["mod_owner", "mod_watcher"])
    finally:
        for chatter in (owner, member, watcher):
            chatter.close()


def test_sending_too_fast_is_refused_clearly_and_recovers(parley):
    chatter = Chatter(parley, auth={"name": "hasty"})
    try:
        chatter.ok("room:join", {"room": "fast-room"})
        codes = [chatter.call("message:send", {"room": "fast-room", "text": f"m{i}"}) for i in range(45)]
        refused = [reply for reply in codes if not reply["ok"]]
        assert refused, "45 messages at once must pass the burst of 30"
        assert {reply["error"]["code"] for reply in refused} == {"rate_limited"}
        assert "try again" in refused[0]["error"]["message"]
        time.sleep(1.2)
        assert chatter.ok("message:send", {"room": "fast-room", "text": "calmer now"})
        joins = [chatter.call("room:join", {"room": f"join-{i}"}) for i in range(15)]
        assert any(not reply["ok"] and reply["error"]["code"] == "rate_limited" for reply in joins)
    finally:
        chatter.close()


PNG = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(256)) * 40
GIF = b"GIF89a" + bytes(range(200))


def test_images_are_checked_stored_and_served_to_members_only(parley):
    ada = Chatter(parley, auth={"token": register(parley, "img_ada")["token"]})
    bob = Chatter(parley, auth={"token": register(parley, "img_bob")["token"]}, transports=("polling",))
    outsider = Chatter(parley, auth={"name": "img_outsider"})
    try:
        ada.ok("room:join", {"room": "gallery"})
        bob.ok("room:join", {"room": "gallery"})
        outsider.ok("room:join", {"room": "elsewhere"})
        sent = ada.ok("message:send", {"room": "gallery", "text": "a picture", "image": PNG})["message"]
        assert sent["image"] == {"type": "image/png", "size": len(PNG)}
        eventually(lambda: bob.messages)
        assert bob.messages[0]["image"] == {"type": "image/png", "size": len(PNG)}
        fetched = bob.ok("image:get", {"id": sent["id"]})
        assert fetched["type"] == "image/png" and fetched["data"] == PNG
        assert outsider.error("image:get", {"id": sent["id"]}) == "not_found"
        assert outsider.error("image:get", {"id": 10**12}) == "not_found"
        # Checked by content, whatever the client claims.
        assert ada.error("message:send", {"room": "gallery", "image": b"<svg onload=alert(1)>"}) == "unsupported_image"
        assert ada.error("message:send", {"room": "gallery", "image": PNG[:8] + bytes(950_000)}) == "image_too_large"
        # Between friends, an image alone.
        make_friends(ada, bob, "img_bob", "img_ada")
        direct = ada.ok("dm:send", {"to": "img_bob", "image": GIF})["message"]
        assert direct["image"]["type"] == "image/gif" and direct["text"] == ""
        assert bob.ok("image:get", {"id": direct["id"]})["data"] == GIF
        assert outsider.error("image:get", {"id": direct["id"]}) == "not_found"
        time.sleep(0.3)
        assert outsider.messages == [] and outsider.dms == []
    finally:
        for chatter in (ada, bob, outsider):
            chatter.close()


def test_a_long_inbox_replays_to_a_polling_client(parley):
    """More messages waiting than one poll response may carry for python-engineio (16 packets):
    the replay goes out over several polls, in order, each one a payload python-engineio's own
    decoder accepts, and a python-socketio polling client gets all of it."""
    import json

    from engineio import payload as engineio_payload

    token = register(parley, "long_inbox")["token"]
    member = Chatter(parley, auth={"token": token})
    member.ok("room:join", {"room": "long-inbox"})
    member.close()
    senders = [Chatter(parley, auth={"token": register(parley, f"long_sender{i}")["token"]}) for i in range(3)]
    sent = []
    for sender in senders:
        sender.ok("room:join", {"room": "long-inbox"})
        sent += [sender.ok("message:send", {"room": "long-inbox", "text": f"{len(sent) + i}"})["message"]["id"] for i in range(20)]
    # By hand first: connect, then let the replay queue up before polling.
    base = parley.url + "/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
    assert requests.post(f"{base}&sid={sid}", data="40" + json.dumps({"token": token}), timeout=5).text == "ok"
    time.sleep(0.5)
    replayed = []
    while len(replayed) < len(sent):
        body = requests.get(f"{base}&sid={sid}", timeout=5).text
        packets = engineio_payload.Payload(encoded_payload=body).packets  # raises past 16 packets
        assert len(packets) <= 16
        replayed += [json.loads(p.data[1:])[1]["id"] for p in packets if isinstance(p.data, str) and p.data.startswith('2["message"')]
    assert replayed == sent
    requests.post(f"{base}&sid={sid}", data="1", timeout=5)
    back = Chatter(parley, auth={"token": token}, transports=("polling",))
    try:
        eventually(lambda: len(back.messages) >= len(sent), timeout=10)
        assert [m["id"] for m in back.messages] == sent
        assert back.ok("room:join", {"room": "long-inbox"})["ok"] and back.client.connected
    finally:
        back.close()
        for sender in senders:
            sender.close()


def test_devices_publish_their_keys_and_friends_read_them(parley):
    ada = Chatter(parley, auth={"token": register(parley, "dev_ada")["token"]})
    bob = Chatter(parley, auth={"token": register(parley, "dev_bob")["token"]}, transports=("polling",))
    eve = Chatter(parley, auth={"token": register(parley, "dev_eve")["token"]})
    guest = Chatter(parley, auth={"name": "dev guest"})
    try:
        key = bytes(range(32))
        device = ada.ok("device:publish", {"deviceId": "ada-laptop", "publicKey": key})["device"]
        assert device["deviceId"] == "ada-laptop" and device["publicKey"] == key
        assert ada.error("device:publish", {"deviceId": "ada-phone", "publicKey": key[:31]}) == "invalid_argument"
        assert ada.error("device:publish", {"deviceId": "ada phone", "publicKey": key}) == "invalid_argument"
        assert ada.error("device:publish", {"deviceId": "ada-phone", "publicKey": key.hex()}) == "invalid_argument"
        assert guest.error("device:publish", {"deviceId": "g", "publicKey": key}) == "account_required"
        # Only friends read each other's devices.
        assert eve.error("device:list", {"handle": "dev_ada"}) == "not_friends"
        bob.ok("friend:request", {"handle": "dev_ada"})
        ada.ok("friend:accept", {"handle": "dev_bob"})
        listed = bob.ok("device:list", {"handle": "dev_ada"})
        assert listed["user"]["name"] == "dev_ada"
        assert [(d["deviceId"], d["publicKey"]) for d in listed["devices"]] == [("ada-laptop", key)]
        # A new key for the same device replaces the old one.
        ada.ok("device:publish", {"deviceId": "ada-laptop", "publicKey": bytes(32)})
        assert [d["publicKey"] for d in bob.ok("device:list", {"handle": "dev_ada"})["devices"]] == [bytes(32)]
    finally:
        for chatter in (ada, bob, eve, guest):
            chatter.close()
