"""The web app in real browsers (Debian's chromium via selenium): a guest and an account chat in
a room and see each other in the member list; markup in a message stays text; an image is sent
and displayed. Screenshots of each step go to .test-artifacts/screenshots/."""

import contextlib
import functools
import http.server
import re
import shutil
import struct
import threading
import zlib

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, free_port

SHOTS = ROOT / ".test-artifacts" / "screenshots"


def make_browser(width=1100, height=760):
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver, condition, timeout=10):
    # The app re-renders lists as events arrive: an element read mid-render is retried.
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def texts(driver):
    """The texts of the messages shown, read in one go (the list may be re-rendered at any time)."""
    return driver.execute_script("return [...document.querySelectorAll('#messages .message .text')].map((node) => node.textContent)")


def png_file(path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([200, 40, 40] * 16) for _ in range(16))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


@contextlib.contextmanager
def another_site(directory):
    """Serves `directory` on a loopback port of its own: a page from another origin."""
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        site.shutdown()


@pytest.fixture
def browsers():
    opened = [make_browser(), make_browser(420, 800)]
    yield opened
    for driver in opened:
        driver.quit()


def test_guest_and_account_chat_with_text_only_rendering_and_images(parley, browsers, tmp_path):
    guest, account = browsers
    guest.get(parley.url + "/")
    name_field = wait(guest, ready.visibility_of_element_located((By.ID, "guest-name")))
    # A generated name is offered.
    wait(guest, lambda driver: re.fullmatch(r"[a-z]+-[a-z]+", name_field.get_attribute("value") or ""))
    name_field.clear()
    name_field.send_keys("gina")
    shot(guest, "01-sign-in")
    guest.find_element(By.CSS_SELECTOR, "#guest-form button").click()
    wait(guest, ready.text_to_be_present_in_element((By.ID, "status"), "connected"))

    account.get(parley.url + "/")
    wait(account, ready.visibility_of_element_located((By.ID, "handle"))).send_keys("wendy")
    account.find_element(By.ID, "password").send_keys("web password 1")
    account.find_element(By.ID, "register").click()
    wait(account, ready.text_to_be_present_in_element((By.ID, "status"), "connected"))
    wait(account, ready.text_to_be_present_in_element((By.ID, "whoami"), "wendy (account)"))
    # Both in #lobby, each in the other's member list.
    wait(guest, ready.text_to_be_present_in_element((By.ID, "members"), "wendy"))
    wait(account, ready.text_to_be_present_in_element((By.ID, "members"), "gina"))
    shot(guest, "02-guest-in-lobby")

    guest.find_element(By.ID, "text").send_keys("hello from the guest\n")
    wait(account, lambda driver: "hello from the guest" in texts(driver))
    account.find_element(By.ID, "text").send_keys("hi gina")
    wait(guest, ready.text_to_be_present_in_element((By.ID, "typing"), "wendy is typing"))
    account.find_element(By.ID, "text").send_keys(", see https://example.com\n")
    wait(guest, lambda driver: "hi gina, see https://example.com" in texts(driver))
    link = guest.find_element(By.CSS_SELECTOR, "#messages .message a")
    assert link.get_attribute("href") == "https://example.com/" and link.get_attribute("rel") == "noopener noreferrer"
    shot(account, "03-account-phone-size")

    # Markup stays text: no element is made from it, no script runs.
    hostile = "<img src=x onerror=alert(1)>"
    account.find_element(By.ID, "text").send_keys(hostile + "\n")
    wait(guest, lambda driver: hostile in texts(driver))
    assert guest.find_elements(By.CSS_SELECTOR, "#messages .text img") == []
    shot(guest, "04-markup-as-text")

    # An image: picked, sent, displayed on the other side.
    guest.find_element(By.ID, "image").send_keys(str(png_file(tmp_path / "red.png")))
    shown = wait(account, lambda driver: [img for img in driver.find_elements(By.CSS_SELECTOR, "#messages img") if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)])
    assert account.execute_script("return arguments[0].naturalWidth", shown[0]) == 16
    shot(account, "05-image")

    # Still signed in after a reload, with the history loaded back.
    account.refresh()
    wait(account, ready.text_to_be_present_in_element((By.ID, "whoami"), "wendy (account)"))
    wait(account, lambda driver: "hello from the guest" in texts(driver))
    # Own messages are marked, and get a tick once stored.
    mine = guest.find_elements(By.CSS_SELECTOR, "#messages .message.mine .ticks")
    assert mine and all(tick.text in ("✓", "✓✓") for tick in mine)
    for driver in (guest, account):
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []


