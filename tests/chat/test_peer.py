"""The peer layer every front end shares (tekcos/chat/peer.py), checked
through the two real adapters: telnet's ChatProtocol and the web page's
ChatWebSocket behave the same where the Peer decides."""
from __future__ import annotations

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from tests.web.test_websocket import open_browser, site, type_line  # noqa: F401


class Telnet:
    """A telnet-style user, shaped like the in-memory browser."""

    def __init__(self, server):
        self.client = server.connect()

    def type(self, text: str) -> None:
        self.client.type(text + "\n")

    def take(self) -> str:
        return self.client.read()

    @property
    def closed(self) -> bool:
        return self.client.transport.disconnecting


class Page:
    def __init__(self, server):
        self.browser = open_browser(server)

    def type(self, text: str) -> None:
        type_line(self.browser, text)

    def take(self) -> str:
        self.browser.pump.flush()
        return self.browser.take()

    @property
    def closed(self) -> bool:
        self.browser.pump.flush()
        return self.browser.closed_with is not None


FRONT_ENDS = {"telnet": Telnet, "web": Page}


@pytest.fixture
def logged():
    lines: list[str] = []

    def observe(event):
        if event.get("log_namespace", "").startswith("tekcos.chat.peer"):
            lines.append(formatEvent(event))
    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize("kind,hint", [("telnet", "Reconnect and type a nick."),
                                       ("web", "Reload the page and choose a nick.")])
def test_no_nick_in_time_closes_either_front_end_and_frees_its_slot(site, kind, hint):
    user = FRONT_ENDS[kind](site)
    assert site.factory.per_host == {"127.0.0.1": 1}
    site.clock.advance(site.factory.nick_timeout + 1)
    text = user.take()
    assert hint in text and user.closed
    if kind == "telnet":
        user.client.close()
    assert site.factory.per_host.get("127.0.0.1", 0) == 0 and not site.factory.connections
    assert site.clock.getDelayedCalls() == []


def test_a_nick_stops_the_timer_on_either_front_end(site):
    users = [FRONT_ENDS[kind](site) for kind in FRONT_ENDS]
    for n, user in enumerate(users):
        user.type(f"user{n}")
    site.clock.advance(site.factory.nick_timeout + 1)
    assert not any(user.closed for user in users)


def test_both_front_ends_log_in_one_format(site, logged):
    telnet, page = Telnet(site), Page(site)
    telnet.type("tina")
    page.type("wendy")
    telnet.type("/nick tanja")
    page.type("/nick wanda")
    telnet.client.close()
    type_line(page.browser, "x" * 10)
    page.browser.pump.flush()
    page.browser.server_side.chat_peer.cut("a test")
    port_of = telnet.client.address.port
    assert logged == [f"127.0.0.1:{port_of} is now tina", "127.0.0.1 is now wendy (web)",
                      f"nick change tina -> tanja (127.0.0.1:{port_of})",
                      "nick change wendy -> wanda (127.0.0.1, web)",
                      f"disconnect 127.0.0.1:{port_of} (tanja): connection lost",
                      "disconnect 127.0.0.1 (wanda, web): a test"]


@pytest.mark.parametrize("kind", FRONT_ENDS)
def test_a_paste_past_the_waiting_room_is_dropped_whole_on_either_front_end(site, kind):
    user = FRONT_ENDS[kind](site)
    user.type("pasty")
    user.take()
    paste = "\n".join(f"line {i}" for i in range(600))   # burst 20, 500 may wait
    user.type(paste)
    text = user.take()
    assert text.count("Too much at once: more than 500 lines are waiting") == 1
    assert site.hub.dropped_flood == 81    # the nick took one of the burst
    assert not user.closed
