"""`parley bench`: exact counts and a JSON report, against Parley and against another Socket.IO
server (python-socketio running the first tutorial's protocol), including one made to drop and
repeat deliveries."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bin_dir, free_port, wait_until_listening

PEER = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "python_socketio_server.py"


def bench(scenario, url, tmp_path, *extra, expect_status=0):
    output = tmp_path / f"{scenario}.json"
    result = subprocess.run(
        [str(bin_dir() / "parley"), "bench", scenario, "--server", url, "--output", str(output), *extra],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == expect_status, result.stdout + result.stderr
    return json.loads(output.read_text()), result.stdout


FANOUT = ("--clients", "30", "--room-size", "6", "--senders", "5", "--rate", "100", "--duration", "2")


@pytest.fixture
def peer(request):
    """A python-socketio tutorial server, with the fault flags the test asks for."""
    def start(*flags):
        port = free_port()
        process = subprocess.Popen([sys.executable, str(PEER), str(port), *flags])
        request.addfinalizer(lambda: (process.terminate(), process.wait(timeout=10)))
        wait_until_listening(port, process)
        return f"http://127.0.0.1:{port}"
    return start


def test_bench_counts_every_delivery_on_parley(parley, tmp_path):
    report, table = bench("fanout", parley.url, tmp_path, *FANOUT, "--pid", str(parley.process.pid))
    assert "latency p99" in table and "server CPU" in table
    assert report["sent"] == 200
    assert report["expected"] == 200 * 6 and report["received"] == report["expected"]
    assert report["lost"] == 0 and report["duplicated"] == 0
    assert 0 < report["latencyMs"]["p50"] <= report["latencyMs"]["p99"] <= report["latencyMs"]["max"]
    assert report["connect"]["connected"] == 30
    assert report["serverCPUSeconds"] > 0
    # The kernel's part (loopback TCP included) is reported apart, and is a part.
    assert 0 <= report["serverSystemCPUSeconds"] <= report["serverCPUSeconds"]
    assert "in the kernel" in table


def test_bench_spreads_rooms_over_worker_processes(parley, tmp_path):
    report, _ = bench("fanout", parley.url, tmp_path, *FANOUT, "--workers", "3")
    assert report["workers"] == 3 and report["connect"]["connected"] == 30
    assert report["sent"] == 200 and report["received"] == report["expected"] == 1200


def test_bench_measures_another_socket_io_server(peer, tmp_path):
    report, _ = bench("fanout", peer(), tmp_path, *FANOUT)
    assert report["received"] == report["expected"] == 1200 and report["lost"] == 0


def test_bench_reports_deliveries_the_server_dropped(peer, tmp_path):
    # Every 10th message does not reach its sender: 20 of 200 deliveries are missing.
    report, table = bench("fanout", peer("--drop-every", "10"), tmp_path, *FANOUT, expect_status=2)
    assert report["lost"] == 20 and report["duplicated"] == 0
    assert report["received"] == report["expected"] - 20
    assert "lost" in table and " 20" in table


def test_bench_reports_deliveries_the_server_repeated(peer, tmp_path):
    # Every 25th message reaches its 6 members twice: 8 messages, 48 extra deliveries.
    report, _ = bench("fanout", peer("--repeat-every", "25"), tmp_path, *FANOUT, expect_status=2)
    assert report["duplicated"] == 48 and report["lost"] == 0


def test_bench_connect_holds_connections_and_reports_server_memory(parley, tmp_path):
    report, _ = bench("connect", parley.url, tmp_path, "--clients", "300", "--connect-rate", "600", "--pid", str(parley.process.pid))
    assert report["connected"] == 300 and report["failures"] == 0
    assert 0 < report["connectLatencyMs"]["p50"] <= report["connectLatencyMs"]["max"]
    memory = report["serverResidentBytes"]
    assert memory["after"] > 0 and memory["perConnection"] == (memory["after"] - memory["before"]) / 300


def test_server_hands_memory_back_after_clients_leave(tmp_path):
    """The memory a crowd of clients used goes back to the system once they have left; glibc
    keeps freed memory otherwise, and the server's resident size would stay at its peak (or
    grow). 4,000 WebSocket clients connect, wait and leave; seconds later (with pings every
    second and a 3-second timeout, the server checks every 4 s) its resident memory has given
    back a good part of what they took. Not all of it: tables keep their capacity, and pages
    that still hold something live cannot go (about 8 MB of 48 MB after 10,000 clients)."""
    import time

    from conftest import start_parley

    server = start_parley("--ping-interval", "1000", "--ping-timeout", "3000", database=":memory:")
    try:
        def resident():
            with open(f"/proc/{server.process.pid}/status") as status:
                return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))

        baseline = resident()
        report, _ = bench("connect", server.url, tmp_path, "--clients", "4000", "--connect-rate", "1000", "--hold", "1",
                          "--pid", str(server.process.pid))
        assert report["connected"] == 4000 and report["failures"] == 0
        peak = report["serverResidentBytes"]["after"]
        assert peak - baseline > 10 << 20, "4,000 connections should take more than 10 MB"
        bound = peak - (peak - baseline) * 0.3
        deadline = time.time() + 20
        while resident() > bound and time.time() < deadline:
            time.sleep(0.2)
        assert resident() <= bound, f"resident {resident() >> 20} MB: {baseline >> 20} MB before, {peak >> 20} MB with the clients"

        # The resident size can fall while the trim is still running (or before it starts, as
        # glibc gives back the top of the heap by itself), so the log line may come a moment later.
        def logged():
            with open(server.log, errors="replace") as log:
                return "returned memory to the system after clients left" in log.read()

        while not logged() and time.time() < deadline + 10:
            time.sleep(0.2)
        assert logged(), "the server did not log that it returned memory"
    finally:
        assert server.stop() == 0


def test_bench_ceiling_steps_up_until_the_bound_and_plots(parley, tmp_path):
    svg = tmp_path / "ceiling.svg"
    # A bound no step can meet stops the run at its first step; a generous one lets it climb.
    report, table = bench(
        "ceiling", parley.url, tmp_path, "--clients", "20", "--room-size", "5", "--senders", "4", "--start", "200",
        "--factor", "2", "--max", "800", "--step-duration", "1", "--p99-bound", "1000", "--svg", str(svg), "--label", "parley",
    )
    steps = report["steps"]
    assert [round(step["offeredDeliveriesPerSecond"]) for step in steps] == [200, 400, 800]
    assert all("failure" not in step for step in steps)
    assert all(step["lost"] == 0 and step["received"] == step["expected"] for step in steps)
    assert report["ceiling"]["stoppedBecause"] == "reached --max"
    assert report["ceiling"]["deliveriesPerSecond"] == max(step["deliveriesPerSecond"] for step in steps)
    assert "sustained" in table and "ceiling:" in table
    drawing = svg.read_text()
    assert drawing.startswith("<svg") and drawing.count("<polyline") == 2 and "parley p99" in drawing

    strict, _ = bench(
        "ceiling", parley.url, tmp_path, "--clients", "20", "--room-size", "5", "--senders", "4", "--start", "200",
        "--step-duration", "1", "--p99-bound", "0.001",
    )
    # The failed rate is tried once more (--retries 1), then the run stops.
    assert len(strict["steps"]) == 2 and all(step["failure"].startswith("p99") for step in strict["steps"])
    assert strict["steps"][0]["offeredDeliveriesPerSecond"] == strict["steps"][1]["offeredDeliveriesPerSecond"]
    assert strict["ceiling"]["deliveriesPerSecond"] == 0


def test_bench_ceiling_refines_between_the_last_rate_sustained_and_the_first_failed(peer, tmp_path):
    # The peer relays at most 110 messages a second: 40 and 80 pass, 160 fails (twice, with the
    # retry), then refinement tries 120 (fails: 110 < 120) and 100 (passes).
    report, table = bench(
        "ceiling", peer("--drop-above", "110"), tmp_path, "--clients", "20", "--room-size", "5", "--senders", "4",
        "--start", "200", "--factor", "2", "--step-duration", "2", "--refine", "2",
    )
    offered = [round(step["offeredDeliveriesPerSecond"]) for step in report["steps"]]
    assert offered == [200, 400, 800, 800, 600, 500]
    verdicts = ["failure" not in step for step in report["steps"]]
    assert verdicts == [True, True, False, False, False, True]
    assert report["ceiling"]["deliveriesPerSecond"] == max(
        step["deliveriesPerSecond"] for step in report["steps"] if "failure" not in step
    )
    assert 450 < report["ceiling"]["deliveriesPerSecond"] < 550
    assert "delivered" in report["ceiling"]["stoppedBecause"]


def test_bench_plot_draws_several_reports(parley, tmp_path):
    first, _ = bench("fanout", parley.url, tmp_path, *FANOUT, "--label", "slow")
    (tmp_path / "a.json").write_text(json.dumps(first))
    second, _ = bench("fanout", parley.url, tmp_path, *FANOUT[:-4], "--rate", "200", "--duration", "1", "--label", "fast")
    (tmp_path / "b.json").write_text(json.dumps(second))
    svg = tmp_path / "both.svg"
    result = subprocess.run(
        [str(bin_dir() / "parley"), "bench", "plot", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--output", str(svg)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    drawing = svg.read_text()
    assert drawing.count("<polyline") == 4 and "slow p99" in drawing and "fast p50" in drawing


def test_bench_rejects_bad_options(parley):
    result = subprocess.run(
        [str(bin_dir() / "parley"), "bench", "fanout", "--server", parley.url, "--protocol", "telnet"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0 and "--protocol" in result.stderr


def compile_c(name, tmp_path):
    """benchmarks/NAME.c, compiled into tmp_path."""
    compiler = shutil.which("cc") or shutil.which("clang")
    assert compiler, f"benchmarks/{name}.c needs a C compiler (cc or the Swift toolchain's clang)"
    binary = tmp_path / name
    subprocess.run([compiler, "-O2", "-Wall", "-Werror", "-o", str(binary), str(PEER.parents[1] / f"{name}.c")], check=True)
    return binary


def test_floor_delivers_every_message_to_its_room_and_reports_its_cpu(tmp_path):
    """benchmarks/floor.c, the do-nothing fan-out server benchmarks/run compares Parley with:
    every message reaches each member of its room once, and its CPU and latency are measured."""
    binary = compile_c("floor", tmp_path)
    port = free_port()
    result = subprocess.run([str(binary), "200", "1", str(port), "200", "50", "4", "80", "1", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert 150 <= report["messages"] <= 200
    assert report["deliveries"] == report["messages"] * 50
    assert report["received"] == report["deliveries"]
    assert report["cpuMicrosPerDelivery"] > 0
    assert 0 <= report["kernelMicrosPerDelivery"] <= report["cpuMicrosPerDelivery"]
    # Each delivery's latency comes from the send time the message carries: on loopback, some
    # microseconds to milliseconds; a stamp read from the wrong bytes would give nonsense.
    latency = report["latencyMs"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 1000
    refused = subprocess.run([str(binary), "200", "1", str(free_port()), "100", "200"], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 2 and "ROOM_SIZE" in refused.stderr
    # A message too short for its send time is refused too.
    refused = subprocess.run([str(binary), "200", "1", str(free_port()), "200", "50", "4", "4"], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 2 and "BYTES" in refused.stderr


@pytest.fixture
def sio_floor(request, tmp_path):
    """benchmarks/floor-sio.c, the C Socket.IO server that only relays the tutorial's messages."""
    binary = compile_c("floor-sio", tmp_path)
    port = free_port()
    process = subprocess.Popen([str(binary), str(port)], stderr=subprocess.PIPE)
    request.addfinalizer(lambda: (process.terminate(), process.wait(timeout=10)))
    wait_until_listening(port, process)
    return port, process


