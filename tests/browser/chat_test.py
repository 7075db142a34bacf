#!/usr/bin/env python3
"""The web client in a real browser, against the real server binary.

Run by tests/browser.rs (`cargo test --test browser`); by hand:

    target/test-venv/bin/python tests/browser/chat_test.py \\
        --server target/debug/chatroom [--screenshot docs/screenshot.png]

Starts the server itself (`--port 0 --http-port 0`, ports read from its log),
two headless Chromium users (Debian's /usr/bin/chromium and
/usr/bin/chromedriver, each with a fresh temporary profile, nothing
downloaded) and one raw TCP user, and checks the exact protocol lines each of
them sees: registration with refused names, chat, actions, private messages,
an HTML-looking line shown as text, topics, room switching with history, input
history, the unread count in a hidden tab, a server restart on the same ports
that the pages survive by themselves, a phone-sized layout with its drawer,
scrolling that follows new lines only for a reader at the bottom, labels on
every control and a console free of CSP refusals and script errors. Every
wait is bounded; the whole run is bounded by --timeout. Exits 0 on success.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# How long one expected thing (a line, a page state) may take to show up.
WAIT_S = 15
# A reconnect waits out the page's backoff (at most 8 s, +20% jitter).
RECONNECT_WAIT_S = 30

# The policy the page is served with (issue 12): it must work under it.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
XSS = "<img src=x onerror=alert(1)>"
INVALID_NAME = "! invalid name: use 1-32 of A-Z a-z 0-9 _ -"
WELCOME = "* welcome to chatroom, {}! /help lists the commands"


class Failure(Exception):
    """A check that did not hold."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def check_eq(got, want, what):
    if got != want:
        raise Failure(f"{what}:\n  got:  {got!r}\n  want: {want!r}")


