"""Plain HTTP connections: counted with every other front door, cut when
their headers or body trickle, refused when they name another server."""
from __future__ import annotations

import select
import socket

import pytest_twisted
from twisted.internet import threads
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import resource

from tekcos.admission import CHAT, HTTP, Admission
from tekcos.web.http import BODY_CHECK, HEADER_DEADLINE, CheckedRequest, CountedSite
from tekcos.web.origins import AllowedHosts


class Hello(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"hello"

    def render_POST(self, request):
        return b"posted %d" % len(request.content.read())


def make_site(admission=None, hosts=None):
    clock = Clock()
    site = CountedSite(Hello(), admission or Admission(max_clients=100, max_per_ip=32),
                       hosts, reactor=clock)
    site.requestFactory = CheckedRequest
    return site, clock


def connect(site, host="127.0.0.5", port=40000):
    protocol = site.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    protocol.makeConnection(transport)
    return protocol, transport


def test_headers_that_trickle_are_cut_at_the_deadline():
    site, clock = make_site()
    protocol, transport = connect(site)
    for i in range(9):               # one byte a second: the idle timer never fires
        protocol.dataReceived(b"GET / HTTP/1.1\r\n"[i:i + 1])
        clock.advance(1)
    assert not transport.disconnecting
    clock.advance(HEADER_DEADLINE - 9)
    assert transport.disconnected and site.cut_slow == 1
    protocol.connectionLost(None)
    assert site.admission.open[HTTP] == 0
    assert clock.getDelayedCalls() == []


def test_a_complete_request_in_time_is_answered_and_the_next_one_gets_its_own_deadline():
    site, clock = make_site()
    protocol, transport = connect(site)
    clock.advance(HEADER_DEADLINE - 1)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200") and transport.value().endswith(b"hello")
    clock.advance(HEADER_DEADLINE - 1)
    assert not transport.disconnecting           # idle keep-alive, within the deadline
    clock.advance(1)
    assert transport.disconnected                # no next request: cut
    protocol.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_a_body_slower_than_the_minimum_rate_is_cut():
    site, clock = make_site()
    protocol, transport = connect(site)
    protocol.dataReceived(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
    protocol.dataReceived(b"x" * 20_000)         # fast enough for the first period
    clock.advance(BODY_CHECK)
    assert not transport.disconnecting
    protocol.dataReceived(b"x" * 100)            # then a trickle
    clock.advance(BODY_CHECK)
    assert transport.disconnected
    protocol.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_http_connections_count_against_the_caps_with_a_lower_one_per_host():
    admission = Admission(max_clients=40, max_per_ip=32)
    site, clock = make_site(admission)
    open_ = [connect(site, port=40000 + i) for i in range(16)]
    protocol, transport = connect(site, port=41000)
    assert transport.value().startswith(b"HTTP/1.1 503")
    assert b"too many web requests in progress from 127.0.0.5" in transport.value()
    assert transport.disconnecting
    assert admission.open[HTTP] == 16
    # The chat of the same host counts with them against --max-per-ip.
    for i in range(16):
        assert admission.admit("127.0.0.5", CHAT) is None
    assert "too many connections" in admission.admit("127.0.0.5", CHAT)
    # Another host gets in until the server is full: --max-clients counts HTTP too.
    for i in range(8):
        assert connect(site, "127.0.0.6", 40000 + i)[1].value() == b""
    assert b"the server is full" in connect(site, "127.0.0.7")[1].value()
    for protocol, transport in open_:
        protocol.connectionLost(None)
    assert admission.open[HTTP] == 8


def test_a_request_for_another_name_is_refused():
    hosts = AllowedHosts(["chat.example.org"], "labhost", addresses=lambda: {"10.1.2.3"})
    site, clock = make_site(hosts=hosts)
    for host, allowed in [(b"evil.example", False), (b"127.0.0.1:8080", True),
                          (b"[::1]:8080", True), (b"labhost.local", True),
                          (b"chat.example.org", True), (b"10.1.2.3:80", True),
                          (b"10.1.2.4", False), (b"evil.example:xyz", False)]:
        protocol, transport = connect(site)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        status = transport.value().split(b"\r\n")[0]
        assert status.startswith(b"HTTP/1.1 200" if allowed else b"HTTP/1.1 421"), host
        protocol.connectionLost(None)


def slow_clients(port: int, count: int, source: str) -> list[socket.socket]:
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHo")     # and never more
        except OSError:
            s.close()
            continue
        held.append(s)
    return held


def get(port: int, source: str) -> bytes:
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


@pytest_twisted.inlineCallbacks
def test_a_slowloris_from_one_host_leaves_the_page_to_everyone_else():
    from twisted.internet import reactor
    admission = Admission(max_clients=100, max_per_ip=32)
    site = CountedSite(Hello(), admission, reactor=reactor)
    site.requestFactory = CheckedRequest
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    number = port.getHost().port
    held = []
    try:
        held = yield threads.deferToThread(slow_clients, number, 300, "127.0.0.2")
        yield deferLater(0.2)
        # Held at the per-host cap: the server never holds more than 16 of them.
        assert admission.open[HTTP] <= 16
        answer = yield threads.deferToThread(get, number, "127.0.0.3")
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")
    finally:
        for s in held:
            s.close()
        yield port.stopListening()


def deferLater(seconds):
    from twisted.internet import reactor, task
    return task.deferLater(reactor, seconds, lambda: None)


def test_the_real_server_refuses_rebound_names_and_outlasts_a_slowloris(start):
    from tests.twistd import User, free_port
    web = free_port()
    server = start("--web", f"tcp:{web}:interface=127.0.0.1", "--udp-port", "0")
    rebound = b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", web), timeout=10) as s:
        s.sendall(rebound)
        assert s.recv(100).startswith(b"HTTP/1.1 421")
    held = slow_clients(web, 300, "127.0.0.2")
    try:
        # Everyone else: the page, and the chat, at once.
        assert get(web, "127.0.0.3").startswith(b"HTTP/1.1 200")
        user = User(server.port, "newcomer")
        user.send(b"/who\r\n")
        user.expect(b"newcomer")
        # The slow ones were refused at once past the cap (a 503 each) or cut.
        ready, _, _ = select.select(held, [], [], 2.0)
        refused = sum(s.recv(100).startswith(b"HTTP/1.1 503") for s in ready)
        assert refused >= len(held) - 16 and len(held) >= 250
    finally:
        for s in held:
            s.close()
