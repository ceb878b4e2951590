"""The desktop window's connection, on the reactor's thread.

The Twisted reactor runs in a thread of its own (the window's thread runs
Tk); the window calls into :class:`Link` with ``reactor.callFromThread``
and :class:`Link` reports back through ``post(function, *args)``, which
runs ``function`` on the window's thread (:class:`Hop`).  The chat itself
is the chat client's: :class:`~tekcos.chat.client.ServerConnection` reads
the lines, :class:`~tekcos.chat.client.ClientSession` answers the nick
prompt, sends what is typed and fetches what was accepted, and
:class:`~tekcos.push.actions.FileActions` pushes and fetches files with
the engine of ``tekcos push`` and ``tekcos get``.

A lost connection is made again after 1, 2, 4… up to 30 seconds, with the
same nick; a refused nick is handed to the window, which asks for another.
"""
from __future__ import annotations

import os
import re
from collections import deque

from twisted.internet import defer, endpoints, protocol, threads
from twisted.internet.error import ConnectError

from tekcos.chat.client import ClientSession, ServerConnection
from tekcos.hosts import parse_address
from tekcos.push.actions import FileActions

# The line that says a file accepted here can be fetched: its name and
# sender tell which accepted offer it is (and so where to save it).
READY = re.compile(r"^\*\*\* (.+) from (\S+) is ready: tekcos get (\S+) --from \S+$")
FIRST_RETRY = 1.0
MAX_RETRY = 30.0
QUIT_WAIT = 2.0          # seconds a closing window waits for the server's goodbye


