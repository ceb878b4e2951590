"""The TCP/TLS/UNIX connection adapter for one chat user.

:class:`ChatProtocol` turns bytes into lines (LF or CRLF, telnet commands
removed and answered, over-long lines refused) and feeds them to a
:class:`~tekcos.chat.session.ChatSession`.  For a telnet client in character
mode it echoes and edits the line on the server (:mod:`tekcos.chat.lineedit`)
and keeps the half-typed line intact when messages arrive.

What every front end does alike (admission, the nick timer, the line loop,
log lines, dropping a client that does not read) is its
:class:`~tekcos.chat.peer.Peer`; every byte written to the client counts
against ``max_buffer``: once more than that waits unsent, the client is
disconnected (it never reads; the others go on).
"""
from __future__ import annotations

from twisted.internet import error as neterror
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import implementer

from tekcos.address import local_host
from tekcos.chat import telnet
from tekcos.chat.lineedit import ERASE_LINE, LineEditor
from tekcos.chat.peer import Peer
from tekcos.chat.session import ChatSession
from tekcos.compat import discard_queued, make_writer, tcp_connection
from tekcos.hosts import shown

# What FileDescriptor.bufferSize holds before it pauses its producer.
_TRANSPORT_BUFFER = 64 * 1024
_ERASE = ERASE_LINE.encode()


def describe_reason(reason) -> str:
    """Short, user-facing text for a connectionLost failure."""
    if reason is None or reason.check(neterror.ConnectionDone):
        return "connection closed"
    if reason.check(neterror.ConnectionLost):
        return "connection lost"
    return reason.getErrorMessage() or reason.type.__name__