def register_in(driver, url, handle):
    driver.get(url + "/")
    wait(driver, ready.visibility_of_element_located((By.ID, "handle"))).send_keys(handle)
    driver.find_element(By.ID, "password").send_keys("web password 1")
    driver.find_element(By.ID, "register").click()
    wait(driver, ready.text_to_be_present_in_element((By.ID, "whoami"), f"{handle} (account)"))


def test_friends_write_directly_and_ticks_turn_to_read(parley, browsers):
    alice, bob = browsers
    register_in(alice, parley.url, "web_alice")
    register_in(bob, parley.url, "web_bob")
    alice.find_element(By.ID, "friend-handle").send_keys("web_bob\n")
    accept = wait(bob, lambda driver: [b for b in driver.find_elements(By.CSS_SELECTOR, "#requests button") if b.text == "Accept"])
    shot(bob, "06-friend-request")
    accept[0].click()
    wait(alice, lambda driver: [name for name in driver.find_elements(By.CSS_SELECTOR, "#friends li .name") if name.text == "@web_bob"])[0].click()
    wait(alice, ready.text_to_be_present_in_element((By.ID, "title"), "@web_bob"))
    alice.find_element(By.ID, "text").send_keys("a private hello\n")
    # Bob sees the conversation appear with an unread badge, opens it, and reads.
    conversation = wait(bob, lambda driver: [li for li in driver.find_elements(By.CSS_SELECTOR, "#rooms li") if li.text.startswith("@web_alice")])
    assert conversation[0].find_element(By.CSS_SELECTOR, ".badge").text == "1"
    conversation[0].click()
    wait(bob, lambda driver: "a private hello" in texts(driver))
    read = wait(alice, lambda driver: [t for t in driver.find_elements(By.CSS_SELECTOR, "#messages .message.mine .ticks.read") if t.text == "✓✓"])
    assert read
    shot(alice, "07-direct-message-read")
    # Blocking from the friends list.
    bob.execute_script("window.confirm = () => true")
    block = wait(bob, lambda driver: [b for b in driver.find_elements(By.CSS_SELECTOR, "#friends button") if b.text == "Block"])
    block[0].click()
    wait(bob, lambda driver: driver.execute_script("return [...document.querySelectorAll('#friends li')].some((li) => li.textContent.includes('web_alice (blocked)'))"))


def test_a_message_typed_while_the_connection_is_down_arrives_exactly_once(tmp_path):
    from conftest import start_parley
    database = str(tmp_path / "cut.sqlite")
    server = start_parley(database=database)
    port = server.port
    writer, reader = make_browser(), make_browser()
    try:
        register_in(writer, server.url, "cut_writer")
        register_in(reader, server.url, "cut_reader")
        for driver in (writer, reader):
            wait(driver, ready.text_to_be_present_in_element((By.ID, "members"), "cut_"))
        # The connection goes: the server stops.
        assert server.stop() == 0
        wait(writer, ready.text_to_be_present_in_element((By.ID, "status"), "reconnecting"))
        writer.find_element(By.ID, "text").send_keys("written while offline\n")
        wait(writer, lambda driver: driver.find_elements(By.CSS_SELECTOR, "#messages .pending"))
        shot(writer, "08-offline-pending")
        # It comes back, on the same port and database.
        server = start_parley(database=database, port=port)
        wait(writer, ready.text_to_be_present_in_element((By.ID, "status"), "connected"), timeout=20)
        wait(reader, lambda driver: "written while offline" in texts(driver), timeout=20)
        wait(writer, lambda driver: not driver.find_elements(By.CSS_SELECTOR, "#messages .pending"))
        import time
        time.sleep(1.5)
        assert texts(reader).count("written while offline") == 1
        assert texts(writer).count("written while offline") == 1
        shot(reader, "09-arrived-once")
    finally:
        writer.quit()
        reader.quit()
        server.stop()


