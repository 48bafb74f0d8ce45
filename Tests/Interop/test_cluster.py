"""Several `parley serve` nodes sharing one PostgreSQL database: what one node's clients send
reaches the clients of the others, through the PostgreSQL cluster bus (LISTEN/NOTIFY, with
large messages passed through a table)."""

import pytest
import requests

from conftest import eventually, fresh_postgres_database, start_parley
from test_chat import Chatter, register
from test_tutorials import Recorder


@pytest.fixture(scope="module")
def nodes():
    database = fresh_postgres_database()
    started = [start_parley(database=database) for _ in range(2)]
    yield started
    for node in started:
        node.stop()


def test_tutorial_1_room_chat_crosses_nodes(nodes):
    a, b = nodes
    one = Recorder(a, ["websocket"])
    two = Recorder(b, ["polling", "websocket"])
    try:
        one.emit("login", "one")
        one.emit("join", "t1-cluster")
        two.emit("login", "two")
        two.emit("join", "t1-cluster")
        one.emit("chat", "from node A")
        eventually(lambda: len(two.events) == 1)
        assert two.events == [("message", [{"user": "one", "message": "from node A"}])]
        for index in range(20):
            two.emit("chat", f"b{index}")
        eventually(lambda: len(one.events) == 21)
        # One node's messages reach the other in the order they were sent.
        assert [payload[0]["message"] for _, payload in one.events[1:]] == [f"b{i}" for i in range(20)]
    finally:
        one.close()
        two.close()


def test_accounts_on_two_nodes_chat_befriend_and_write_directly(nodes):
    a, b = nodes
    ada = Chatter(a, auth={"token": register(a, "cl_ada")["token"]})
    # Registered on one node, logged in on the other: one store.
    register(b, "cl_bob")
    token = requests.post(a.url + "/api/login", json={"handle": "cl_bob", "password": "a long password"}, timeout=10).json()["token"]
    bob = Chatter(b, auth={"token": token}, transports=("polling", "websocket"))
    try:
        ada.ok("room:join", {"room": "cluster-room"})
        bob.ok("room:join", {"room": "cluster-room"})
        sent = ada.ok("message:send", {"room": "cluster-room", "text": "hello from A"})["message"]
        eventually(lambda: [m["text"] for m in bob.messages] == ["hello from A"])
        assert bob.messages[0]["id"] == sent["id"] and bob.messages[0]["from"]["name"] == "cl_ada"
        # Larger than a PostgreSQL notification may be (8,000 bytes): it goes through the table.
        large = "€" * 4000
        ada.ok("message:send", {"room": "cluster-room", "text": large})
        eventually(lambda: len(bob.messages) == 2)
        assert bob.messages[1]["text"] == large
        assert [m["text"] for m in bob.ok("history:get", {"room": "cluster-room"})["messages"]] == ["hello from A", large]

        ada.ok("friend:request", {"handle": "cl_bob"})
        eventually(lambda: bob.friend_events)
        assert bob.friend_events[0][0] == "request" and bob.friend_events[0][1]["from"]["name"] == "cl_ada"
        bob.ok("friend:accept", {"handle": "cl_ada"})
        eventually(lambda: ada.friend_events)
        ada.ok("dm:send", {"to": "cl_bob", "text": "direct, A to B"})
        bob.ok("dm:send", {"to": "cl_ada", "text": "direct, B to A"})
        for chatter in (ada, bob):
            eventually(lambda chatter=chatter: len(chatter.dms) == 2)
            assert sorted(m["text"] for m in chatter.dms) == ["direct, A to B", "direct, B to A"]
    finally:
        ada.close()
        bob.close()


def names(members_payload):
    return [member["name"] for member in members_payload["members"]]


def test_member_lists_and_notices_are_cluster_wide(nodes):
    a, b = nodes
    ann = Chatter(a, auth={"name": "ann"})
    bob = Chatter(b, auth={"name": "bob"}, transports=("polling", "websocket"))
    try:
        assert names(ann.ok("room:join", {"room": "presence"})) == ["ann"]
        # bob, on the other node, sees ann in the list he gets on joining; ann hears of him.
        joined = bob.ok("room:join", {"room": "presence"})
        assert names(joined) == ["ann", "bob"]
        eventually(lambda: ann.members and names(ann.members[-1]) == ["ann", "bob"])
        eventually(lambda: [n["text"] for n in ann.notices] == ["ann joined", "bob joined"])
        assert names(ann.ok("room:members", {"room": "presence"})) == ["ann", "bob"]
        # A name taken on one node is taken on the other.
        clash = Chatter(a, auth={"name": "BOB"})
        assert clash.error("room:join", {"room": "presence"}) == "name_taken"
        clash.close()
        bob.close()
        eventually(lambda: [n["text"] for n in ann.notices] == ["ann joined", "bob joined", "bob left"])
        eventually(lambda: names(ann.members[-1]) == ["ann"])
    finally:
        ann.close()
        bob.close()