def step(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---- The server -------------------------------------------------------------


class Server:
    """The chatroom binary as a child process; its stderr is drained on a
    thread, so logging can never block it."""

    LISTEN = re.compile(r"listening on (\S+):(\d+)$")
    LISTEN_HTTP = re.compile(r"listening \(http\) on (\S+):(\d+)$")

    def __init__(self, binary, port=0, http_port=0):
        env = dict(os.environ)
        env.pop("RUST_LOG", None)  # a developer's RUST_LOG must not hide the log lines
        self.log = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--http-port", str(http_port), "--log-level", "info"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        tcp = self._wait_for(self.LISTEN)
        http = self._wait_for(self.LISTEN_HTTP)
        self.port = int(tcp.group(2))
        self.http_port = int(http.group(2))
        self.host = http.group(1)

    def _drain(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _wait_for(self, pattern):
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                for line in self.log:
                    m = pattern.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise Failure(
                        f"server did not log /{pattern.pattern}/ (exit status {self.proc.poll()}); "
                        "its log:\n  " + "\n  ".join(self.log)
                    )
                self.cond.wait(left)

    def stop(self):
        """SIGTERM to our child's PID, then wait (SIGKILL if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ---- A raw TCP user -----------------------------------------------------------


class TcpUser:
    """A client speaking the line protocol over a plain socket."""

    def __init__(self, port, name):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.reader = self.sock.makefile("rb")
        prompt = self.read()
        check(prompt.startswith("NAME "), f"{name}: expected the NAME prompt, got {prompt!r}")
        self.send(name)
        self.expect(f"* {name} joined lobby", WELCOME.format(name))

    def read(self):
        try:
            raw = self.reader.readline()
        except socket.timeout:
            raise Failure(f"{self.name} (TCP): no line within {WAIT_S} s")
        if not raw:
            raise Failure(f"{self.name} (TCP): connection closed")
        return raw.decode("utf-8").rstrip("\n")

    def expect(self, *lines):
        for want in lines:
            check_eq(self.read(), want, f"{self.name} (TCP) line")

    def expect_eof(self):
        while True:
            try:
                raw = self.reader.readline()
            except (socket.timeout, ConnectionResetError):
                raise Failure(f"{self.name} (TCP): no EOF")
            if not raw:
                return

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def close(self):
        self.reader.close()
        self.sock.close()


# ---- A browser user -----------------------------------------------------------

# Every protocol line the page shows carries it in data-line; page-made notes
# (connection changes, dividers) have none.
JS_LINES = "return [...document.querySelectorAll('#log li[data-line]')].map(li => li.dataset.line)"


# The message list's [scrollTop, how far it can scroll].
JS_SCROLL = "const l = document.getElementById('log'); return [l.scrollTop, l.scrollHeight - l.clientHeight];"

# Inputs and buttons with neither a label, an aria-label nor text.
JS_UNNAMED = """
return [...document.querySelectorAll('input, button')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
  .map(e => e.outerHTML);
"""


def at_bottom(user):
    top, most = user.driver.execute_script(JS_SCROLL)
    return most - top <= 2


class BrowserUser:
    """One headless Chromium with its own fresh profile, on the chat page."""

    def __init__(self, url, label, profile_root):
        self.label = label
        self.profile = tempfile.mkdtemp(prefix=f"chromium-{label}-", dir=profile_root)
        opts = Options()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--user-data-dir={self.profile}",
            "--window-size=1280,800",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--lang=en-US",
            "--force-color-profile=srgb",
        ):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(WAIT_S)
        self.driver.set_script_timeout(WAIT_S)
        self.console = []
        # How many of the protocol lines shown have been checked.
        self.seen = 0
        self.driver.get(url)
        self.chat_tab = self.driver.current_window_handle

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def wait(self, what, cond, timeout=WAIT_S):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda d: cond())
        except TimeoutException:
            raise Failure(f"{self.label}: timed out after {timeout} s waiting for {what}; lines:\n  "
                          + "\n  ".join(self.lines()[-15:]))

    def el(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def els(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def lines(self):
        return self.driver.execute_script(JS_LINES)

    def expect(self, *want):
        """The next lines shown are exactly `want`."""
        start = self.seen
        self.wait(f"lines {list(want)!r}", lambda: len(self.lines()) >= start + len(want))
        check_eq(self.lines()[start : start + len(want)], list(want), f"{self.label}: lines shown")
        self.seen += len(want)

    def next_line(self):
        """The next line shown, whatever it is."""
        start = self.seen
        self.wait("a line", lambda: len(self.lines()) > start)
        self.seen += 1
        return self.lines()[start]

    def skip_past(self, line):
        """Waits for `line` among the lines not yet checked, and checks up to
        it (for lines whose order against others' is not fixed)."""
        start = self.seen
        self.wait(f"line {line!r}", lambda: line in self.lines()[start:])
        self.seen = self.lines().index(line, start) + 1

    def item(self, index):
        """The list item of the `index`th protocol line."""
        return self.els("#log li[data-line]")[index]

    def login(self, name):
        box = self.el("#name")
        box.clear()
        box.send_keys(name, Keys.ENTER)

    def say(self, text):
        box = self.el("#message")
        box.send_keys(text, Keys.ENTER)
        self.wait("the message box to empty", lambda: box.get_attribute("value") == "")

    def members(self):
        return [b.get_attribute("data-name") for b in self.els("#members button[data-name]")]

    def rooms(self):
        return [b.get_attribute("data-room") for b in self.els("#rooms button[data-room]")]

    def conn_state(self):
        return self.el("#conn-state").get_attribute("data-state")

    def no_alert(self):
        try:
            alert = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        text = alert.text
        alert.dismiss()
        raise Failure(f"{self.label}: an alert fired: {text!r}")

    def collect_console(self):
        self.console.extend(self.driver.get_log("browser"))

    def console_problems(self):
        """Console entries that mean the page broke: CSP refusals, JS errors.
        WebSocket connection failures while the server is down are expected."""
        self.collect_console()
        bad = []
        for entry in self.console:
            msg = entry.get("message", "")
            if "WebSocket connection to" in msg:
                continue
            if ("Content Security Policy" in msg or "Refused to" in msg
                    or "Uncaught" in msg or entry.get("level") == "SEVERE"):
                bad.append(msg)
        return bad


# ---- The scenario --------------------------------------------------------------


def fetch_head(url):
    with urllib.request.urlopen(url, timeout=WAIT_S) as resp:
        return resp.status, resp.headers, resp.read()


def check_http(base):
    status, headers, body = fetch_head(base + "/")
    check_eq(status, 200, "GET / status")
    check_eq(headers.get("Content-Security-Policy"), CSP, "GET / Content-Security-Policy")
    check(b'src="/app.js"' in body, "GET / is our index.html")
    for path in ("/app.js", "/style.css", "/icon.svg"):
        status, _, body = fetch_head(base + path)
        check_eq(status, 200, f"GET {path} status")
        check(len(body) > 0, f"GET {path} has a body")


def title_of_other_tab(user, handle):
    """A tab's title without activating it (switching tabs would show it)."""
    infos = user.driver.execute_cdp_cmd("Target.getTargets", {})["targetInfos"]
    for info in infos:
        if info.get("type") == "page" and info.get("targetId") == handle:
            return info.get("title")
    raise Failure(f"{user.label}: no tab {handle} among {json.dumps(infos)}")


class Scenario:
    """The whole story, phase by phase. carol speaks TCP; alice and bob use
    the page. Each browser user's `seen` counts the lines already checked."""

    def __init__(self, args, cleanup):
        self.args = args
        self.cleanup = cleanup
        self.server = None
        self.carol = None
        self.alice = None
        self.bob = None

    def run(self):
        self.start()
        self.register()
        self.chat()
        self.switch_rooms()
        self.input_history()
        if self.args.screenshot:
            self.screenshot(self.args.screenshot)
        self.unread_title()
        self.restart()
        self.html_is_text()
        self.phone()
        self.nick_and_quit()
        self.page_health()

    def start(self):
        self.server = Server(self.args.server)
        self.cleanup.append(self.server.stop)
        step(f"server up: TCP {self.server.port}, HTTP {self.server.http_port}")
        self.base = f"http://127.0.0.1:{self.server.http_port}"
        check_http(self.base)
        self.profiles = tempfile.mkdtemp(prefix="chatroom-browser-test-")
        self.cleanup.append(lambda: shutil.rmtree(self.profiles, ignore_errors=True))

    def browser(self, label):
        user = BrowserUser(self.base + "/", label, self.profiles)
        self.cleanup.append(user.quit)
        return user

    def tcp(self, name):
        user = TcpUser(self.server.port, name)
        self.cleanup.append(user.close)
        return user

    def all_see(self, line, *users):
        """`line` is the next line for each of `users` (default: everyone)."""
        for user in users or (self.alice, self.bob, self.carol):
            user.expect(line)

    def register(self):
        """carol (TCP) is there first; alice's refused names show on the
        name card; then bob; everyone's member list follows."""
        carol = self.carol = self.tcp("carol")
        carol.expect("* lobby has 1 member: carol")

        alice = self.alice = self.browser("alice")
        check_eq(alice.driver.title, "chatroom", "title before joining")
        check(alice.el("#login").is_displayed(), "the name card shows first")
        alice.login("carol")
        alice.wait("the name-taken error", lambda: alice.el("#login-error").text == "name taken: carol")
        check(alice.el("#login").is_displayed(), "the name card stays after a refusal")
        alice.login("not valid!")
        alice.wait("the invalid-name error",
                   lambda: alice.el("#login-error").get_attribute("data-line") == INVALID_NAME)
        check_eq(alice.el("#login-error").text, INVALID_NAME[2:], "invalid-name error text")
        alice.login("alice")
        alice.expect("* alice joined lobby", WELCOME.format("alice"), "* lobby has 2 members: alice, carol")
        alice.wait("the name card to go", lambda: not alice.el("#login").is_displayed())
        alice.wait("online", lambda: alice.conn_state() == "online")
        check_eq(alice.el("#room-name").text, "#lobby", "alice's room heading")
        check_eq(alice.members(), ["alice", "carol"], "alice's member list")
        alice.wait("the room list", lambda: alice.rooms() == ["lobby"])
        check_eq(alice.driver.switch_to.active_element.get_attribute("id"), "message",
                 "the message box has the focus after joining")
        carol.expect("* alice joined lobby")
        step("alice registered after two refused names")

        bob = self.bob = self.browser("bob")
        bob.login("bob")
        bob.expect("* bob joined lobby", WELCOME.format("bob"), "* lobby has 3 members: alice, bob, carol")
        self.all_see("* bob joined lobby", alice, carol)
        alice.wait("bob in alice's member list", lambda: alice.members() == ["alice", "bob", "carol"])
        check_eq(bob.members(), ["alice", "bob", "carol"], "bob's member list")
        check_eq(alice.el("#member-count").text, "(3)", "member count")

    def chat(self):
        """Chat both ways between the browsers and TCP, an action, private
        messages (carol sees none) and a topic in the header."""
        alice, bob, carol = self.alice, self.bob, self.carol
        alice.say("morning all! the web client is live, give it a try")
        self.all_see("alice: morning all! the web client is live, give it a try")
        check("mine" in alice.item(alice.seen - 1).get_attribute("class"), "alice's own line is marked as hers")
        nick = bob.item(bob.seen - 1).find_element(By.CSS_SELECTOR, ".nick")
        check_eq(nick.text, "alice", "the sender's name is styled apart")

        carol.send("hi from the terminal, nc still works fine")
        self.all_see("carol: hi from the terminal, nc still works fine")

        bob.say("/me waves from a browser")
        self.all_see("+ bob waves from a browser")
        check("action" in alice.item(alice.seen - 1).get_attribute("class"), "an action is marked as one")

        bob.say("/msg alice can you review the deploy script after lunch?")
        self.all_see("[pm bob -> alice] can you review the deploy script after lunch?", alice, bob)
        check("pm" in alice.item(alice.seen - 1).get_attribute("class"), "a private message is marked")
        check("private" in alice.item(alice.seen - 1).text.lower(), "a private message says so")
        alice.say("/msg bob sure, after 2")
        self.all_see("[pm alice -> bob] sure, after 2", alice, bob)
        step("chat, action and private messages delivered")

        # carol's next line is her topic: she saw neither private message.
        carol.send("/topic release 1.4 ships on Friday")
        self.all_see("* carol set the topic for lobby: release 1.4 ships on Friday")
        alice.wait("the topic in the header", lambda: alice.el("#topic").text == "release 1.4 ships on Friday")

    def switch_rooms(self):
        """alice types /join; bob clicks the room in his list and gets its
        history; /rooms answers and the room list counts."""
        alice, bob, carol = self.alice, self.bob, self.carol
        alice.say("/join games")
        alice.expect("* alice joined games", "* games has 1 member: alice")
        self.all_see("* alice left for games", bob, carol)
        alice.wait("alice's heading", lambda: alice.el("#room-name").text == "#games")
        alice.wait("alice's members", lambda: alice.members() == ["alice"])
        check(not alice.el("#topic").is_displayed(), "games has no topic")
        bob.wait("alice gone from bob's members", lambda: bob.members() == ["bob", "carol"])
        bob.wait("games in bob's room list", lambda: "games" in bob.rooms())

        said = "alice: anyone up for a round of chess tonight?"
        alice.say("anyone up for a round of chess tonight?")
        alice.expect(said)

        bob.el('#rooms button[data-room="games"]').click()
        bob.expect("* bob joined games")
        history = bob.next_line()
        check(re.fullmatch(r"# \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ " + re.escape(said), history),
              f"bob gets games' history: {history!r}")
        check("history" in bob.item(bob.seen - 1).get_attribute("class"), "a history line is marked as history")
        bob.expect("* games has 2 members: alice, bob")
        self.all_see("* bob joined games", alice)
        carol.expect("* bob left for games")
        alice.wait("bob in alice's members", lambda: alice.members() == ["alice", "bob"])
        bob.wait("bob's heading", lambda: bob.el("#room-name").text == "#games")
        check_eq(bob.el('#rooms button[aria-current="true"]').get_attribute("data-room"), "games",
                 "bob's room list marks games as his room")

        bob.say("sure, 8pm?")
        self.all_see("bob: sure, 8pm?", alice, bob)
        alice.say("8pm works \u2014 see you at the board")
        self.all_see("alice: 8pm works \u2014 see you at the board", alice, bob)
        alice.say("/topic chess night at 8pm, all welcome")
        self.all_see("* alice set the topic for games: chess night at 8pm, all welcome", alice, bob)
        bob.wait("the topic in bob's header", lambda: bob.el("#topic").text == "chess night at 8pm, all welcome")
        carol.send("have fun, I'll hold the fort in the lobby")  # carol's room only
        carol.expect("carol: have fun, I'll hold the fort in the lobby")

        alice.wait("the room list knows games", lambda: "games" in alice.rooms())
        alice.say("/rooms")
        alice.expect("* 2 rooms: games (2), lobby (1)")
        alice.wait("the room counts", lambda: alice.el('#rooms button[data-room="lobby"] .count').text == "1")
        step("rooms switched by command and by click; history shown")

    def input_history(self):
        """Up and Down recall what was sent, then the draft."""
        box = self.bob.el("#message")
        box.send_keys("half-typed")
        box.send_keys(Keys.ARROW_UP)
        check_eq(box.get_attribute("value"), "sure, 8pm?", "Up recalls the last line")
        box.send_keys(Keys.ARROW_UP)
        check_eq(box.get_attribute("value"), "/msg alice can you review the deploy script after lunch?",
                 "Up again recalls the one before")
        box.send_keys(Keys.ARROW_DOWN)
        box.send_keys(Keys.ARROW_DOWN)
        check_eq(box.get_attribute("value"), "half-typed", "Down returns to the draft")
        box.clear()

    def screenshot(self, path):
        """bob's page at exactly 1280x800 CSS pixels (a window's size
        includes the browser's frame)."""
        driver = self.bob.driver
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        driver.execute_script("document.activeElement.blur();"
                              "const log = document.getElementById('log'); log.scrollTop = log.scrollHeight;")
        driver.save_screenshot(path)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        step(f"screenshot saved to {path}")

    def unread_title(self):
        """While alice's tab is hidden, its title counts what she missed."""
        alice, bob = self.alice, self.bob
        alice.driver.switch_to.new_window("tab")
        other_tab = alice.driver.current_window_handle
        check(other_tab != alice.chat_tab, "a second tab was opened")
        alice.driver.get("about:blank")
        bob.say("see you there")
        bob.expect("bob: see you there")
        deadline = time.monotonic() + WAIT_S
        while title_of_other_tab(alice, alice.chat_tab) != "(1) #games \u00b7 chatroom":
            check(time.monotonic() < deadline,
                  f"hidden tab title: {title_of_other_tab(alice, alice.chat_tab)!r}")
            time.sleep(0.05)
        alice.driver.close()
        alice.driver.switch_to.window(alice.chat_tab)
        alice.wait("the title to reset", lambda: alice.driver.title == "#games \u00b7 chatroom")
        alice.expect("bob: see you there")
        step("unread count shown in a hidden tab's title")

    def restart(self):
        """The server stops; the pages say so, come back by themselves when
        it restarts on the same ports, rejoin games and chat again."""
        alice, bob = self.alice, self.bob
        check_eq(self.server.stop(), 0, "server exit status after SIGTERM")
        self.carol.expect("* server shutting down")
        self.carol.expect_eof()
        self.carol.close()
        self.all_see("* server shutting down", alice, bob)
        for user in (alice, bob):
            user.wait("the page to show it is offline", lambda u=user: u.conn_state() in ("waiting", "connecting"))
        step("server stopped; pages offline")

        self.server = Server(self.args.server, self.server.port, self.server.http_port)
        self.cleanup.append(self.server.stop)
        step(f"server restarted on TCP {self.server.port}, HTTP {self.server.http_port}")
        for user in (alice, bob):
            user.wait("the page to reconnect", lambda u=user: u.conn_state() == "online", RECONNECT_WAIT_S)
            # Registration puts it in the lobby; the page goes back to games by itself.
            user.expect(f"* {user.label} joined lobby", WELCOME.format(user.label))
            user.skip_past(f"* {user.label} joined games")
            user.wait("the heading back on games", lambda u=user: u.el("#room-name").text == "#games")
        alice.wait("bob back in alice's members", lambda: alice.members() == ["alice", "bob"])

        carol = self.carol = self.tcp("carol")
        carol.expect("* lobby has 1 member: carol")
        carol.send("/join games")
        carol.expect("* carol joined games", "* games has 3 members: alice, bob, carol")
        for user in (alice, bob):
            user.skip_past("* carol joined games")
        alice.say("back again, that was quick")
        self.all_see("alice: back again, that was quick")
        carol.send("welcome back")
        self.all_see("carol: welcome back")
        step("pages reconnected after the restart and chat again")

    def html_is_text(self):
        """An HTML-looking line shows literally, makes no element, runs nothing."""
        self.carol.send(XSS)
        self.all_see("carol: " + XSS)
        for user in (self.alice, self.bob):
            item = user.item(user.seen - 1)
            check(XSS in item.text, f"{user.label}: the line shows literally: {item.text!r}")
            check_eq(len(user.els("#log img")), 0, f"{user.label}: no image element in the list")
            user.no_alert()
        step("the XSS line shows as text")

    def phone(self):
        """A phone-sized screen: no sideways scrolling, the lists in a
        drawer; new lines follow only a reader at the bottom."""
        bob, carol = self.bob, self.carol
        bob.driver.set_window_size(390, 844)
        bob.wait("the menu button", lambda: bob.el("#sidebar-toggle").is_displayed())
        bob.wait("the sidebar to fold away", lambda: not bob.el("#sidebar").is_displayed())
        overflow = bob.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        check(overflow <= 0, f"no sideways scrolling on a phone ({overflow}px too wide)")
        check(bob.el("#message").is_displayed() and bob.el("#send").is_displayed(), "the composer fits")

        bob.wait("a list long enough to scroll", lambda: bob.driver.execute_script(JS_SCROLL)[1] > 100)
        bob.driver.execute_script("document.getElementById('log').scrollTop = 0")
        carol.send("anyone still reading up there?")
        self.all_see("carol: anyone still reading up there?")
        check_eq(bob.driver.execute_script(JS_SCROLL)[0], 0, "a reader who scrolled up stays there")
        bob.wait("the new-messages button", lambda: bob.el("#jump").is_displayed())
        bob.el("#jump").click()
        bob.wait("the list at the bottom", lambda: at_bottom(bob))
        check(not bob.el("#jump").is_displayed(), "the button goes once at the bottom")
        carol.send("and back at the bottom it follows along")
        self.all_see("carol: and back at the bottom it follows along")
        bob.wait("the list to follow", lambda: at_bottom(bob))

        bob.el("#sidebar-toggle").click()
        bob.wait("the drawer to open", lambda: bob.el("#sidebar").is_displayed()
                 and bob.el("#sidebar-toggle").get_attribute("aria-expanded") == "true")
        bob.wait("the drawer's room list", lambda: bob.el('#rooms button[data-room="games"]').is_displayed())
        check_eq(bob.driver.switch_to.active_element.get_attribute("id"), "rooms-refresh",
                 "opening the drawer moves the focus into it")
        bob.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        bob.wait("the drawer to close", lambda: not bob.el("#sidebar").is_displayed())
        step("phone layout, drawer and stick-to-bottom scrolling work")

    def nick_and_quit(self):
        """The member lists follow a rename and a quit."""
        alice, bob, carol = self.alice, self.bob, self.carol
        carol.send("/nick caroline")
        self.all_see("* carol is now known as caroline")
        for user in (alice, bob):
            user.wait("caroline in the members", lambda u=user: u.members() == ["alice", "bob", "caroline"])
        carol.send("/quit off to the lobby of another server")
        self.all_see("* caroline left (quit: off to the lobby of another server)")
        carol.expect_eof()
        for user in (alice, bob):
            user.wait("caroline gone from the members", lambda u=user: u.members() == ["alice", "bob"])
        step("member lists follow /nick and /quit")

    def page_health(self):
        """Every control has a name a screen reader can say; nothing was
        refused by the CSP; no script error; no alert."""
        for user in (self.alice, self.bob):
            check_eq(user.driver.execute_script(JS_UNNAMED), [], f"{user.label}: controls without a label or text")
            user.no_alert()
            problems = user.console_problems()
            check(not problems, f"{user.label}: console problems:\n  " + "\n  ".join(problems))
        step("every control labelled; no CSP violations, script errors or alerts")


def terminated(signum, frame):
    raise Failure("terminated by SIGTERM")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="path of the chatroom binary")
    parser.add_argument("--screenshot", metavar="PATH", help="save a screenshot of bob's page (1280x800) here")
    parser.add_argument("--timeout", type=float, default=240, help="overall limit in seconds")
    args = parser.parse_args()

    missing = [p for p in (CHROMIUM, CHROMEDRIVER, args.server) if not os.access(p, os.X_OK)]
    if missing:
        print("browser test: missing " + ", ".join(missing) + "; run `bash scripts/test-deps.sh`",
              file=sys.stderr)
        return 2

    def overall_timeout(signum, frame):
        raise Failure(f"the whole run took longer than {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, overall_timeout)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    # SIGTERM (the Rust test's own deadline) cleans up like a failure does.
    signal.signal(signal.SIGTERM, terminated)

    cleanup = []
    try:
        Scenario(args, cleanup).run()
        ok = True
    except Exception:
        traceback.print_exc()
        ok = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for undo in reversed(cleanup):
            try:
                undo()
            except Exception as err:  # keep cleaning up
                print(f"cleanup: {err!r}", file=sys.stderr)
    print("browser test: " + ("ok" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
