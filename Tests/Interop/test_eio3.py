"""Engine.IO v3 clients (socket.io-client 1.x/2.x's protocol): python-socketio 4.6.1 over
polling, WebSocket and upgrade, and raw v3 wire checks."""

import json
import subprocess
from pathlib import Path

import pytest
import requests
import websocket

from conftest import ROOT, start_parley

LEGACY_PYTHON = ROOT / ".venv-legacy" / "bin" / "python"


@pytest.fixture(scope="module")
def legacy_testbed(make_testbed_module):
    return make_testbed_module(eio3=1)


def run_legacy(scenario: str, url: str) -> dict:
    result = subprocess.run(
        [str(LEGACY_PYTHON), str(Path(__file__).parent / "legacy_client.py"), scenario, url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scenario", ["polling", "websocket", "upgrade"])
def test_python_socketio_4_speaks_to_parley(legacy_testbed, scenario):
    result = run_legacy(scenario, legacy_testbed.url)
    assert result["transport"] == ("polling" if scenario == "polling" else "websocket")
    assert result["ack"] == [{"text": "héllo", "n": 3}]
    assert result["event"] == [["no ack"]]
    assert result["binary"] == [[0, 1, 255]]
    assert result["asked"] == ["legacy answer"]
    # A v3 client's socket id is its Engine.IO id, as its own library assumes.
    assert result["whoami"]["id"] == result["sid"]


def v3_polling(server):
    response = requests.get(server.url + "/socket.io/", params={"EIO": "3", "transport": "polling"}, timeout=5)
    assert response.status_code == 200
    length, _, packet = response.text.partition(":")
    assert int(length) == len(packet)
    assert packet.startswith("0")
    handshake = json.loads(packet[1:])
    return handshake


def test_raw_v3_polling_handshake_connect_ping_and_events(legacy_testbed):
    handshake = v3_polling(legacy_testbed)
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout"}
    params = {"EIO": "3", "transport": "polling", "sid": handshake["sid"]}
    base = legacy_testbed.url + "/socket.io/"
    # The server connects the main namespace by itself.
    assert requests.get(base, params=params, timeout=5).text == "2:40"
    # The client pings; the server answers. Events use the v3 framing; lengths count UTF-16 units.
    assert requests.post(base, params=params, data="1:2".encode(), timeout=5).text == "ok"
    assert requests.get(base, params=params, timeout=5).text == "1:3"
    packet = '421["echo","😀"]'
    body = f"{len(packet.encode('utf-16-le')) // 2}:{packet}"
    assert requests.post(base, params=params, data=body.encode(), timeout=5).text == "ok"
    answer = '431["😀"]'
    assert requests.get(base, params=params, timeout=5).text == f"{len(answer.encode('utf-16-le')) // 2}:{answer}"
    # A malformed v3 payload closes that session only.
    assert requests.post(base, params=params, data=b"5:4a", timeout=5).status_code == 400
    assert requests.get(base, params=params, timeout=5).json()["code"] == 1


def test_raw_v3_upgrade_and_websocket_only(legacy_testbed):
    handshake = v3_polling(legacy_testbed)
    params = {"EIO": "3", "transport": "polling", "sid": handshake["sid"]}
    base = legacy_testbed.url + "/socket.io/"
    assert requests.get(base, params=params, timeout=5).text == "2:40"
    ws = websocket.create_connection(f"{legacy_testbed.ws_url}/socket.io/?EIO=3&transport=websocket&sid={handshake['sid']}", timeout=5)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    ws.send('421["echo","over ws"]')
    assert ws.recv() == '431["over ws"]'
    ws.send("2")
    assert ws.recv() == "3"
    ws.close()
    # WebSocket from the start.
    ws = websocket.create_connection(f"{legacy_testbed.ws_url}/socket.io/?EIO=3&transport=websocket", timeout=5)
    assert "maxPayload" not in json.loads(ws.recv()[1:])
    assert ws.recv() == "40"
    # v3 binary frames start with the packet type byte.
    ws.send('451-2["echo",{"_placeholder":true,"num":0}]')
    ws.send_binary(b"\x04\x01\x02")
    assert ws.recv() == '461-2[{"_placeholder":true,"num":0}]'
    opcode, data = ws.recv_data()
    assert data == b"\x04\x01\x02"
    ws.close()


def test_eio3_is_refused_when_turned_off(testbed):
    response = requests.get(testbed.url + "/socket.io/", params={"EIO": "3", "transport": "polling"}, timeout=5)
    assert response.status_code == 400 and response.json() == {"code": 5, "message": "Unsupported protocol version"}


def test_parley_accepts_eio3_unless_told_not_to():
    accepting = start_parley()
    refusing = start_parley("--no-eio3")
    try:
        assert v3_polling(accepting)["sid"]
        response = requests.get(refusing.url + "/socket.io/", params={"EIO": "3", "transport": "polling"}, timeout=5)
        assert response.json()["code"] == 5
    finally:
        accepting.stop()
        refusing.stop()
