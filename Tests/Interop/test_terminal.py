"""`parley chat` and `parley events` in a real pseudo-terminal (pexpect)."""

import os
import subprocess
import time

import pexpect
import requests

from conftest import bin_dir, eventually
from test_chat import Chatter


def spawn(*args, env=None):
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return pexpect.spawn(str(bin_dir() / "parley"), list(args), env=environment, encoding="utf-8", timeout=15)


def test_parley_chat_joins_sends_receives_lists_and_quits(parley):
    friend = Chatter(parley, auth={"name": "pyfriend"})
    friend.ok("room:join", {"room": "terminal-room"})
    chat = spawn("chat", "--server", parley.url, "--room", "terminal-room", "--name", "termi")
    try:
        chat.expect("#terminal-room: ")
        chat.expect("type /help")
        chat.sendline("hello from the terminal")
        chat.expect(r"sent #\d+")
        eventually(lambda: any(m["text"] == "hello from the terminal" for m in friend.messages))
        friend.ok("message:send", {"room": "terminal-room", "text": "hi terminal"})
        chat.expect(r"\d\d:\d\d #terminal-room pyfriend: hi terminal")
        chat.sendline("/who")
        chat.expect("#terminal-room: ")
        chat.expect("\r\n")
        assert sorted(chat.before.strip().split(", ")) == ["pyfriend", "termi"]
        chat.sendline("/history 5")
        chat.expect("termi: hello from the terminal")
        chat.sendline("/nonsense")
        chat.expect("unknown command")
        chat.sendline("/quit")
        chat.expect("bye")
        chat.expect(pexpect.EOF)
        chat.close()
        assert chat.exitstatus == 0
        eventually(lambda: any(n["text"] == "termi left" for n in friend.notices))
    finally:
        if chat.isalive():
            chat.terminate(force=True)
        friend.close()


def test_parley_chat_holds_a_refused_message_and_sends_it_again_in_order(parley):
    """Lines typed faster than the server's message rate (30 at once, then 10 a second): the
    refused one is not dropped with an error, as it was, but shown as not sent yet and sent
    again with its clientId; every line arrives once, in the order typed."""
    listener = Chatter(parley, auth={"name": "counter"})
    listener.ok("room:join", {"room": "flood"})
    chat = spawn("chat", "--server", parley.url, "--room", "flood", "--name", "typist")
    lines = [f"line {number:02}" for number in range(45)]
    try:
        chat.expect("type /help")
        chat.send("".join(line + "\n" for line in lines))
        chat.expect("not sent yet: .*Trying again")
        eventually(lambda: len([m for m in listener.messages if m["from"]["name"] == "typist"]) >= len(lines), timeout=20)
        time.sleep(0.5)
        assert [m["text"] for m in listener.messages if m["from"]["name"] == "typist"] == lines
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
        assert "! " not in chat.before
    finally:
        if chat.isalive():
            chat.terminate(force=True)
        listener.close()


def test_parley_chat_exits_cleanly_on_ctrl_c_and_ctrl_d(parley):
    for key in ("\x03", "\x04"):
        chat = spawn("chat", "--server", parley.url, "--room", "keys", "--name", f"keys{ord(key)}")
        chat.expect("type /help")
        chat.send(key)
        chat.expect(pexpect.EOF)
        chat.close()
        assert chat.exitstatus == 0, key


def test_parley_chat_send_mode_and_login(parley):
    listener = Chatter(parley, auth={"name": "listener"})
    listener.ok("room:join", {"room": "scripts"})
    sent = subprocess.run(
        [str(bin_dir() / "parley"), "chat", "--server", parley.url, "--room", "scripts", "--name", "bot", "--send", "automated"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "NO_COLOR": "1"},
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    eventually(lambda: any(m["text"] == "automated" and m["from"]["name"] == "bot" for m in listener.messages))
    requests.post(parley.url + "/api/register", json={"handle": "term_user", "password": "terminal secret"}, timeout=10)
    logged = subprocess.run(
        [str(bin_dir() / "parley"), "chat", "--server", parley.url, "--room", "scripts", "--login", "term_user", "--send", "as an account"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "NO_COLOR": "1", "PARLEY_PASSWORD": "terminal secret"},
    )
    assert logged.returncode == 0, logged.stdout + logged.stderr
    eventually(lambda: any(m["from"]["name"] == "term_user" and m["from"]["kind"] == "account" for m in listener.messages))
    wrong = subprocess.run(
        [str(bin_dir() / "parley"), "chat", "--server", parley.url, "--login", "term_user", "--send", "x"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PARLEY_PASSWORD": "wrong"},
    )
    assert wrong.returncode != 0 and "login failed" in wrong.stdout
    listener.close()


def test_parley_events_sends_an_event_and_prints_the_reply(parley):
    events = spawn("events", "--server", parley.url, "--auth", '{"name":"console"}')
    try:
        events.expect("connected to")
        events.sendline("me {}")
        events.expect(r'ack me \{"ok":true,"user":\{"id":"g_[^"]+","name":"console","kind":"guest"\}\}')
        events.send("\x04")
        events.expect(pexpect.EOF)
    finally:
        if events.isalive():
            events.terminate(force=True)
    # The third tutorial's event, whose name has a space: name alone, then the data; then on one line.
    relay = spawn("events", "--server", parley.url)
    try:
        relay.expect("connected to")
        relay.sendline("chat message")
        relay.expect("data> ")
        relay.sendline("plain words")
        relay.expect(r'<- chat message "plain words"')
        relay.sendline('chat message {"n": 1}')
        relay.expect(r'<- chat message \{"n":1\}')
        relay.send("\x03")
        relay.expect(pexpect.EOF)
    finally:
        if relay.isalive():
            relay.terminate(force=True)