@implementer(IHalfCloseableProtocol)
class ChatProtocol(Protocol):
    log = Logger()

    def __init__(self, factory, host: str | None):
        self.factory = factory
        self.host = host
        self.session: ChatSession | None = None
        self.telnet: telnet.TelnetFilter | None = None   # once the client sends IAC
        self.editor: LineEditor | None = None            # telnet character mode
        self._buffer = b""
        self._after_cr = False
        self._first_line = True      # until the first line end: telnet or not
        self._warned_flood = False
        self._unsent = 0
        self._paused = False
        self._out = None
        self.chat_peer = Peer(factory, self, host, factory.clock, abort=self._abort)

    # -- connection ----------------------------------------------------------
    def connectionMade(self) -> None:
        transport = self.transport
        if hasattr(transport, "setTcpKeepAlive"):
            try:
                transport.setTcpKeepAlive(1)
                # Output is already coalesced per batch of input; Nagle
                # would hold a reply back until the client's delayed ACK
                # (40 ms) whenever room traffic is in flight to it.
                transport.setTcpNoDelay(True)
            except OSError:
                pass
        transport.registerProducer(self, True)
        # ``write`` is the session's byte sink: the counting writer itself,
        # or (character mode) a wrapper around it.
        self._out = self.write = make_writer(transport, self.factory.max_buffer,
                                             self.chat_peer.drop_slow_reader)
        self.session = ChatSession(self.factory.hub, self, self.factory.session_config)
        self.log.debug("connect from {peer}", peer=self.peer_name())
        self.chat_peer.start_nick_timer("Reconnect and type a nick.")
        self.session.start()

    def connectionLost(self, reason=None) -> None:
        self.chat_peer.cancel_nick_timer()
        text = describe_reason(reason)
        if self.session is not None and not self.session.closed:
            self.chat_peer.log_disconnect(text)
            self.session.connection_lost(text)
        discard_queued(self.transport)
        self.chat_peer.leave()

    # -- IHalfCloseableProtocol: a client that is done sending ---------------------
    def readConnectionLost(self) -> None:
        # nc shuts its side down at the end of its input: what it sent and
        # what still waits its turn (a paste) goes out first.
        if self.session is None or self.session.input_ended():
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def peer_name(self) -> str:
        try:
            peer = self.transport.getPeer()
        except Exception:
            return "?"
        host, port = shown(getattr(peer, "host", None)), getattr(peer, "port", None)
        if host is None:
            return str(peer)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- input ---------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self.telnet is not None or b"\xff" in data:
            data = self._telnet(data)
            if self.session.closed:
                return
        elif self._first_line and b"\n" in data:
            self._first_line = False
            # Telnet ends a line with CR LF and, on a port other than 23,
            # negotiates nothing by itself; nc and scripts end lines with LF
            # and never get a telnet byte.
            head = self._buffer[-1:] + data[:data.index(b"\n")]
            if head[-1:] == b"\r":
                self._start_telnet(self.factory.hub.now())
        if self.editor is not None:
            data = self._edit(data)
        elif b"\r\0" in data:  # telnet's bare CR: treat as end of line
            data = data.replace(b"\r\0", b"\n")
        session = self.session
        if session.waiting and session.full and not self.chat_peer.discarding:
            # A flood past the waiting room: its lines are counted in C and
            # dropped whole, never split, decoded or queued one by one.
            ends = data.count(b"\n")
            if ends:
                session.drop(ends)
                self._buffer = b""
                data = data[data.rindex(b"\n") + 1:]
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        lines = data.split(b"\n")
        rest = lines.pop()
        with self.factory.hub.batch():
            self.chat_peer.lines(lines)
        if self.session.closed:
            return
        limit = self.factory.max_line
        # A CR that ends this read may be the first half of a CRLF.
        if len(rest) > limit + (rest[-1:] == b"\r"):
            if not self.chat_peer.discarding:
                self.chat_peer.discarding = True
                self.chat_peer.too_long()
            rest = b""
        self._buffer = rest

    def _start_telnet(self, now: float) -> None:
        """The client speaks telnet: offer binary and character mode."""
        self._first_line = False
        self.telnet = telnet.TelnetFilter(now)
        self.session.speaks_telnet()
        self.telnet.offer()
        self._telnet_replies()

    def _telnet(self, data: bytes) -> bytes:
        now = self.factory.hub.now()
        fresh = self.telnet is None
        if fresh:
            self.telnet = telnet.TelnetFilter(now)
            self.session.speaks_telnet()
            self._first_line = False
        data = self.telnet.feed(data, now)
        if fresh:   # answered what the client asked first, then our offer
            self.telnet.offer()
        return data if self._telnet_replies() else b""

    def _telnet_replies(self) -> bool:
        """Send what the filter has to say and act on its events; False
        when the input is to be discarded."""
        replies, events = self.telnet.take()
        if replies:
            self._raw(replies)
        for event in events:
            if event == telnet.ECHO_ON and self.editor is None:
                self._start_editing()
            elif event == telnet.ECHO_OFF and self.editor is not None:
                self.editor = None
                self.write = self._out
                self.session.set_sink(self.write)
            elif event == telnet.ARE_YOU_THERE:
                self.session.send(f"*** Yes, {self.factory.session_config.server_name} "
                                  "is here.")
            elif event == telnet.FLOOD:
                if not self._warned_flood:
                    self._warned_flood = True
                    self.session.error("too many telnet commands in your input; "
                                       "it was discarded.")
            elif event == telnet.INTERRUPT:
                # Ctrl-C: forget the line being typed.
                self._buffer = b""
                if self.editor is not None:
                    self.editor.buffer = ""
        return True

    def _raw(self, data: bytes) -> None:
        """Protocol bytes (telnet replies, echo): not transcoded, not counted
        as chat output, never to a client that is gone."""
        if not self.chat_peer.gone:
            self.transport.write(data)

    # -- character mode: the server echoes and edits --------------------------
    def _start_editing(self) -> None:
        self.editor = editor = LineEditor(prompt="", encoding=self.session.charset)
        out = self._out

        def write(data: bytes) -> None:
            # Output goes above the half-typed line, which is drawn again.
            typed = editor.buffer
            if typed:
                out(_ERASE + data + self.session.encode(typed))
            else:
                out(data)

        self.write = write
        self.session.set_sink(write)

    def _edit(self, data: bytes) -> bytes:
        """Keystrokes in, complete lines out (LF-terminated, in the session's
        charset); the echo goes straight back."""
        # Enter arrives as CR LF or CR NUL: one line end, not two.
        if self._after_cr and data[:1] in (b"\n", b"\0"):
            data = data[1:]
        self._after_cr = data[-1:] == b"\r"
        data = data.replace(b"\r\n", b"\r").replace(b"\r\0", b"\r")
        echo, lines = self.editor.feed(data)
        if self.editor.eof:   # Ctrl-C or Ctrl-D typed as a character
            self.editor.eof = False
            self.editor.buffer = ""
            echo += "^C\r\n"
        if echo:
            self._raw(self.session.encode(echo.replace("\n", "\r\n")))
        return b"".join(line.encode(self.session.charset, "replace") + b"\n" for line in lines)

    # -- output: the session's peer interface ---------------------------------
    def close(self, reason: str) -> None:
        """Flush what is queued, then close (the session has already left)."""
        self.chat_peer.cancel_nick_timer()
        self.chat_peer.log_disconnect(reason)
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    @property
    def kind(self) -> str:
        """How this user is connected, for /whois."""
        from twisted.internet.interfaces import ISSLTransport
        if ISSLTransport.providedBy(self.transport):
            return "TLS"
        if getattr(self.transport.getPeer(), "type", "") == "UNIX":
            return "a UNIX socket"
        return "telnet" if self.telnet is not None else "a plain TCP connection"

    @property
    def local_host(self) -> str | None:
        """This server's address as the client reached it."""
        return local_host(self.transport) if self.transport is not None else None

    def log_nick(self, old: str | None, new: str) -> None:
        self.chat_peer.log_nick(old, new)

    # -- IPushProducer: the transport's verdict on our output ----------------
    def pauseProducing(self) -> None:
        # The transport calls this on every write while its buffer is full.
        # Transports whose queue we can measure are counted on every write
        # already; for the others, counting starts here.
        if self._paused or tcp_connection(self.transport) is not None:
            return
        self._paused = True
        self._unsent = 0
        self.session.set_sink(self._counted_write)

    def resumeProducing(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._unsent = 0
        if self.session is not None and not self.chat_peer.gone:
            self.session.set_sink(self.write)

    def stopProducing(self) -> None:
        pass

    def _counted_write(self, data: bytes) -> None:
        if self.chat_peer.gone:
            return
        self._unsent += len(data)
        if self._unsent + _TRANSPORT_BUFFER > self.factory.max_buffer:
            self.chat_peer.drop_slow_reader()
            return
        self.transport.write(data)

    def _abort(self) -> None:
        """Drop the transport at once (the peer was cut off)."""
        self.transport.unregisterProducer()
        abort = getattr(self.transport, "abortConnection", self.transport.loseConnection)
        abort()