class Hop:
    """Calls from the reactor's thread run on the window's thread: queued,
    and a byte down a pipe wakes the window's event loop (a Tk file
    handler), so nothing waits on a timer and Tk is only ever touched from
    its own thread."""

    def __init__(self):
        self._calls: deque = deque()
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)

    def post(self, function, *args) -> None:
        self._calls.append((function, args))
        try:
            os.write(self._write_fd, b"!")
        except BlockingIOError:
            pass          # the pipe is full: the window is already awake

    def run_pending(self) -> None:
        """On the window's thread: run everything posted so far."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        while self._calls:
            function, args = self._calls.popleft()
            function(*args)

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class _Posted:
    """``target``'s methods, called on the window's thread."""

    def __init__(self, post, target):
        self._post = post
        self._target = target

    def __getattr__(self, name):
        method = getattr(self._target, name)
        return lambda *args: self._post(method, *args)


class _Files:
    """The ``files`` of the chat session: sends as they are, and fetches
    to where the user said to save the file (:meth:`Link.accept`)."""

    def __init__(self, link: "Link", actions):
        self.link = link
        self.actions = actions

    def send_file(self, nick, recipient: str, path: str):
        return self.actions.send_file(nick, recipient, path)

    def fetch(self, code: str, where: str):
        offer = self.link.ready.pop(code, None)
        return self.actions.fetch(code, where, save_as=self.link.save_as.pop(offer, None))


class Link:
    """One server for one window.  ``view`` gets (on its own thread):
    ``server_line(text)``, ``status(text)``, ``connected(address, nick)``,
    ``refused(reason)``, ``servers_found(list, how)`` and
    ``neighbours_found(rows or None, summary)``; ``transfers``
    is told of files as :class:`~tekcos.push.actions.FileActions`'
    watcher."""

    def __init__(self, reactor, post, view, transfers, downloads: str, clock=None):
        self.reactor = reactor
        self.clock = clock or reactor      # for the retries' timers
        self.post = post
        self.view = _Posted(post, view)
        self.transfers = _Posted(post, transfers)
        self.downloads = downloads
        self.address: str | None = None
        self.nick: str | None = None
        self.session: ClientSession | None = None
        self.connection: ServerConnection | None = None
        self.files: FileActions | None = None
        self.closing = False
        self._retry = None
        self._delay = FIRST_RETRY
        self.save_as: dict[tuple[str, str], str] = {}   # (name, sender) -> chosen path
        self.ready: dict[str, tuple[str, str]] = {}     # code -> (name, sender)

    # -- called from the window (through callFromThread) -----------------------------
    def connect(self, address: str, nick: str) -> None:
        """Connect to ``address`` as ``nick`` (leaving any other server)."""
        self._cancel_retry()
        if self.connection is not None and self.connection.transport is not None:
            self.session.quitting = True
            self.connection.transport.loseConnection()
        self.address, self.nick = address, nick
        self._delay = FIRST_RETRY
        self.files = FileActions(self.reactor, address, self._say, self.downloads,
                                 watcher=self.transfers)
        self._dial()

    def user_line(self, text: str) -> None:
        if self.session is not None:
            self.session.user_line(text)

    def accept(self, number: int, name: str, sender: str, path: str | None = None) -> None:
        """Accept offer ``number``; once ready, the file is fetched and saved
        as ``path`` (into the downloads folder under its own name without)."""
        if path:
            self.save_as[(name, sender)] = path
        self.user_line(f"/accept {number}")

    def send_file(self, recipient: str, path: str) -> None:
        if self.files is not None:
            self.files.send_file(self.nick, recipient, path)

    def cancel(self, key: int) -> None:
        if self.files is not None:
            self.files.cancel(key)

    def retry(self, key: int) -> None:
        if self.files is not None:
            self.files.retry(key)

    def find_servers(self, wait: float = 1.0) -> None:
        from tekcos.scan import discover
        from tekcos.scan.iface import ScanSetupError

        def found(result):
            self.view.servers_found(*result)

        def failed(failure):
            failure.trap(ScanSetupError, OSError)
            self.view.servers_found([], f"cannot look: {failure.value}")
        d = threads.deferToThread(discover.find_servers, wait=wait)
        d.addCallbacks(found, failed)

    def scan_local(self) -> None:
        """Scan this machine's LAN (where it may), for the Neighbours table."""
        from tekcos.gui.neighbours import local_scan
        from tekcos.scan.engine import ScanPermissionError
        from tekcos.scan.iface import ScanSetupError

        def failed(failure):
            failure.trap(ScanPermissionError, ScanSetupError, OSError)
            self.view.neighbours_found(None, f"cannot scan here: {failure.value}")
        d = threads.deferToThread(local_scan)
        d.addCallbacks(lambda found: self.view.neighbours_found(*found), failed)

    def close(self) -> defer.Deferred:
        """Leave with /quit; fires once the server has let go (or after
        :data:`QUIT_WAIT` seconds)."""
        self.closing = True
        self._cancel_retry()
        connection = self.connection
        if connection is None or connection.transport is None or connection.done.called:
            return defer.succeed(None)
        self.session.quit()
        self.clock.callLater(QUIT_WAIT, lambda: connection.transport.abortConnection()
                               if not connection.done.called else None)
        waited = defer.Deferred()
        connection.done.addBoth(lambda _: waited.callback(None))
        return waited

    # -- the connection ----------------------------------------------------------------
    def _say(self, text: str) -> None:
        ready = READY.match(text)
        if ready is not None:
            name, sender, code = ready.groups()
            self.ready[code] = (name, sender)
            if len(self.ready) > 100:     # fetched elsewhere, or never: forget the oldest
                self.ready.pop(next(iter(self.ready)))
        self.view.server_line(text)

    def _dial(self) -> None:
        address, nick = self.address, self.nick
        try:
            host, port = parse_address(address)
        except ValueError as e:
            self.view.status(str(e))
            return
        done = defer.Deferred()

        def make_session(conn):
            self.session = ClientSession(self._say, conn.transport.write, nick,
                                         _Files(self, self.files))
            return self.session
        if "%" in host:
            endpoint = endpoints.TCP6ClientEndpoint(self.reactor, host, port, timeout=10)
        else:
            endpoint = endpoints.HostnameEndpoint(self.reactor, host, port, timeout=10)
        self.view.status(f"connecting to {address}…")
        factory = protocol.Factory.forProtocol(lambda: ServerConnection(make_session, done))
        d = endpoint.connect(factory)

        def made(conn):
            self.connection = conn
            self.view.connected(address, nick)
            self.view.status(f"connected to {address} as {nick}")
            done.addCallback(lambda _: self._lost(conn))

        def unreachable(failure):
            failure.trap(ConnectError, OSError)
            self._again(f"cannot reach {address}: {failure.value}")
        d.addCallbacks(made, unreachable)

    def _lost(self, conn) -> None:
        if conn is not self.connection:
            return            # an older connection, left on purpose
        session = self.session
        if session.refusal:
            self.view.status(f"nick refused: {session.refusal}")
            self.view.refused(session.refusal)
            return
        if self.closing or session.quitting:
            self.view.status("disconnected")
            return
        if session.joined:
            self._delay = FIRST_RETRY     # it worked for a while: start the backoff over
        self._again(f"connection to {self.address} lost")

    def _again(self, why: str) -> None:
        if self.closing:
            return
        delay = self._delay
        self._delay = min(MAX_RETRY, self._delay * 2)
        self._retry = self.clock.callLater(delay, self._dial)
        self.view.status(f"{why}; connecting again in {delay:g} s")

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
