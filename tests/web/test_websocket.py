"""The WebSocket adapter with in-memory transports (twisted.test.iosim): an
autobahn client talks to ChatWebSocket while telnet users of the same
in-memory hub (tests/memory.py) chat with it."""
from __future__ import annotations

import json

import pytest
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import IPv4Address
from twisted.test import iosim

from tekcos.web.site import Web
from tekcos.web.upload import Uploads
from tekcos.web.websocket import STATE_DELAY, same_origin, websocket_factory
from tests.fakes import Disk
from tests.memory import Server


class Browser(WebSocketClientProtocol):
    """Collects what the server sends: chat text and control messages."""

    def __init__(self):
        super().__init__()
        self.text = ""
        self.controls: list[dict] = []
        self.opened = False
        self.closed_with = None

    def onOpen(self):
        self.opened = True

    def onMessage(self, payload, isBinary):
        data = payload.decode()
        if data.startswith("\x00"):
            self.controls.append(json.loads(data[1:]))
        else:
            self.text += data

    def onClose(self, wasClean, code, reason):
        self.closed_with = (code, reason)

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


@pytest.fixture
def site(tmp_path):
    server = Server(max_per_ip=3)
    uploads = Uploads(Disk(tmp_path), lambda *a: None, max_file_size=1000, clock=server.clock)
    web = Web(server.factory, uploads, server.clock)
    factory = websocket_factory(web, server.factory.max_line)
    # No timers on the real reactor: these tests run on the server's Clock.
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0,
                               autoPingInterval=0)
    server.web_factory = factory
    server.next_port = 50000
    return server


def open_browser(server, origin="http://127.0.0.1:8080", host="127.0.0.1"):
    server.next_port += 1
    client_factory = WebSocketClientFactory("ws://127.0.0.1:8080/ws", origin=origin)
    client_factory.protocol = Browser
    address = IPv4Address("TCP", host, server.next_port)
    server_protocol = server.web_factory.buildProtocol(address)
    client = client_factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8080))
    pump = iosim.connect(server_protocol, iosim.FakeTransport(server_protocol, True,
                                                              peerAddress=address),
                         client, iosim.FakeTransport(client, False), greet=False)
    pump.flush()
    client.pump = pump
    client.server_side = server_protocol
    return client


def type_line(browser, text: str) -> None:
    browser.sendMessage(text.encode(), isBinary=False)
    browser.pump.flush()


def ask(browser, message: dict) -> dict:
    before = len(browser.controls)
    browser.sendMessage(("\x00" + json.dumps(message)).encode(), isBinary=False)
    browser.pump.flush()
    return browser.controls[before]


def test_a_browser_and_a_telnet_user_chat_in_one_room(site):
    telnet = site.user("tel")
    web = open_browser(site)
    assert web.opened and "Choose a nick" in web.take()
    type_line(web, "webby")
    assert "You are in lobby" in web.take()
    assert "-- webby joined lobby" in telnet.read()
    type_line(web, "hello from a page")
    assert "<webby> hello from a page" in telnet.read()
    telnet.type("hi page\r\n")
    web.pump.flush()
    assert "<tel> hi page\r\n" in web.take()
    # The page's view of the room follows, coalesced.
    site.clock.advance(STATE_DELAY)
    web.pump.flush()
    state = [c for c in web.controls if c["t"] == "state"][-1]
    assert state["nick"] == "webby" and state["room"] == "lobby"
    assert state["members"] == ["tel", "webby"] and state["rooms"][0][:2] == ["lobby", 2]


def test_the_same_nick_rules_apply(site):
    site.user("alice")
    web = open_browser(site)
    type_line(web, "\u0430lice")                       # Cyrillic a
    assert "*** Error:" in web.take()
    type_line(web, "/join games")                      # no nick yet
    assert "choose a nick first" in web.take()


def test_a_page_from_another_site_cannot_open_a_chat(site):
    evil = open_browser(site, origin="http://evil.example")
    assert not evil.opened
    assert evil.server_side.session is None
    assert len(site.factory.connections) == 0
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not same_origin("http://127.0.0.1:8081", "127.0.0.1:8080")
    assert not same_origin("null", "127.0.0.1:8080")
    assert same_origin(None, "127.0.0.1:8080")          # not a browser: like telnet


def test_limits_are_those_of_telnet_users(site):
    web = open_browser(site)
    type_line(web, "webby")
    web.take()
    type_line(web, "x" * (site.factory.max_line + 1))
    assert "line too long" in web.take()
    for i in range(30):                                 # over the burst of 20
        type_line(web, f"line {i}")
    assert "Slow down" in web.take()
    # --max-per-ip counts browsers and telnet users together.
    site.connect()
    open_browser(site)
    fourth = open_browser(site)
    assert "*** Error: too many connections from 127.0.0.1" in fourth.take()
    assert fourth.closed_with is not None


def test_shutdown_says_goodbye_to_browsers(site):
    from tekcos.chat.server import ChatService
    web = open_browser(site)
    type_line(web, "webby")
    web.take()
    ChatService(site.factory, site.clock).stopService()
    web.pump.flush()
    assert "Server shutting down" in web.take()
    assert web.closed_with is not None
    assert len(site.factory.connections) == 0


def test_uploads_are_checked_before_any_data(site):
    web = open_browser(site)
    answer = ask(web, {"t": "upload", "name": "a.txt", "size": 10})
    assert answer == {"t": "upload", "ok": False, "error": "choose a nick first"}
    type_line(web, "webby")
    assert ask(web, {"t": "upload", "name": "a.txt", "size": 5000})["error"] == \
        "file too large: 5000 bytes, the limit is 1000"
    assert ask(web, {"t": "upload", "name": "bad\x07name", "size": 5})["error"].startswith(
        "invalid name")
    assert ask(web, {"t": "upload", "name": "a.txt", "size": "5"})["error"] == "bad size"
    ok = ask(web, {"t": "upload", "name": "../../etc/passwd", "size": 5})
    assert ok["ok"] and ok["name"] == "passwd" and ok["url"] == "/upload/" + ok["ticket"]
    for _ in range(3):                                  # four at once per address
        assert ask(web, {"t": "upload", "name": "b", "size": 1})["ok"]
    assert "uploads from your address" in ask(web, {"t": "upload", "name": "c", "size": 1})["error"]


def test_malformed_page_requests_get_an_error_not_a_crash(site):
    web = open_browser(site)
    type_line(web, "webby")
    web.take()
    type_line(web, "\x00[[[[")
    assert "malformed request" in web.take()
    web.sendMessage(b"\x00\x01", isBinary=True)
    web.pump.flush()
    assert "binary frames" in web.take()
    type_line(web, "still here")
    assert "<webby> still here" in web.take()
