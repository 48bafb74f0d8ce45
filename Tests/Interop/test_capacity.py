"""A server at its connection limit: new clients are told it is full (HTTP 503, Engine.IO code
6, Retry-After) by either transport, the clients it has keep chatting, and a client that comes
back once there is room gets in. The default limit follows the open-file limit, which the
server raises to its hard value on start."""

import json
import os
import re
import resource
import subprocess
import time

import pytest
import requests
import socketio
import websocket

from conftest import bin_dir, eventually, start_parley
from test_chat import Chatter
from test_parley import metric
from wire import open_websocket

FULL = {"code": 6, "message": "The server is full; try again in a few seconds."}


def handshake(server, transport):
    """A raw Engine.IO handshake by `transport`: (status, headers, JSON body) when refused,
    else the open WebSocket (or the polling answer's status and body)."""
    if transport == "polling":
        answer = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
        return answer.status_code, answer.headers, answer.text
    try:
        return open_websocket(server.ws_url)
    except websocket.WebSocketBadStatusException as refused:
        return refused.status_code, refused.resp_headers, refused.resp_body.decode()


def assert_full(answer):
    status, headers, body = answer
    assert status == 503, answer
    assert headers["retry-after"] == "5"
    assert json.loads(body) == FULL


def sessions(server):
    return requests.get(server.url + "/healthz", timeout=5).json()["sessions"]


def test_a_full_server_turns_new_clients_away_with_503_and_keeps_serving_the_others():
    server = start_parley("--max-connections", "3")
    chatters = []
    try:
        chatters = [Chatter(server, auth={"name": f"seat{number}"}, transports=transports)
                    for number, transports in enumerate([("websocket",), ("websocket",), ("polling",)])]
        for chatter in chatters:
            chatter.ok("room:join", {"room": "booth"})

        assert_full(handshake(server, "polling"))
        assert_full(handshake(server, "websocket"))
        # python-socketio, turned away by either transport, says it could not connect.
        for transport in ("websocket", "polling"):
            with pytest.raises(socketio.exceptions.ConnectionError):
                socketio.Client(reconnection=False).connect(server.url, transports=[transport], wait_timeout=5)

        # Our own terminal client says why.
        turned_away = subprocess.run(
            [str(bin_dir() / "parley"), "chat", "--server", server.url, "--name", "late", "--send", "hello?"],
            capture_output=True, text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"},
        )
        assert turned_away.returncode != 0
        assert "refused with HTTP 503: The server is full; try again in a few seconds." in turned_away.stdout

        # Those inside go on: a message reaches the others.
        chatters[0].ok("message:send", {"room": "booth", "text": "still here"})
        eventually(lambda: [m["text"] for m in chatters[2].messages] == ["still here"])
        assert sessions(server) == 3

        # One leaves; the next to come gets its seat.
        chatters.pop(1).close()
        eventually(lambda: sessions(server) == 2)
        chatters.append(Chatter(server, auth={"name": "latecomer"}))
        chatters[-1].ok("room:join", {"room": "booth"})

        text = requests.get(server.url + "/metrics", timeout=5).text
        assert metric(text, "engineio_errors_total", '{kind="http_6"}') == 5
        assert server.alive()
    finally:
        for chatter in chatters:
            chatter.close()
        assert server.stop() == 0
    with open(server.log, errors="replace") as log:
        logged = log.read()
    assert "accepting at most 3 connections" in logged
    # Five refusals within ten seconds: said once.
    assert logged.count("the server is full") == 1


def lower_the_soft_open_file_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 300))


def test_the_default_limit_follows_the_open_file_limit_raised_to_its_hard_value():
    """Started with a soft open-file limit of 128 and a hard one of 300, the server raises the
    soft one to 300 and takes 225 connections (300 less a quarter). The 226th is turned away
    while the server can still open what it needs: after one leaves, a client of the native
    API connects, joins and stores a message."""
    server = start_parley(preexec_fn=lower_the_soft_open_file_limit)
    sockets = []
    try:
        with open(server.log, errors="replace") as log:
            assert re.search(r"open-file limit 300; accepting at most 225 connections", log.read())
        for _ in range(225):
            sockets.append(open_websocket(server.ws_url))
            assert sockets[-1].recv().startswith("0{")
        assert_full(handshake(server, "websocket"))
        assert_full(handshake(server, "polling"))
        assert server.alive()

        sockets.pop().close()
        eventually(lambda: sessions(server) == 224)
        chatter = Chatter(server, auth={"name": "heir"})
        chatter.ok("room:join", {"room": "after"})
        assert chatter.ok("message:send", {"room": "after", "text": "stored"})["message"]["text"] == "stored"
        chatter.close()
    finally:
        for open_socket in sockets:
            open_socket.close()
        assert server.stop() == 0


TOO_MANY = {"code": 7, "message": "Too many connections from your address; close one, or try again later."}


