"""The TCP/TLS/UNIX connection adapter for one chat user.

:class:`ChatProtocol` turns bytes into lines (LF or CRLF, telnet commands
removed, over-long lines refused) and feeds them to a
:class:`~tekcos.chat.session.ChatSession`.  It also guards the server against
a client that stops reading: it registers itself as a streaming producer, so
the transport tells it when more than ``transport.bufferSize`` bytes are
waiting; from then on it counts what is queued and aborts the connection once
the total would pass ``max_buffer``.
"""
from __future__ import annotations

from twisted.internet import error as neterror
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from tekcos.chat.session import ChatSession
from tekcos.chat.telnet import IAC, strip_iac

# What FileDescriptor.bufferSize holds before it pauses its producer.
_TRANSPORT_BUFFER = 64 * 1024


def write_through(transport):
    """A writer for ``transport`` that sends at once when nothing is queued.

    A plain ``transport.write`` always queues and sends on the reactor's next
    turn, which costs two epoll_ctl calls and a reactor pass per write.  In a
    room fan-out that is most of the work, so for plain TCP transports we try
    ``send()`` first and queue only what the kernel did not take.  Anything
    else (TLS, UNIX, test transports) keeps ``transport.write``.
    """
    buffered = transport.write
    sock = getattr(transport, "socket", None)
    if not isinstance(transport, tcp.Connection) or sock is None \
            or not hasattr(transport, "_tempDataLen"):
        return buffered
    send = sock.send

    def write(data: bytes) -> None:
        if transport.dataBuffer or transport._tempDataLen or transport.disconnecting \
                or not transport.connected:
            buffered(data)
            return
        try:
            sent = send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # let the transport find and report the failure
            sent = 0
        if sent < len(data):
            buffered(data[sent:])

    return write


def describe_reason(reason) -> str:
    """Short, user-facing text for a connectionLost failure."""
    if reason is None or reason.check(neterror.ConnectionDone):
        return "connection closed"
    if reason.check(neterror.ConnectionLost):
        return "connection lost"
    return reason.getErrorMessage() or reason.type.__name__


class ChatProtocol(Protocol):
    log = Logger()

    def __init__(self, factory, host: str | None):
        self.factory = factory
        self.host = host
        self.session: ChatSession | None = None
        self._buffer = b""
        self._iac = 0
        self._discarding = False
        self._unsent = 0
        self._paused = False
        self._gone = False

    # -- connection ----------------------------------------------------------
    def connectionMade(self) -> None:
        transport = self.transport
        if hasattr(transport, "setTcpKeepAlive"):
            try:
                transport.setTcpKeepAlive(1)
            except OSError:
                pass
        transport.registerProducer(self, True)
        self.write = write_through(transport)
        self.session = ChatSession(self.factory.hub, self, self.factory.session_config)
        self.log.info("connect from {peer}", peer=self.peer_name())
        self.session.start()

    def connectionLost(self, reason=None) -> None:
        text = describe_reason(reason)
        if self.session is not None and not self.session.closed:
            self._log_disconnect(text)
            self.session.connection_lost(text)
        self.factory.forget(self)

    def _log_disconnect(self, why: str) -> None:
        self.log.info("disconnect {peer} ({nick}): {why}", peer=self.peer_name(),
                      nick=self.session.nick or "-", why=why)

    def peer_name(self) -> str:
        try:
            peer = self.transport.getPeer()
        except Exception:
            return "?"
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return f"{host}:{port}" if host is not None else str(peer)

    # -- input ---------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self._iac or IAC in data:
            data, self._iac = strip_iac(data, self._iac)
        if b"\r\0" in data:  # telnet's bare CR: treat as end of line
            data = data.replace(b"\r\0", b"\n")
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        lines = data.split(b"\n")
        rest = lines.pop()
        with self.factory.hub.batch():
            self._lines(lines)
        if self.session.closed:
            return
        limit = self.factory.max_line
        if len(rest) > limit:
            if not self._discarding:
                self._discarding = True
                self._too_long()
            rest = b""
        self._buffer = rest

    def _lines(self, lines: list[bytes]) -> None:
        limit = self.factory.max_line
        session = self.session
        for line in lines:
            if self._discarding:  # the tail of an over-long line
                self._discarding = False
                continue
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > limit:
                self._too_long()
                continue
            session.line_received(line)
            if session.closed:
                return

    def _too_long(self) -> None:
        self.session.error(f"line too long (over {self.factory.max_line} bytes); "
                           "it was discarded.")

    # -- output: the session's peer interface ---------------------------------
    def close(self, reason: str) -> None:
        """Flush what is queued, then close (the session has already left)."""
        self._log_disconnect(reason)
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def log_nick(self, old: str | None, new: str) -> None:
        if old is None:
            self.log.info("{peer} is now {nick}", peer=self.peer_name(), nick=new)
        else:
            self.log.info("nick change {old} -> {new} ({peer})", old=old, new=new,
                          peer=self.peer_name())

    # -- IPushProducer: the transport's verdict on our output ----------------
    def pauseProducing(self) -> None:
        # The transport calls this on every write while its buffer is full.
        if self._paused:
            return
        self._paused = True
        self._unsent = 0
        self.session.set_sink(self._counted_write)

    def resumeProducing(self) -> None:
        self._paused = False
        self._unsent = 0
        if self.session is not None and not self._gone:
            self.session.set_sink(self.write)

    def stopProducing(self) -> None:
        pass

    def _counted_write(self, data: bytes) -> None:
        if self._gone:
            return
        self._unsent += len(data)
        if self._unsent + _TRANSPORT_BUFFER > self.factory.max_buffer:
            self._drop_slow_consumer()
            return
        self.transport.write(data)

    def _drop_slow_consumer(self) -> None:
        self._gone = True
        session = self.session
        reason = "not reading: output buffer full"
        self._log_disconnect(reason)
        # Leave first so that the room is told; the notice to the room must not
        # come back to this connection.
        session.set_sink(lambda data: None)
        session.connection_lost(reason)
        self.transport.unregisterProducer()
        abort = getattr(self.transport, "abortConnection", self.transport.loseConnection)
        abort()
