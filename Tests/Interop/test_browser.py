"""Parley's own browser client (/socket.io/socket.io.js) in a real browser: Debian's chromium,
driven by selenium, against `parley serve`."""

import shutil
import threading

import pytest
import socketio
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from conftest import eventually


@pytest.fixture(scope="module")
def browser(parley):
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(20)
    driver.get(parley.url + "/")
    driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           const script = document.createElement("script");
           script.src = "/socket.io/socket.io.js";
           script.onload = () => done(true);
           document.head.appendChild(script);"""
    )
    yield driver
    driver.quit()


def run(driver, body):
    """Runs async JavaScript; `done(value)` finishes it."""
    return driver.execute_async_script("const done = arguments[arguments.length - 1];\n" + body)


def test_the_client_is_served_and_defines_io(parley, browser):
    assert browser.execute_script("return typeof io === 'function' && io.connect === io && io.protocol === 5")


@pytest.mark.parametrize("transports", [["websocket", "polling"], ["polling"]])
def test_tutorial_3_page_chats_with_a_python_client(parley, browser, transports):
    listener = socketio.Client(reconnection=False)
    heard = []
    listener.on("chat message", lambda message: heard.append(message))
    listener.connect(parley.url, transports=["websocket"], wait_timeout=5)
    try:
        result = run(browser, f"""
            const socket = io({{ transports: {transports!r} }});
            const got = [];
            socket.on("chat message", (message) => got.push(message));
            socket.on("connect", () => {{
                socket.emit("chat message", "from the browser");
                setTimeout(() => done({{ connected: socket.connected, id: typeof socket.id, got }}), 500);
            }});
        """)
        assert result["connected"] is True and result["id"] == "string"
        assert result["got"] == ["from the browser"]
        eventually(lambda: heard == ["from the browser"])
        # A page that only listens hears the python client.
        threading.Timer(1.0, lambda: listener.emit("chat message", {"from": "python"})).start()
        got = run(browser, f"""
            const socket = io({{ transports: {transports!r} }});
            socket.on("chat message", (message) => {{ socket.disconnect(); done(message); }});
        """)
        assert got == {"from": "python"}
    finally:
        listener.disconnect()


def test_acks_binary_once_off_and_disconnect(parley, browser):
    result = run(browser, """
        const socket = io({ auth: { name: "browser-user" } });
        const report = {};
        socket.on("connect", () => {
            socket.emit("me", {}, (reply) => {
                report.me = reply.user.name;
                socket.emit("room:join", { room: "browser-room" }, (joined) => {
                    report.joined = joined.ok;
                    const png = new Uint8Array([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]);
                    let onceCount = 0, offCount = 0;
                    socket.once("message", () => { onceCount++; });
                    const counted = () => { offCount++; };
                    socket.on("message", counted);
                    socket.off("message", counted);
                    socket.emit("message:send", { room: "browser-room", text: "first" }, () => {
                        socket.emit("message:send", { room: "browser-room", image: png.buffer }, (sent) => {
                            report.imageType = sent.message.image.type;
                            socket.emit("image:get", { id: sent.message.id }, (image) => {
                                report.roundTrip = image.data instanceof ArrayBuffer && Array.from(new Uint8Array(image.data)).join(",");
                                report.once = onceCount;
                                report.off = offCount;
                                socket.on("disconnect", (reason) => { report.reason = reason; report.connected = socket.connected; done(report); });
                                socket.disconnect();
                            });
                        });
                    });
                });
            });
        });
    """)
    assert result["me"] == "browser-user"
    assert result["joined"] is True
    assert result["imageType"] == "image/png"
    assert result["roundTrip"] == "137,80,78,71,13,10,26,10,1,2,3"
    assert result["once"] == 1 and result["off"] == 0
    assert result["reason"] == "io client disconnect" and result["connected"] is False


def test_emits_while_offline_are_sent_on_connecting_and_refusals_are_reported(parley, browser):
    result = run(browser, """
        const report = {};
        const socket = io({ auth: { name: "early-bird" } });
        // Emitted before the connection exists: buffered, then sent.
        socket.emit("me", {}, (reply) => { report.buffered = reply.user.name; finish(); });
        const refused = io({ auth: { token: "forged" }, reconnection: false });
        refused.on("connect_error", (error) => { report.error = error.message; report.code = error.data && error.data.code; finish(); });
        function finish() { if (report.buffered && report.error) { socket.disconnect(); done(report); } }
    """)
    assert result["buffered"] == "early-bird"
    assert result["code"] == "unauthorized" and result["error"]


def test_no_console_errors(browser):
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
    assert errors == []