def test_tutorial_2_names_and_room_data_cross_nodes(nodes):
    a, b = nodes
    alice = Recorder(a, ["websocket"])
    bob = Recorder(b, ["polling"])
    other = Recorder(b, ["websocket"])
    try:
        assert alice.call("join", {"name": "alice", "room": "t2-cluster"}) is None
        # Taken on node A, so taken on node B.
        eventually(lambda: other.call("join", {"name": "Alice", "room": "t2-cluster"}) == "Username is taken.")
        assert bob.call("join", {"name": "bob", "room": "t2-cluster"}) is None
        users = [{"id": alice.client.get_sid(), "name": "alice", "room": "t2-cluster"},
                 {"id": bob.client.get_sid(), "name": "bob", "room": "t2-cluster"}]
        assert bob.events[1] == ("roomData", [{"room": "t2-cluster", "users": users}])
        eventually(lambda: len(alice.events) == 4)
        assert alice.events[2:] == [("message", [{"user": "admin", "text": "bob has joined!"}]),
                                    ("roomData", [{"room": "t2-cluster", "users": users}])]
        assert alice.call("sendMessage", "across") is None
        eventually(lambda: bob.events[-1:] == [("message", [{"user": "alice", "text": "across"}])])
        bob.close()
        eventually(lambda: len(alice.events) == 7)
        assert alice.events[5:] == [("message", [{"user": "Admin", "text": "bob has left."}]),
                                    ("roomData", [{"room": "t2-cluster", "users": users[:1]}])]
        alice.close()
        # Once alice is gone from node A, her name is free on node B.
        eventually(lambda: other.call("join", {"name": "alice", "room": "t2-cluster"}) is None)
    finally:
        for client in (alice, bob, other):
            client.close()


def test_one_free_name_taken_on_two_nodes_at_the_same_moment_goes_to_one(nodes):
    """Presence copies reach the other node milliseconds late; the names table in PostgreSQL
    decides when two people take one free name on two nodes at once."""
    import threading

    a, b = nodes
    pairs = [(Recorder(a, ["websocket"]), Recorder(b, ["websocket"])) for _ in range(15)]
    try:
        for index, (left, right) in enumerate(pairs):
            barrier = threading.Barrier(2)
            answers = {}

            def join(name, client):
                barrier.wait()
                answers[name] = client.call("join", {"name": f"twin{index}", "room": "t2-race"})

            threads = [threading.Thread(target=join, args=(side, client)) for side, client in (("a", left), ("b", right))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(answers.values(), key=str) == [None, "Username is taken."], answers
    finally:
        for left, right in pairs:
            left.close()
            right.close()


def test_a_node_that_starts_late_learns_who_is_present(nodes):
    a, b = nodes
    ann = Chatter(a, auth={"name": "early-ann"})
    ann.ok("room:join", {"room": "late-start"})
    late = start_parley(database=a.database)
    try:
        cal = Chatter(late, auth={"name": "cal"})
        assert names(cal.ok("room:join", {"room": "late-start"})) == ["cal", "early-ann"]
        cal.close()
    finally:
        ann.close()
        late.stop()


def test_a_killed_node_leaves_the_cluster_and_loses_no_acknowledged_message(nodes):
    import signal
    import time

    a, b = nodes
    c = start_parley(database=a.database)
    try:
        node_c = requests.get(c.url + "/healthz", timeout=5).json()["node"]
        eventually(lambda: node_c in requests.get(a.url + "/healthz", timeout=5).json()["nodes"], timeout=10)
        assert len(requests.get(a.url + "/healthz", timeout=5).json()["nodes"]) == 3
        token = register(c, "cl_cyd")["token"]
        cyd = Chatter(c, auth={"token": token})
        listener = Chatter(b, auth={"token": register(b, "cl_dee")["token"]})
        ghost = Chatter(c, auth={"name": "ghost"})
        ghost.ok("room:join", {"room": "kill-room"})
        cyd.ok("room:join", {"room": "kill-room"})
        assert names(listener.ok("room:join", {"room": "kill-room"})) == ["cl_cyd", "cl_dee", "ghost"]
        acked = [cyd.ok("message:send", {"room": "kill-room", "text": f"k{i}", "clientId": f"k{i}"})["message"]["id"] for i in range(10)]
        eventually(lambda: len(listener.messages) == 10)
        c.process.send_signal(signal.SIGKILL)
        c.process.wait(timeout=10)
        started = time.time()
        # The others see it gone once its heartbeat is older than the timeout (10 s).
        eventually(lambda: node_c not in requests.get(a.url + "/healthz", timeout=5).json()["nodes"], timeout=25)
        assert time.time() - started < 25
        # Its connections leave the member lists of the other nodes, with a notice each.
        eventually(lambda: listener.members and names(listener.members[-1]) == ["cl_dee"], timeout=10)
        assert sorted(n["text"] for n in listener.notices[-2:]) == ["cl_cyd left", "ghost left"]
        # Its client comes back on another node: everything acknowledged is there, once; a
        # retry of an acknowledged message is recognised.
        back = Chatter(a, auth={"token": token})
        back.ok("room:join", {"room": "kill-room"})
        history = back.ok("history:get", {"room": "kill-room", "limit": 50})["messages"]
        assert [m["id"] for m in history] == acked
        assert back.ok("message:send", {"room": "kill-room", "text": "k9", "clientId": "k9"})["message"]["id"] == acked[9]
        back.close()
        listener.close()
    finally:
        c.stop()