def test_sio_floor_speaks_socket_io_to_a_client_no_one_here_wrote(sio_floor):
    """python-socketio's client joins a room of the relay, chats, and gets the tutorial's
    `message {user, message}` back, its text as sent (quotes and non-ASCII included)."""
    import socketio

    port, _ = sio_floor
    with socketio.SimpleClient() as first, socketio.SimpleClient() as second:
        for client, name in ((first, "ada"), (second, "grace")):
            client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
            client.emit("login", name)
            client.emit("join", "lobby")
        text = 'say "hi" — ça va?'
        second.emit("chat", text)
        for client in (first, second):
            event, payload = client.receive(timeout=5)
            assert event == "message" and payload == {"user": "grace", "message": text}


def test_sio_floor_refuses_what_it_does_not_serve(sio_floor):
    import urllib.error
    import urllib.request

    port, _ = sio_floor
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", timeout=5)
    assert refused.value.code == 400


def test_bench_counts_every_delivery_of_the_sio_floor(sio_floor, tmp_path):
    """`parley bench` measures the relay as it measures Parley: every delivery counted, its CPU read."""
    port, process = sio_floor
    report, _ = bench("fanout", f"http://127.0.0.1:{port}", tmp_path, *FANOUT, "--pid", str(process.pid))
    assert report["sent"] == 200 and report["received"] == report["expected"] == 1200
    assert report["lost"] == 0 and report["duplicated"] == 0


def test_sio_floor_outlives_a_member_that_leaves_while_it_writes(sio_floor):
    """A member that closes while the relay is still writing a burst to it (so that a later write
    finds the connection reset) must not end the relay: no SIGPIPE."""
    import base64
    import os
    import socket
    import threading
    import time

    port, process = sio_floor

    def frame(text):
        data, mask = text.encode(), os.urandom(4)
        return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def member():
        connection = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        connection.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        connection.sendall(frame("40") + frame('42["join","lobby"]'))
        return connection

    def drain(connection):
        try:
            while connection.recv(1 << 20):
                pass
        except OSError:
            pass

    sender, leaver = member(), member()
    threading.Thread(target=drain, args=(sender,), daemon=True).start()
    time.sleep(0.2)
    sender.sendall(frame('42["chat","x"]') * 3000)  # a burst that keeps the relay writing for a while
    time.sleep(0.005)
    leaver.close()
    time.sleep(1)
    assert process.poll() is None, f"the relay ended with status {process.returncode}"
    sender.shutdown(socket.SHUT_RDWR)
    sender.close()
