"""Raw Engine.IO / Socket.IO over HTTP and WebSocket, for tests that must control every byte."""

import json
import socket

import requests
import websocket

SEP = "\x1e"


class Polling:
    """A polling session driven by hand."""

    def __init__(self, base_url: str, path: str = "/socket.io/"):
        self.base = base_url + path
        self.http = requests.Session()
        response = self.http.get(self.base, params={"EIO": "4", "transport": "polling"}, timeout=5)
        assert response.status_code == 200, response.text
        assert response.text.startswith("0")
        self.handshake = json.loads(response.text[1:])
        self.sid = self.handshake["sid"]

    def params(self):
        return {"EIO": "4", "transport": "polling", "sid": self.sid}

    def get(self, timeout=10):
        return self.http.get(self.base, params=self.params(), timeout=timeout)

    def post(self, body, timeout=5):
        return self.http.post(self.base, params=self.params(), data=body.encode() if isinstance(body, str) else body, timeout=timeout)

    def packets(self, timeout=10):
        response = self.get(timeout)
        assert response.status_code == 200, response.text
        return response.text.split(SEP)


def joined_polling(base_url: str, room: str | None = None) -> "Polling":
    """A polling session that has joined the main namespace (and `room`, via the test bed's
    `join` event), with the answers read."""
    session = Polling(base_url)
    assert session.post("40").text == "ok"
    assert session.packets()[0].startswith("40")
    if room:
        session.post(f'421["join","{room}"]')
        assert session.packets()[0].startswith("431")
    return session


def joined_websocket(ws_base: str, **kwargs) -> websocket.WebSocket:
    """A WebSocket session that has joined the main namespace, with the answers read."""
    ws = open_websocket(ws_base, **kwargs)
    assert ws.recv().startswith("0{")
    ws.send("40")
    assert ws.recv().startswith("40")
    return ws


def open_websocket(ws_base: str, sid: str | None = None, path: str = "/socket.io/", **kwargs) -> websocket.WebSocket:
    url = f"{ws_base}{path}?EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")
    return websocket.create_connection(url, timeout=5, **kwargs)


def raw_http(port: int, request: bytes, read_timeout=5.0) -> bytes:
    """Sends raw bytes on a new connection and returns everything read until it closes or idles."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as conn:
        conn.sendall(request)
        chunks = []
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)
