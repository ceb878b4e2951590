"""--workers (tekcos/workers.py): what the other processes run with, the
shared ports, and the children started again and stopped; the real
processes sharing a port are in tests/federation/test_nodes.py."""
from __future__ import annotations

import socket

import pytest
from twisted.internet import error
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.python.failure import Failure

from tekcos import workers
from tekcos.tap import Options


def parse(*argv):
    options = Options()
    options.exit_on_error = False
    options.parseOptions(["--no-mdns", *argv])
    return options


def test_more_than_one_worker_needs_redis_and_plain_tcp_ports():
    with pytest.raises(usage.UsageError, match="more than one worker needs --redis"):
        parse("--workers", "2")
    with pytest.raises(usage.UsageError, match="cannot be shared by workers"):
        parse("--workers", "2", "--redis", "redis://127.0.0.1/0", "--listen", "unix:/tmp/x")
    with pytest.raises(usage.UsageError, match="--worker: must be between 1 and 1"):
        parse("--workers", "2", "--redis", "redis://127.0.0.1/0", "--worker", "2")
    options = parse("--workers", "3", "--redis", "redis://127.0.0.1/0", "--listen", "9100")
    assert options.raw_args == ["--no-mdns", "--workers", "3", "--redis",
                                "redis://127.0.0.1/0", "--listen", "9100"]


def test_the_other_workers_serve_the_chat_only_with_a_database_and_a_name_of_their_own():
    values = {"udp-port": 9000, "web": "8080", "mdns": True, "state-dir": "/var/lib/tekcos",
              "port": 9000}
    mine = workers.worker_settings(values, 2)
    assert mine == {"udp-port": 0, "web": "", "mdns": False, "port": 9000,
                    "state-dir": "/var/lib/tekcos/worker-2"}
    assert values["udp-port"] == 9000                      # the original is untouched
    assert workers.node_name("x" * 40, 63) == "x" * 28 + "-w63"


def test_two_sockets_share_a_port_and_other_endpoints_are_refused():
    from twisted.internet.testing import MemoryReactor

    class Adopting(MemoryReactor):
        def adoptStreamPort(self, fd, family, factory):
            sock = socket.socket(fileno=socket.dup(fd))
            self.adopted.append(sock)
            return sock

    reactor = Adopting()
    reactor.adopted = []
    endpoint = workers.SharedPortEndpoint(reactor, "tcp:0:interface=127.0.0.1:backlog=64")
    first = endpoint.listen(None)
    port = reactor.adopted[0].getsockname()[1]
    again = workers.SharedPortEndpoint(reactor, f"tcp:{port}:interface=127.0.0.1")
    again.listen(None)
    assert [s.getsockname() for s in reactor.adopted] == [("127.0.0.1", port)] * 2
    assert first.called
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))          # not shared: a second bind fails as one line
    failed = []
    workers.SharedPortEndpoint(reactor, f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
                               ).listen(None).addErrback(failed.append)
    assert failed and failed[0].check(error.CannotListenError)
    for sock in reactor.adopted + [taken]:
        sock.close()
    assert not workers.shareable("ssl:9443:privateKey=k.pem")
    assert workers.shareable("tcp6:9000:interface=\\:\\::backlog=4096")


class Spawner(Clock):
    """A clock that records spawned processes (as IProcessTransports)."""

    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, proto, executable, args, env=None, childFDs=None):
        child = Child(proto, args)
        self.spawned.append(child)
        return child


class Child:
    def __init__(self, proto, args):
        self.proto, self.args, self.signals = proto, args, []

    def signalProcess(self, sig):
        self.signals.append(sig)

    def end(self):
        self.proto.processEnded(Failure(error.ProcessTerminated(signal=15)))


def test_children_are_started_again_when_they_die_and_stopped_with_the_server():
    reactor = Spawner()
    service = workers.Workers(reactor, 3, ["--workers", "3"], argv0=["twistd"])
    service.startService()
    assert [c.args[-2:] for c in reactor.spawned] == [["--worker", "1"], ["--worker", "2"]]
    assert reactor.spawned[0].args[:6] == ["twistd", "-n", "--pidfile=", "-l", "-", "tekcos"]
    reactor.spawned[1].end()                      # worker 2 dies
    reactor.advance(workers.RESTART_DELAY)
    assert reactor.spawned[2].args[-1] == "2"
    stopped = service.stopService()
    assert [c.signals for c in (reactor.spawned[0], reactor.spawned[2])] == [["TERM"], ["TERM"]]
    reactor.spawned[0].end()
    assert not stopped.called
    reactor.advance(workers.STOP_GRACE)           # worker 2 ignores SIGTERM
    import signal
    assert reactor.spawned[2].signals[-1] == signal.SIGKILL
    reactor.spawned[2].end()
    assert stopped.called and reactor.getDelayedCalls() == []
    assert len(reactor.spawned) == 3              # none started again while stopping
