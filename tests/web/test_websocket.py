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
    assert "Pacing your lines" in web.take()
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


def test_page_requests_draw_on_the_flood_budget_and_a_flood_is_disconnected(site):
    web = open_browser(site)
    type_line(web, "webby")
    web.take()
    for i in range(40):   # state answers cost 2 of the burst of 20
        web.sendMessage(b'\x00{"t":"state"}', isBinary=False)
    web.pump.flush()
    answered = [c for c in web.controls if c["t"] == "state"]
    assert 5 <= len(answered) <= 11
    assert web.closed_with is None
    # A budget that refills at 5 lines a second: later on, answers again.
    site.clock.advance(1.0)
    web.controls.clear()
    assert ask(web, {"t": "state"})["t"] == "state"
    # Hundreds of refusals in a row: not a page, and closed.
    for i in range(250):
        web.sendMessage(b'\x00{"t":"upload","name":"x","size":1}', isBinary=False)
    web.pump.flush()
    assert web.closed_with is not None
    assert len(site.factory.connections) == 0


def test_a_telnet_user_keeps_a_fast_round_trip_while_a_page_floods_state_requests(site):
    for i in range(300):     # many rooms: every state answer lists the first 100
        site.user(f"u{i}", host=f"127.0.{i // 250 + 1}.{i % 250 + 1}").type(f"/join room{i}\r\n")
    web = open_browser(site)
    type_line(web, "flooder")
    telnet = site.user("tel")
    telnet.read()
    import time
    started = time.process_time()
    for i in range(20):
        if web.closed_with is not None:
            break
        for j in range(100):
            web.sendMessage(b'\x00{"t":"state"}', isBinary=False)
        web.pump.flush()
    spent = time.process_time() - started
    telnet.type("/who\r\n")
    assert "*** lobby" in telnet.read()
    # At most the burst was answered (the rest refused cheaply, then closed).
    assert len([c for c in web.controls if c["t"] == "state"]) <= 11
    assert web.closed_with is not None
    assert spent < 5.0


def test_a_message_of_too_many_frames_closes_the_connection(site):
    web = open_browser(site)
    type_line(web, "webby")
    web.take()
    # A text message begun and continued by empty frames, never finished
    # (RFC 6455 5.4): they carry no bytes, so no size limit sees them.
    frames = b"\x01\x80" + b"\x00" * 4 + (b"\x00\x80" + b"\x00" * 4) * 500
    web.transport.write(frames)
    web.pump.flush()
    assert web.server_side.state == web.server_side.STATE_CLOSED
    assert len(site.factory.connections) == 0


def test_a_rebound_name_cannot_open_a_chat(site):
    from tekcos.web.origins import AllowedHosts
    site.web_factory.web.allowed_hosts = AllowedHosts([], "labhost", addresses=lambda: set())
    evil = open_browser(site, origin="http://evil.example")
    assert not evil.opened
    # DNS rebinding: Host and Origin agree, but name someone else.
    rebound = site.web_factory.web.allowed_hosts.origin_allowed(
        "http://evil.example", "evil.example")
    assert not rebound
    assert site.web_factory.web.allowed_hosts.origin_allowed(
        "http://labhost.local:8080", "labhost.local:8080")


def test_a_closed_page_gives_its_tickets_back(site):
    web = open_browser(site)
    type_line(web, "webby")
    for _ in range(4):
        assert ask(web, {"t": "upload", "name": "b", "size": 1})["ok"]
    uploads = site.web_factory.web.uploads
    assert len(uploads.tickets) == 4
    web.transport.loseConnection()
    web.pump.flush()
    assert uploads.tickets == {}
    again = open_browser(site)
    type_line(again, "webby2")
    assert ask(again, {"t": "upload", "name": "b", "size": 1})["ok"]


def test_tickets_are_not_squatted_by_many_hosts():
    from tekcos.web import upload
    server = Server()
    uploads = Uploads(Disk("/tmp"), lambda *a: None, max_file_size=1000, clock=server.clock)

    class Page:
        nick = "p"
    squatters = [(f"127.0.{i // 200 + 1}.{i % 200 + 1}", Page()) for i in range(70)]
    for host, page in squatters:
        for _ in range(4):
            uploads.ticket(page, host, "x", 1)
    assert len(uploads.tickets) == upload.MAX_TICKETS
    # A newcomer gets a ticket at once: the oldest of a host holding more goes.
    newcomer = Page()
    assert uploads.ticket(newcomer, "127.0.9.9", "mine", 1)["ok"]
    assert uploads.ticket(newcomer, "127.0.9.9", "mine2", 1)["ok"]
    assert len(uploads.tickets) == upload.MAX_TICKETS


