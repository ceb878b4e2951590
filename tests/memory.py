"""An in-memory chat server driven by a task.Clock, and its clients
(StringTransport), for tests of one protocol or a few users."""
from __future__ import annotations

import re

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tekcos.chat.hub import Hub
from tekcos.chat.server import ChatFactory
from tekcos.chat.session import SessionConfig

STAMP = r"\[\d\d:\d\d\]"


class Client:
    """One in-memory connection: what it was sent, and a way to type."""

    def __init__(self, factory, host="127.0.0.1", port=40000):
        self.address = IPv4Address("TCP", host, port)
        self.protocol = factory.buildProtocol(self.address)
        self.transport = StringTransport(peerAddress=self.address)
        self.protocol.makeConnection(self.transport)

    def type(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.protocol.dataReceived(data)

    def read(self, encoding="utf-8") -> str:
        """Everything received since the last read."""
        text = self.transport.value().decode(encoding, "replace")
        self.transport.clear()
        return text

    def lines(self) -> list[str]:
        return self.read().splitlines()

    def login(self, nick: str) -> "Client":
        # LF, as nc sends: a first line in CR LF is telnet's, and is
        # answered with the telnet offer (tests of that say so).
        self.type(nick + "\n")
        self.read()
        return self

    def close(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure
        self.protocol.connectionLost(Failure(ConnectionLost()))


class Server:
    def __init__(self, clock=None, history=20, rate=5.0, burst=20, max_line=2048,
                 max_per_ip=32, max_buffer=1 << 20, motd="", max_clients=10000,
                 nick_timeout=60.0, paste_lines=500, **hub_options):
        self.clock = clock or Clock()
        self.clock.advance(1_700_000_000)
        self.hub = Hub(self.clock.seconds, history=history, **hub_options)
        self.factory = ChatFactory(
            self.hub, SessionConfig(rate=rate, burst=burst, motd=motd, server_name="test",
                                    paste_lines=paste_lines, paste_bytes=max_buffer),
            max_line=max_line, max_per_ip=max_per_ip, max_buffer=max_buffer,
            max_clients=max_clients, nick_timeout=nick_timeout, clock=self.clock)
        self._port = 40000

    def connect(self, host="127.0.0.1") -> Client:
        self._port += 1
        return Client(self.factory, host, self._port)

    def user(self, nick: str, host="127.0.0.1") -> Client:
        client = self.connect(host)
        client.read()
        return client.login(nick)


def matching(lines, pattern):
    return [line for line in lines if re.search(pattern, line)]
