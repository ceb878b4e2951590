"""Uploads and /metrics over real loopback sockets (pytest-twisted): a
WebSocket client asks for a ticket, a plain socket POSTs the bytes."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, threads

from tekcos.chat.hub import Hub
from tekcos.chat.server import ChatFactory
from tekcos.chat.session import SessionConfig
from tekcos.push.receiver import Received
from tekcos.push.storage import Downloads
from tekcos.push.worker import DiskWorker
from tekcos.web.metrics import Sources
from tekcos.web.site import Web, build_site, count_connections
from tekcos.web.upload import Uploads


class Page(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        text = payload.decode()
        if text.startswith("\x00"):
            message = json.loads(text[1:])
            waiting = self.factory.waiting
            if message["t"] == "upload" and waiting:
                waiting.pop(0).callback(message)
        else:
            self.factory.text.append(text)

    def ask_upload(self, name, size) -> defer.Deferred:
        d = defer.Deferred()
        self.factory.waiting.append(d)
        self.sendMessage(("\x00" + json.dumps({"t": "upload", "name": name,
                                               "size": size})).encode())
        return d


def http(port: int, request: bytes, source: str = "127.0.0.1", body_cut: int | None = None):
    """A raw HTTP exchange from ``source`` (in a thread): the answer, or b""
    if the server closed without one."""
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(request if body_cut is None else request[:body_cut])
        except (BrokenPipeError, ConnectionResetError):
            pass
        if body_cut is not None:
            return b""
        answer = b""
        try:   # every request says "Connection: close": read to the end
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        if not n:
            break
        out, body = out + body[:n], body[n + 2:]
    return out


def post(path: str, body: bytes, length: int | None = None) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


@pytest.fixture
def web_server(tmp_path):
    """The web listener as ``twistd tekcos --web`` wires it (build_web), on
    a loopback port; its disk worker is closed afterwards."""
    from twisted.internet import reactor

    from tekcos import config
    from tekcos.web.service import build_web
    hub = Hub(reactor.seconds)
    chat = ChatFactory(hub, SessionConfig(server_name="test"), clock=reactor)
    announced = []
    received = hub.push_received

    def push_received(item):
        announced.append((item.sender, item.address[0], item.name, item.size))
        received(item)
    hub.push_received = push_received
    values = config.resolve({"downloads": str(tmp_path), "max-file-size": str(10 << 20)})
    site, worker = build_web(values, chat, None, reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    port.number = port.getHost().port
    port.dir = tmp_path
    port.announced = announced
    port.hub = hub
    port.hub_factory = chat
    yield port
    port.stopListening()
    worker.close()


@defer.inlineCallbacks
def open_page(port):
    from twisted.internet import reactor
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port.number}/ws",
                                     origin=f"http://127.0.0.1:{port.number}")
    factory.protocol = Page
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0,
                               autoPingInterval=0)
    factory.opened = defer.Deferred()
    factory.waiting = []
    factory.text = []
    reactor.connectTCP("127.0.0.1", port.number, factory)
    page = yield factory.opened
    page.sendMessage(b"uploader")
    return page


@pytest_twisted.inlineCallbacks
def test_an_upload_lands_once_with_its_ticket_only(web_server):
    page = yield open_page(web_server)
    data = os.urandom(2_500_000)
    ticket = yield page.ask_upload("report.pdf", len(data))
    assert ticket["ok"], ticket
    # Someone else's address with the ticket: refused before the body is read.
    answer = yield threads.deferToThread(http, web_server.number, post(ticket["url"], data),
                                         "127.0.0.2")
    assert b"403" in answer.split(b"\r\n")[0]
    # The announced size only.
    answer = yield threads.deferToThread(http, web_server.number,
                                         post(ticket["url"], data[:100]))
    assert b"403" in answer.split(b"\r\n")[0]
    assert [n for n in os.listdir(web_server.dir)] == []      # nothing stored so far
    # A refused try used up nothing but the attempt: ask again.
    ticket = yield page.ask_upload("report.pdf", len(data))
    answer = yield threads.deferToThread(http, web_server.number, post(ticket["url"], data))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0], answer[:300]
    result = json.loads(dechunk(body) if b"chunked" in head.lower() else body)
    assert result == {"ok": True, "name": "report.pdf", "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}
    assert (web_server.dir / "report.pdf").read_bytes() == data
    assert web_server.announced == [("uploader", "127.0.0.1", "report.pdf", len(data))]
    # One use per ticket; a second file of the same name is numbered.
    again = yield threads.deferToThread(http, web_server.number, post(ticket["url"], data))
    assert b"403" in again.split(b"\r\n")[0]
    ticket = yield page.ask_upload("report.pdf", 3)
    yield threads.deferToThread(http, web_server.number, post(ticket["url"], b"abc"))
    assert (web_server.dir / "report-1.pdf").read_bytes() == b"abc"
    # The metrics count it.
    metrics = yield threads.deferToThread(
        http, web_server.number, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert b'tekcos_pushes_total{outcome="delivered",via="web"} 2.0' in metrics
    assert b'tekcos_users{transport="websocket"} 1.0' in metrics
    assert b'tekcos_received_bytes_total{via="web"} 2.500003e+06' in metrics
    page.dropConnection(abort=True)


@pytest_twisted.inlineCallbacks
def test_a_browser_that_goes_away_mid_upload_leaves_nothing(web_server):
    page = yield open_page(web_server)
    data = os.urandom(3_000_000)
    ticket = yield page.ask_upload("big.bin", len(data))

    def half_then_gone():
        """Send half the body, wait for the part file to appear, hang up."""
        with socket.socket() as s:
            s.connect(("127.0.0.1", web_server.number))
            s.sendall(post(ticket["url"], data)[:1_500_000])
            for _ in range(500):
                if any(n.endswith(".part") for n in os.listdir(web_server.dir)):
                    return True
                time.sleep(0.01)
            return False
    appeared = yield threads.deferToThread(half_then_gone)
    assert appeared, "the upload never reached its part file"
    for _ in range(200):
        if not os.listdir(web_server.dir) and not web_server.announced:
            break
        yield threads.deferToThread(lambda: None)   # let the reactor and the worker run
    else:
        pytest.fail(f"left behind: {os.listdir(web_server.dir)}")
    page.dropConnection(abort=True)


@pytest_twisted.inlineCallbacks
def test_pages_carry_a_content_security_policy_without_inline_scripts(web_server):
    answer = yield threads.deferToThread(
        http, web_server.number, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    policy = [line for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-security-policy:")][0]
    assert b"script-src 'self';" in policy and b"unsafe-inline" not in policy
    assert b"<script>" not in body and b"onclick" not in body.lower()
    assert b"x-content-type-options: nosniff" in head.lower()
    # Received files are not served back by default.
    answer = yield threads.deferToThread(
        http, web_server.number, b"GET /files/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert b"404" in answer.split(b"\r\n")[0]


@pytest.fixture
def files_site():
    """``serve(directory)``: a site with --web-downloads of ``directory`` on
    a loopback port; returns ``get(path)`` (run it in a thread)."""
    from twisted.internet import reactor
    ports = []

    def serve(directory):
        hub = Hub(reactor.seconds)
        chat = ChatFactory(hub, SessionConfig(server_name="test"), clock=reactor)
        site = build_site(Web(chat, None, reactor), Sources(hub, lambda: {}),
                          downloads_dir=str(directory))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        ports.append(port)
        number = port.getHost().port

        def get(path):
            return http(number, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                f"Connection: close\r\n\r\n".encode())
        get.number = number
        return get
    yield serve
    for port in ports:
        port.stopListening()


@pytest_twisted.inlineCallbacks
def test_web_downloads_serve_received_files_only(tmp_path, files_site):
    (tmp_path / "song.ogg").write_bytes(b"la la")
    (tmp_path / ".0123456789abcdef.part").write_bytes(b"half")
    get = files_site(tmp_path)
    answer = yield threads.deferToThread(get, "/files/song.ogg")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nla la")
    assert b"content-disposition: attachment" in answer.lower()
    # No uploads on this site: a POST to /upload/ is just not found.
    answer = yield threads.deferToThread(http, get.number, post("/upload/x", b"abc"))
    assert answer.split(b"\r\n")[0].split()[1] == b"404"
    for hidden in ("/files/.0123456789abcdef.part", "/files/", "/files/..%2Fetc"):
        answer = yield threads.deferToThread(get, hidden)
        assert answer.split(b"\r\n")[0].split()[1] in (b"404", b"400"), (hidden, answer[:80])


@pytest_twisted.inlineCallbacks
def test_a_browser_that_stops_reading_is_cut_off_and_the_room_goes_on(tmp_path):
    from twisted.internet import reactor
    hub = Hub(reactor.seconds)
    chat = ChatFactory(hub, SessionConfig(server_name="test", rate=0), max_buffer=64 * 1024,
                       clock=reactor)
    site = build_site(Web(chat, None, reactor), Sources(hub, lambda: {}))
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    port.number = port.getHost().port
    try:
        reader = yield open_page(port)
        # A second page that never reads: its socket buffers stay small.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port.number))
        stalled.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port.number}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:          # the 101 first, as browsers wait for it
            head += yield threads.deferToThread(stalled.recv, 4096)
        assert b" 101 " in head.split(b"\r\n")[0]
        # Its nick, as one masked text frame.
        stalled.sendall(bytes([0x81, 0x80 | 7]) + b"\0\0\0\0" + b"stalled")
        for _ in range(400):
            if len(hub.lobby.members) == 2:
                break
            yield threads.deferToThread(lambda: None)
        assert {m.nick for m in hub.lobby.members} == {"uploader", "stalled"}
        line = "x" * 1000
        for i in range(8000):         # 8 MB for everyone in lobby: more than the
            reader.sendMessage(f"{i} {line}".encode())   # kernel's buffers hold
            if i % 50 == 0:
                yield threads.deferToThread(lambda: None)
                if "stalled" not in {m.nick for m in hub.lobby.members}:
                    break
        for _ in range(400):
            if "stalled" not in {m.nick for m in hub.lobby.members}:
                break
            yield threads.deferToThread(lambda: None)
        assert {m.nick for m in hub.lobby.members} == {"uploader"}
        assert hub.dropped_slow == 1
        stalled.close()
        reader.dropConnection(abort=True)
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_web_downloads_never_follow_a_link_out_and_a_nul_is_not_found(tmp_path, files_site):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for browsers")
    (downloads / "link.txt").symlink_to(secret)
    (downloads / "x.jpg").write_bytes(b"jpeg")
    get = files_site(downloads)
    for path in ("/files/link.txt", "/files/x%00.jpg", "/files/x.jpg%00"):
        answer = yield threads.deferToThread(get, path)
        assert answer.split(b"\r\n")[0].split()[1] == b"404", (path, answer[:200])
        assert b"not for browsers" not in answer and b"Traceback" not in answer
    answer = yield threads.deferToThread(get, "/files/x.jpg")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"jpeg")


@pytest_twisted.inlineCallbacks
def test_a_websocket_gives_its_http_slot_back_and_counts_as_a_chat_connection(web_server):
    page = yield open_page(web_server)
    admission = web_server.hub_factory.admission
    assert admission.open == {"chat": 1, "http": 0}
    page.transport.loseConnection()
    yield deferLater(0.1)
    assert admission.open == {"chat": 0, "http": 0}


def deferLater(seconds):
    from twisted.internet import reactor, task
    return task.deferLater(reactor, seconds, lambda: None)