def polling_handshake(server, forwarded_for=None):
    """A raw polling handshake, with an `X-Forwarded-For` header if given: (status, body)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    answer = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", headers=headers, timeout=5)
    return answer.status_code, answer.text


def test_one_address_may_hold_only_so_many_connections():
    """`--max-connections-per-address 2`: a third session from 127.0.0.1 is answered 429 (code 7,
    Retry-After) by either transport; the two keep chatting; a header naming another address
    changes nothing (no proxy is trusted); once one leaves, the address may connect again."""
    server = start_parley("--max-connections-per-address", "2")
    chatters = []
    try:
        chatters = [Chatter(server, auth={"name": f"twin{number}"}) for number in range(2)]
        for transport in ("polling", "websocket"):
            status, headers, body = handshake(server, transport)
            assert (status, headers["retry-after"], json.loads(body)) == (429, "5", TOO_MANY)
        status, body = polling_handshake(server, forwarded_for="203.0.113.7")
        assert (status, json.loads(body)) == (429, TOO_MANY)
        with pytest.raises(socketio.exceptions.ConnectionError):
            socketio.Client(reconnection=False).connect(server.url, transports=["websocket"], wait_timeout=5)

        chatters[0].ok("room:join", {"room": "pair"})
        chatters[1].ok("room:join", {"room": "pair"})
        chatters[0].ok("message:send", {"room": "pair", "text": "just us"})
        eventually(lambda: [m["text"] for m in chatters[1].messages] == ["just us"])

        chatters.pop().close()
        eventually(lambda: sessions(server) == 1)
        chatters.append(Chatter(server, auth={"name": "third"}))
        text = requests.get(server.url + "/metrics", timeout=5).text
        assert metric(text, "engineio_errors_total", '{kind="http_7"}') == 4
    finally:
        for chatter in chatters:
            chatter.close()
        assert server.stop() == 0


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_counted():
    """With `--trusted-proxy 127.0.0.1` and one connection per address, the address counted is
    the last one in X-Forwarded-For that is not the proxy's: two forwarded clients get a session
    each, a second from either is refused, a chain that ends at the proxy counts its client, and
    an address a client put first in the header cannot take another's place. The proxy's own
    request (no header) counts as 127.0.0.1."""
    server = start_parley("--max-connections-per-address", "1", "--trusted-proxy", "127.0.0.1")
    try:
        assert polling_handshake(server, "198.51.100.1")[0] == 200
        assert polling_handshake(server, "198.51.100.2")[0] == 200
        assert polling_handshake(server, "198.51.100.1")[0] == 429
        assert polling_handshake(server, "198.51.100.2, 127.0.0.1")[0] == 429
        # A client may write anything first; the proxy appends what it saw: that one counts.
        assert polling_handshake(server, "198.51.100.9, 198.51.100.1")[0] == 429
        assert polling_handshake(server, "198.51.100.1, 198.51.100.3")[0] == 200
        assert polling_handshake(server)[0] == 200
        assert polling_handshake(server)[0] == 429
        assert sessions(server) == 4
    finally:
        assert server.stop() == 0


def test_bad_limits_and_proxies_stop_serve_with_a_clear_message():
    for flags, says in [
        (["--max-connections", "0"], "--max-connections must be positive"),
        (["--max-connections-per-address", "0"], "--max-connections-per-address must be positive"),
        (["--trusted-proxy", "proxy.internal"], "--trusted-proxy is an IP address, such as 127.0.0.1 or ::1, not 'proxy.internal'"),
    ]:
        done = subprocess.run([str(bin_dir() / "parley"), "serve", "--port", "1", *flags], capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and says in done.stderr, (flags, done.stderr)


def test_sign_ins_from_one_address_are_limited_by_default():
    """Each sign-in or registration costs the server a slow password hash, so an address gets 30
    at once and then one every two seconds (the default, 30 a minute): the 31st guess is answered
    429 `rate_limited` with Retry-After, even with the right password and by tutorial 3's routes
    too, while another address (behind a trusted proxy here) signs in; once the wait is over, the
    first may try again."""
    server = start_parley("--trusted-proxy", "127.0.0.1", sign_in_limit=None)

    def attempt(path, address, password):
        return requests.post(server.url + path, json={"handle": "vault", "password": password},
                             headers={"X-Forwarded-For": address}, timeout=30)

    try:
        assert attempt("/api/register", "198.51.100.20", "the right one").status_code == 201
        guesser = "198.51.100.66"
        # Guess until refused. Each hash takes a while (a debug build's far longer), and the
        # bucket refills meanwhile: 30 guesses, plus one per two seconds spent.
        started, guesses = time.monotonic(), 0
        while (answer := attempt("/api/login", guesser, "a guess")).status_code == 401:
            guesses += 1
            assert guesses <= 30 + (time.monotonic() - started) / 2 + 1, guesses
        assert answer.status_code == 429 and guesses >= 30, (answer.status_code, guesses)
        refused = attempt("/api/login", guesser, "the right one")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.json()["error"]["message"].startswith("Too many sign-in attempts from your address; try again in ")
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 2
        assert attempt("/api/register", guesser, "another account").status_code == 429
        # Tutorial 3's form routes hash passwords too, and share the address's budget.
        tutorial = requests.post(server.url + "/login", data={"handle": "vault", "password": "the right one"},
                                 headers={"X-Forwarded-For": guesser}, timeout=30)
        assert tutorial.status_code == 429 and tutorial.text.startswith("Too many sign-in attempts from your address")
        assert attempt("/api/login", "198.51.100.20", "the right one").status_code == 200
        time.sleep(wait + 0.2)
        assert attempt("/api/login", guesser, "the right one").status_code == 200
    finally:
        assert server.stop() == 0
