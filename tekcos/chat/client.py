"""``tekcos chat HOST[:PORT] [--nick NAME]``: the bundled chat client.

In a pipe it sends stdin lines and prints what the server sends, so scripts
can use it; at end of input it sends ``/quit`` and prints the rest.  In a
terminal, prompt_toolkit edits the line, which stays intact while messages
arrive (:mod:`tekcos.chat.terminal`: history, Tab for nicks, Ctrl-C).  Exit status: 0 after our own /quit, 1 when the
server refuses the nick given with --nick, 3 when the server cannot be
reached or goes away.
"""
from __future__ import annotations

import os
import re
import sys

from twisted.internet import defer, endpoints, protocol, stdio
from twisted.internet.error import ConnectError, DNSLookupError

from tekcos import exits
from tekcos.chat.terminal import Members, Terminal
from tekcos.hosts import parse_address


class ChatFailure(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


READY = re.compile(r"^\*\*\* .+ is ready: tekcos get (\S+) --from (\S+)$")
# A server greets at once.  A connection it has not heard of (the last ACK
# of a SYN-cookie handshake lost while a crowd reconnects) stays silent for
# good: after this long without a greeting, connect again.
GREETING_TIMEOUT = 5.0
GREETING_TRIES = 3


class ClientSession:
    """What the client does with server lines and user lines (no I/O).

    ``output(text)`` shows server text; ``send(bytes)`` goes to the server.
    ``files``, if given, sends and fetches files (``send_file(nick,
    recipient, path)``, ``fetch(code, where)``): ``/send NICK FILE`` is
    done here, and a file this client ``/accept``-ed is fetched once the
    server says it is ready.
    """

    def __init__(self, output, send, nick: str | None, files=None, members=None):
        self.output = output
        self.members = members      # a terminal.Members to keep up to date, or None
        self.send = send
        self.nick = nick
        self.joined = nick is None  # without --nick the user answers the prompt
        self.quitting = False
        self.refusal: str | None = None
        self.queued: list[str] = []
        self._nick_sent = False
        self.files = files
        self.accepted = 0           # /accept-ed here, not ready yet

    def server_line(self, line: str) -> None:
        self.output(line)
        if self.members is not None:
            self.members.seen(line)
        ready = READY.match(line)
        if ready and self.accepted and self.files is not None:
            self.accepted -= 1
            self.files.fetch(*ready.groups())
        if not self.joined:
            if "Choose a nick" in line and not self._nick_sent:
                self._nick_sent = True
                self.send((self.nick + "\n").encode())
            elif line.startswith("*** You are in "):
                self.joined = True
                self.nick = self.nick or getattr(self, "_typed_nick", None)
                for queued in self.queued:
                    self.user_line(queued)
                self.queued = []
            elif line.startswith("*** Error:") and self._nick_sent:
                self.refusal = line[len("*** Error: "):]
                self.queued = []
                self.quit()

    def user_line(self, line: str) -> None:
        if self.quitting:
            return
        if not self.joined:
            if self.nick is None and not self._nick_sent:
                self._typed_nick = line.strip()   # the answer to the nick prompt
            self.queued.append(line)
            return
        command = line.split(" ", 1)[0].lower()
        if command == "/send":
            self._send_file(line)
            return
        if command == "/accept":
            self.accepted += 1
        if command == "/quit":
            self.quitting = True
        self.send((line + "\n").encode())

    def _send_file(self, line: str) -> None:
        parts = line.split(None, 2)
        if len(parts) < 3:
            self.output("*** usage: /send NICK FILE (or /send #ROOM FILE)")
        elif self.files is None:
            self.output("*** /send is not available in this client")
        else:
            self.files.send_file(self.nick, parts[1], parts[2])

    def quit(self) -> None:
        """End of input: leave once every line typed before it has been sent."""
        if not self.joined and self.refusal is None:
            self.queued.append("/quit")
            return
        if not self.quitting:
            self.quitting = True
            self.send(b"/quit\n")


class ServerConnection(protocol.Protocol):
    """A chat server's lines, one at a time, to the :class:`ClientSession`
    that ``session_factory(self)`` makes once connected; ``done`` fires when
    the connection is gone.  Every chat front end (this client, the desktop
    window) reads the server through it."""

    def __init__(self, session_factory, done: defer.Deferred):
        self.session_factory = session_factory
        self.done = done
        self.greeted = defer.Deferred()   # fires with the server's first bytes
        self.buffer = b""
        self.session: ClientSession | None = None

    def connectionMade(self):
        self.session = self.session_factory(self)

    def dataReceived(self, data: bytes):
        if not self.greeted.called:
            self.greeted.callback(True)
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for raw in lines:
            self.session.server_line(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def connectionLost(self, reason=None):
        if self.buffer:
            self.session.server_line(self.buffer.decode("utf-8", "replace"))
        self.done.callback(None)


class _Keyboard(protocol.Protocol):
    """stdin in a pipe: whole lines."""

    def __init__(self, session_of):
        self.session_of = session_of
        self.buffer = b""

    def dataReceived(self, data: bytes):
        session = self.session_of()
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for raw in lines:
            session.user_line(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def connectionLost(self, reason=None):
        session = self.session_of()
        if self.buffer:
            session.user_line(self.buffer.decode("utf-8", "replace"))
        session.quit()


@defer.inlineCallbacks
def chat(reactor, address: str, nick: str | None = None, stdin_fd: int = 0,
         stdout=None, tty: bool | None = None, files=None):
    """Run one chat; returns (Deferred) the exit status or raises ChatFailure.
    ``files(say)``, if given, makes the object that sends and fetches files
    (see :class:`ClientSession`)."""
    stdout = stdout or sys.stdout.buffer
    if tty is None:
        tty = os.isatty(stdin_fd) and os.isatty(stdout.fileno())
    host, port = parse_address(address)
    members = Members() if tty else None
    terminal: Terminal | None = None

    def write_out(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    def output(text: str) -> None:
        if terminal is not None:
            terminal.show(text)
        else:
            write_out((text + "\n").encode("utf-8", "replace"))

    state: dict = {}

    actions = files(output) if files is not None else None

    def make_session(conn):
        session = ClientSession(output, conn.transport.write, nick, actions, members)
        state["session"] = session
        return session

    if "%" in host:   # a link-local address with its zone: not a name to look up
        endpoint = endpoints.TCP6ClientEndpoint(reactor, host, port, timeout=10)
    else:
        endpoint = endpoints.HostnameEndpoint(reactor, host, port, timeout=10)
    for attempt in range(1, GREETING_TRIES + 1):
        done = defer.Deferred()
        try:
            conn = yield endpoint.connect(protocol.Factory.forProtocol(
                lambda: ServerConnection(make_session, done)))
        except (ConnectError, OSError) as e:
            raise ChatFailure(exits.UNREACHABLE, f"cannot connect to {host}:{port}: "
                                                f"{_reason(e)}")
        except ValueError as e:
            raise ChatFailure(exits.USAGE, str(e))
        greeted = yield _within(reactor, conn.greeted, GREETING_TIMEOUT)
        if greeted or done.called:   # a greeting, or closed at once (with a reason)
            break
        conn.transport.abortConnection()
        yield done
        if attempt == GREETING_TRIES:
            raise ChatFailure(exits.UNREACHABLE, f"no greeting from {host}:{port} in "
                                                f"{GREETING_TRIES} tries of "
                                                f"{GREETING_TIMEOUT:g} s")
        output(f"*** No greeting from {host}:{port} within {GREETING_TIMEOUT:g} s; "
               "connecting again.")
    keyboard = None
    if tty:
        terminal = Terminal(reactor, lambda line: state["session"].user_line(line),
                            lambda: state["session"].quit(), members)
        terminal.start()
    elif stdin_fd is not None:
        keyboard = stdio.StandardIO(_Keyboard(lambda: state["session"]), stdin=stdin_fd,
                                    reactor=reactor)
    try:
        yield done
        if actions is not None and actions.running:
            # The chat is over; files still coming or going finish first.
            yield defer.DeferredList(list(actions.running))
    finally:
        if terminal is not None:
            terminal.stop()
        if keyboard is not None:
            keyboard.loseConnection()
    session = state["session"]
    if session.refusal:
        raise ChatFailure(exits.REFUSED, f"nick refused: {session.refusal}")
    if not session.quitting:
        raise ChatFailure(exits.UNREACHABLE, f"the server at {host}:{port} closed the connection")
    return exits.OK


def _within(reactor, waited: defer.Deferred, seconds: float) -> defer.Deferred:
    """True once ``waited`` fires, False if ``seconds`` pass first."""
    result = defer.Deferred()
    timer = reactor.callLater(seconds, lambda: result.called or result.callback(False))

    def fired(value):
        if timer.active():
            timer.cancel()
        if not result.called:
            result.callback(True)
        return value
    waited.addBoth(fired)
    return result


def _reason(e: Exception) -> str:
    if isinstance(e, DNSLookupError):
        return "no such host"
    text = str(e).strip().rstrip(".")
    # Twisted's ConnectError text: "Connection was refused by other side: 111: Connection refused"
    return text.rsplit(": ", 1)[-1] if ": " in text else (text or type(e).__name__)
