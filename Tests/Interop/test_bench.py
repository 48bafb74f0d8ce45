"""`parley bench fanout`: exact counts and a JSON report, against Parley and against another
Socket.IO server (python-socketio running the first tutorial's protocol)."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import bin_dir, free_port, wait_until_listening


def bench(url, tmp_path, *extra):
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [str(bin_dir() / "parley"), "bench", "fanout", "--server", url, "--clients", "30", "--room-size", "6",
         "--senders", "5", "--rate", "100", "--duration", "2", "--output", str(output), *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "latency p99" in result.stdout
    return json.loads(output.read_text())


def test_bench_counts_every_delivery_on_parley(parley, tmp_path):
    report = bench(parley.url, tmp_path)
    assert report["sent"] == 200
    assert report["expected"] == 200 * 6 and report["received"] == report["expected"]
    assert report["lost"] == 0 and report["duplicated"] == 0
    assert 0 < report["latencyMs"]["p50"] <= report["latencyMs"]["p99"] <= report["latencyMs"]["max"]


def test_bench_measures_another_socket_io_server(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "tutorial_server.py"), str(port)])
    try:
        wait_until_listening(port, server)
        report = bench(f"http://127.0.0.1:{port}", tmp_path)
        assert report["received"] == report["expected"] == 1200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_bench_connect_holds_connections_and_reports_server_memory(parley, tmp_path):
    output = tmp_path / "connect.json"
    result = subprocess.run(
        [str(bin_dir() / "parley"), "bench", "connect", "--server", parley.url, "--clients", "300",
         "--connect-rate", "600", "--pid", str(parley.process.pid), "--output", str(output)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(output.read_text())
    assert report["connected"] == 300 and report["failures"] == 0
    assert 0 < report["connectLatencyMs"]["p50"] <= report["connectLatencyMs"]["max"]
    memory = report["serverResidentBytes"]
    assert memory["after"] > 0 and memory["perConnection"] == (memory["after"] - memory["before"]) / 300