def test_a_message_the_database_cannot_take_yet_stays_pending_and_is_sent_again(tmp_path):
    """Another process holds the SQLite file's write lock past the server's 5 s busy timeout: the
    server answers `store_unavailable`. The app keeps the message, says why, and sends it again
    until the lock is gone; it is then shown and stored once, and nothing typed was lost."""
    import sqlite3

    from conftest import start_parley
    database = str(tmp_path / "busy.sqlite")
    server = start_parley(database=database)
    writer = make_browser()
    lock = None
    try:
        register_in(writer, server.url, "busy_writer")
        wait(writer, ready.text_to_be_present_in_element((By.ID, "members"), "busy_writer"))
        lock = sqlite3.connect(database, isolation_level=None, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        writer.find_element(By.ID, "text").send_keys("held up\n")

        def held(driver):
            pending = driver.find_elements(By.CSS_SELECTOR, "#messages .pending .meta")
            return pending and "Trying again" in pending[0].text
        wait(writer, held, timeout=15)
        shot(writer, "10-store-unavailable-pending")
        lock.execute("ROLLBACK")
        lock.close()
        lock = None
        wait(writer, lambda driver: not driver.find_elements(By.CSS_SELECTOR, "#messages .pending"), timeout=15)
        assert texts(writer).count("held up") == 1
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM message WHERE body = 'held up'").fetchone() == (1,)
    finally:
        if lock:
            lock.close()
        writer.quit()
        server.stop()


def test_the_widget_on_another_sites_page(parley, tmp_path):
    from conftest import eventually
    from test_chat import Chatter

    (tmp_path / "index.html").write_text(
        f'<!doctype html><html><head><title>Someone else\'s site</title></head><body><h1>A shop</h1>'
        f'<script src="{parley.url}/widget.js" data-room="support"></script></body></html>'
    )
    agent = Chatter(parley, auth={"name": "support-agent"})
    agent.ok("room:join", {"room": "support"})
    driver = make_browser()
    with another_site(tmp_path) as site:
        try:
            driver.get(f"{site}/index.html")
            bubble = wait(driver, ready.element_to_be_clickable((By.ID, "parley-widget-bubble")))
            assert bubble.text == "Chat"
            bubble.click()
            frame = wait(driver, ready.presence_of_element_located((By.ID, "parley-widget-frame")))
            driver.switch_to.frame(frame)
            wait(driver, ready.text_to_be_present_in_element((By.ID, "status"), "connected"))
            assert driver.find_element(By.ID, "title").text == "#support"
            driver.find_element(By.ID, "text").send_keys("where is my order?\n")
            eventually(lambda: any(m["text"] == "where is my order?" for m in agent.messages))
            agent.ok("message:send", {"room": "support", "text": "on its way"})
            wait(driver, lambda d: "on its way" in texts(d))
            driver.switch_to.default_content()
            shot(driver, "10-widget")
            # The bubble closes the panel again.
            bubble.click()
            assert driver.find_element(By.ID, "parley-widget-frame").get_attribute("hidden") == "true"
        finally:
            driver.quit()
            agent.close()


def test_a_page_written_like_the_third_tutorials(parley, tmp_path):
    """Global io, emit and on, as the tutorial's page used them (without jQuery), from a page
    served elsewhere."""
    (tmp_path / "chat.html").write_text(f"""<!doctype html><html><body>
      <ul id="messages"></ul>
      <form id="form"><input id="m" autocomplete="off"><button>Send</button></form>
      <script src="{parley.url}/socket.io/socket.io.js"></script>
      <script>
        var socket = io("{parley.url}");
        document.getElementById("form").onsubmit = function (event) {{
          event.preventDefault();
          socket.emit("chat message", document.getElementById("m").value);
          document.getElementById("m").value = "";
        }};
        socket.on("chat message", function (msg) {{
          var item = document.createElement("li");
          item.textContent = msg;
          document.getElementById("messages").appendChild(item);
        }});
      </script></body></html>""")
    driver = make_browser()
    with another_site(tmp_path) as site:
        try:
            driver.get(f"{site}/chat.html")
            wait(driver, lambda d: d.execute_script("return socket.connected"))
            driver.find_element(By.ID, "m").send_keys("tutorial three lives\n")
            wait(driver, lambda d: [li.text for li in d.find_elements(By.CSS_SELECTOR, "#messages li")] == ["tutorial three lives"])
        finally:
            driver.quit()
