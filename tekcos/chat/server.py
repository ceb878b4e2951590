"""The chat server's factory (connection accounting, per-address cap) and the
service that owns the hub and says goodbye to every client on shutdown."""
from __future__ import annotations

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from tekcos.admission import CHAT, Admission
from tekcos.chat.hub import Hub
from tekcos.chat.protocol import ChatProtocol
from tekcos.chat.session import SessionConfig
from tekcos.heap import Trimmer, malloc_trim
from tekcos.hosts import shown


class _Refused(Protocol):
    """Says why, then hangs up: used past the per-address connection cap."""

    def __init__(self, message: str):
        self.message = message

    def connectionMade(self) -> None:
        self.transport.write(f"*** Error: {self.message}\r\n".encode())
        self.transport.loseConnection()


class ChatFactory(ServerFactory):
    log = Logger()

    def __init__(self, hub: Hub, session_config: SessionConfig, max_line: int = 2048,
                 max_per_ip: int = 32, max_buffer: int = 1 << 20, max_clients: int = 10000,
                 nick_timeout: float = 60.0, clock=None, trim=malloc_trim()):
        self.hub = hub
        self.session_config = session_config
        self.max_line = max_line
        self.max_buffer = max_buffer
        self.nick_timeout = nick_timeout
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        if session_config.clock is None:   # paced lines are released on this clock
            session_config.clock = clock
        # Every front door (telnet, TLS, WebSocket, plain HTTP) counts here.
        self.admission = Admission(max_clients, max_per_ip)
        self.connections: set[ChatProtocol] = set()
        self.drained: list[defer.Deferred] = []
        # Freed output buffers go back to the system (tekcos/heap.py).
        self.trimmer = Trimmer(clock, trim)

    def dropped_slow_reader(self) -> None:
        """A client was cut off for not reading (it held up to
        ``max_buffer`` bytes of output): count it and, once the burst is
        over, give the memory back."""
        self.hub.dropped_slow += 1
        self.trimmer.soon()

    @property
    def max_clients(self) -> int:
        return self.admission.max_clients

    @property
    def max_per_ip(self) -> int:
        return self.admission.max_per_ip

    @property
    def per_host(self) -> dict[str, int]:
        """Chat connections by host (an IPv4 address, an IPv6 /64)."""
        return self.admission.by_host[CHAT]

    @property
    def refused_full(self) -> int:
        return self.admission.refused[CHAT]

    def buildProtocol(self, addr):
        protocol = ChatProtocol(self, shown(getattr(addr, "host", None)))
        refusal = protocol.chat_peer.enter()
        return protocol if refusal is None else _Refused(refusal)

    def admit(self, host: str | None) -> str | None:
        """Count a new chat connection from ``host``, or say why it is
        refused (the server is full, or that host has too many, web
        requests included).  Every chat transport (TCP, TLS, WebSocket)
        goes through here, by its :class:`~tekcos.chat.peer.Peer`, which
        adds an admitted connection to :attr:`connections` and gives it
        back with :meth:`forget`."""
        refusal = self.admission.admit(host, CHAT)
        if refusal is not None:
            # Said in one line, then closed: the descriptor is freed at once,
            # so the UDP side and files being stored keep working.
            refused = self.admission.refused[CHAT]
            if refused % 1000 == 1:
                self.log.warn("refused a chat connection from {host}: {why} "
                              "({n} refused so far)", host=host, why=refusal, n=refused)
        return refusal

    def forget(self, protocol: ChatProtocol) -> None:
        if protocol not in self.connections:
            return
        self.connections.discard(protocol)
        self.admission.release(protocol.host, CHAT)
        if not self.connections:
            waiting, self.drained = self.drained, []
            for d in waiting:
                d.callback(None)

    def when_empty(self) -> defer.Deferred:
        d = defer.Deferred()
        if self.connections:
            self.drained.append(d)
        else:
            d.callback(None)
        return d


class ChatService(Service):
    """On stop: every client gets a shutdown notice, its queued output is
    flushed, and the stop waits (at most ``grace`` seconds) for them to go."""

    log = Logger()

    def __init__(self, factory: ChatFactory, clock, grace: float = 3.0):
        self.factory = factory
        self.clock = clock
        self.grace = grace

    def stopService(self):
        super().stopService()
        factory = self.factory
        factory.trimmer.stop()
        if not factory.connections:
            return None
        self.log.info("shutting down: closing {n} connection(s)", n=len(factory.connections))
        factory.hub.closing = True
        for protocol in list(factory.connections):
            session = protocol.session
            if session is not None and not session.closed:
                session.send("*** Server shutting down. Bye.")
                session.quit("server shutting down")
            elif protocol.transport is not None:
                protocol.transport.loseConnection()
        done = factory.when_empty()
        timer = self.clock.callLater(self.grace, self._force, done)
        done.addBoth(lambda result: timer.cancel() if timer.active() else None)
        return done

    def _force(self, done: defer.Deferred) -> None:
        for protocol in list(self.factory.connections):
            transport = protocol.transport
            if transport is not None:
                getattr(transport, "abortConnection", transport.loseConnection)()
        if not done.called:
            done.callback(None)
