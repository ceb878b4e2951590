"""``--workers N``: N processes serve the chat on the same TCP ports and are
one hub through ``--redis``, so one machine's cores all take users.

Every worker opens its own listening socket on each chat port with
``SO_REUSEPORT``, and the kernel spreads new connections over them.  The
process started by the operator is worker 0: it also serves the UDP
pushes, the web page and the mDNS announcement, and it starts workers
1..N-1 as children (the same command line plus ``--worker K``), starts a
child again if it dies, and stops them when it stops.  Each worker is a
node of the hub (``NAME-wK``) with its own database
(``STATE_DIR/worker-K``).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import sys

from twisted.application.service import Service
from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

RESTART_DELAY = 1.0      # seconds before a worker that died is started again
STOP_GRACE = 10.0        # seconds a worker has to say goodbye before SIGKILL
_TCP = re.compile(r"^(tcp6?):(\d+)((?::[a-z]+=[^:]*(?:\\:[^:]*)*)*)$")


def shareable(description: str) -> bool:
    """Whether a chat endpoint can be shared by workers (plain TCP)."""
    return _TCP.match(description) is not None


def worker_settings(values: dict, index: int) -> dict:
    """What worker ``index`` (1..N-1) runs with: the same chat, no UDP, no
    web page, no announcement, a database of its own, a node name of its
    own."""
    values = dict(values)
    values["udp-port"] = 0
    values["web"] = ""
    values["mdns"] = False
    values["state-dir"] = os.path.join(values["state-dir"], f"worker-{index}")
    return values


def node_name(base: str, index: int) -> str:
    return f"{base[:28]}-w{index}"


@implementer(IStreamServerEndpoint)
class SharedPortEndpoint:
    """A ``tcp:``/``tcp6:`` endpoint string listened on with ``SO_REUSEPORT``."""

    def __init__(self, reactor, description: str):
        match = _TCP.match(description)
        if match is None:
            raise ValueError(f"not a TCP endpoint: {description!r}")
        self.reactor = reactor
        self.family = socket.AF_INET6 if match.group(1) == "tcp6" else socket.AF_INET
        self.port = int(match.group(2))
        options = dict(re.findall(r":([a-z]+)=((?:\\:|[^:])*)", match.group(3) or ""))
        self.interface = options.get("interface", "").replace("\\:", ":") or \
            ("::" if self.family == socket.AF_INET6 else "0.0.0.0")
        self.backlog = int(options.get("backlog", 1024))

    def listen(self, factory):
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if self.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((self.interface, self.port))
            sock.listen(self.backlog)
            sock.setblocking(False)
            port = self.reactor.adoptStreamPort(sock.fileno(), self.family, factory)
        except OSError as e:
            return defer.fail(error.CannotListenError(self.interface, self.port, e))
        finally:
            sock.close()     # the reactor holds its own copy of the descriptor
        return defer.succeed(port)


class _Child(protocol.ProcessProtocol):
    def __init__(self, on_end):
        self.on_end = on_end

    def processEnded(self, reason):
        self.on_end(reason)


class Workers(Service):
    """Worker 0's children: started with the service, started again when
    one dies, stopped (SIGTERM, then SIGKILL after :data:`STOP_GRACE`) with it."""

    log = Logger()

    def __init__(self, reactor, count: int, args: list[str], argv0: list[str] | None = None):
        self.reactor = reactor
        self.count = count
        self.args = args           # the options after ``tekcos``, as given
        self.argv0 = argv0 or [sys.executable, "-c",
                               "from twisted.scripts.twistd import run; run()"]
        self.children: dict[int, object] = {}     # index -> IProcessTransport
        self.ended: dict[int, defer.Deferred] = {}
        self.stopping = False

    def command(self, index: int) -> list[str]:
        return [*self.argv0, "-n", "--pidfile=", "-l", "-", "tekcos", *self.args,
                "--worker", str(index)]

    def startService(self):
        super().startService()
        for index in range(1, self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        if self.stopping:
            return
        self.ended[index] = defer.Deferred()
        argv = self.command(index)
        self.children[index] = self.reactor.spawnProcess(
            _Child(lambda reason: self._ended(index, reason)), argv[0], argv,
            env=os.environ.copy(), childFDs={0: "w", 1: 1, 2: 2})

    def _ended(self, index: int, reason) -> None:
        self.children.pop(index, None)
        done = self.ended.pop(index, None)
        if done is not None:
            done.callback(None)
        if not self.stopping:
            self.log.warn("worker {index} ended ({why}); starting it again in {delay:g} s",
                          index=index, why=reason.getErrorMessage(), delay=RESTART_DELAY)
            self.reactor.callLater(RESTART_DELAY, self._spawn, index)

    def stopService(self):
        super().stopService()
        self.stopping = True
        waits = list(self.ended.values())
        for child in list(self.children.values()):
            try:
                child.signalProcess("TERM")
            except error.ProcessExitedAlready:
                pass
        if not waits:
            return None
        timer = self.reactor.callLater(STOP_GRACE, self._kill)
        done = defer.DeferredList(waits)
        done.addBoth(lambda _: timer.cancel() if timer.active() else None)
        return done

    def _kill(self) -> None:
        for child in list(self.children.values()):
            try:
                child.signalProcess(signal.SIGKILL)
            except error.ProcessExitedAlready:
                pass