def test_a_page_gets_every_room_line_tagged_and_hears_of_new_rooms_unasked(site):
    from tekcos.web.site import ROOMS_DELAY
    site.hub.on_rooms_changed = site.web_factory.web.rooms_changed
    telnet = site.user("tel")
    web = open_browser(site)
    type_line(web, "webby")
    type_line(web, "/join dev")
    telnet.type("/join dev\r\nin dev\r\n/switch lobby\r\nin the lobby\r\n")
    web.pump.flush()
    text = web.take()
    assert "] #dev <tel> in dev\r\n" in text and "] #lobby <tel> in the lobby\r\n" in text
    site.clock.advance(STATE_DELAY)
    web.pump.flush()
    state = [c for c in web.controls if c["t"] == "state"][-1]
    assert state["room"] == "dev" and state["joined"] == [["lobby", 2], ["dev", 2]]
    # Someone makes a room: no line reaches the page, yet its list follows.
    web.controls.clear()
    telnet.type("/join games\r\n")
    web.pump.flush()
    assert web.take() == ""
    site.clock.advance(ROOMS_DELAY)
    site.clock.advance(STATE_DELAY)
    web.pump.flush()
    state = [c for c in web.controls if c["t"] == "state"][-1]
    assert ["games", 1, ""] in state["rooms"]
    assert not site.clock.getDelayedCalls()


def drop(browser) -> None:
    """The page's connection dies (Wi-Fi gone): no closing handshake."""
    browser.server_side.transport.abortConnection()
    browser.pump.flush()


def test_a_page_that_drops_comes_back_as_itself_with_what_it_missed(site):
    from tekcos.chat.detached import HOLD_SECONDS
    telnet = site.user("tel")
    web = open_browser(site)
    type_line(web, "webby")
    type_line(web, "/join dev")
    token = [c for c in web.controls if c["t"] == "token"][-1]["token"]
    telnet.type("/join dev\r\n")
    telnet.read()
    drop(web)
    telnet.type("while you were away\r\n/who\r\n")
    seen = telnet.read()
    assert "webby" in seen.splitlines()[-1] and "quit" not in seen   # still there
    stranger = open_browser(site)
    type_line(stranger, "webby")
    assert "The nick webby is taken" in stranger.take()
    back = open_browser(site)
    assert ask(back, {"t": "resume", "token": token}) == {"t": "resume", "ok": True,
                                                         "nick": "webby"}
    back.pump.flush()
    assert "] #dev <tel> while you were away\r\n" in back.take()
    type_line(back, "back again")
    assert telnet.read().endswith("<webby> back again\r\n")          # no quit, no join
    # A token is not a second key: a page with a nick cannot use it, and
    # once the session ends for good the token is gone.
    type_line(stranger, "stranger")
    assert ask(stranger, {"t": "resume", "token": token})["ok"] is False
    drop(back)
    site.clock.advance(HOLD_SECONDS)
    assert "-- webby has quit (connection lost)" in telnet.read()
    late = open_browser(site)
    assert ask(late, {"t": "resume", "token": token}) == {"t": "resume", "ok": False}
    assert site.web_factory.web.detached.held == {}


def test_a_page_whose_old_connection_looks_alive_takes_its_session_over(site):
    telnet = site.user("tel")
    web = open_browser(site)
    type_line(web, "webby")
    token = [c for c in web.controls if c["t"] == "token"][-1]["token"]
    telnet.read()
    again = open_browser(site)                  # the old one died silently
    assert ask(again, {"t": "resume", "token": token})["ok"] is True
    web.pump.flush()
    assert web.closed_with == (1000, "continued on another connection")
    type_line(again, "still me")
    assert telnet.read().endswith("<webby> still me\r\n")
    assert ask(open_browser(site), {"t": "resume", "token": "guessed"})["ok"] is False


def test_line_ids_a_page_sends_back_are_checked_and_only_taken_before_its_nick(site):
    hub = site.hub
    alice = site.user("alice")
    for word in ("one", "two", "three"):
        alice.type(f"{word}\n")
    first_id = hub.lobby.last_id - 2
    web = open_browser(site)
    assert web.controls[0] == {"t": "hello", "epoch": hub.history_epoch}   # before anything
    # Another numbering and junk are ignored: the whole history is
    # replayed, nothing crashes.
    for bad in ({"t": "seen", "epoch": "elsewhere", "ids": {"#lobby": first_id}},
                {"t": "seen", "epoch": hub.history_epoch, "ids": ["#lobby"]},
                {"t": "seen", "epoch": hub.history_epoch, "ids": {"#lobby": "1", "x": True,
                                                                 "#y" * 300: 1, "#z": -1}}):
        ask_nothing(web, bad)
    type_line(web, "webby")
    text = web.take()
    assert text.count("(history)") == 3 and "Error" not in text
    assert f"\x1f#lobby {hub.lobby.last_id}\r\n" in text
    # After the nick it is too late: joining a room again replays it all.
    ask_nothing(web, {"t": "seen", "epoch": hub.history_epoch, "ids": {"#dev": 10 ** 9}})
    alice.type("/join dev\nin dev\n")
    web.take()
    type_line(web, "/join dev")
    assert "] #dev <alice> in dev\r\n" in web.take().split("Last 1 lines of dev:", 1)[1]
    drop(web)
    # Taken before the nick: the lines past the one it names, and no others.
    back = open_browser(site)
    ask_nothing(back, {"t": "seen", "epoch": hub.history_epoch, "ids": {"#lobby": first_id}})
    type_line(back, "back")
    replayed = [line for line in back.take().split("\r\n") if line.startswith("(history)")]
    assert [line.rsplit(" ", 1)[-1] for line in replayed] == ["two", "three"]


def ask_nothing(browser, message: dict) -> None:
    browser.sendMessage(("\x00" + json.dumps(message)).encode(), isBinary=False)
    browser.pump.flush()
