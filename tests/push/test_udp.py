"""The Twisted adapters with FakeDatagramTransport and task.Clock."""
import errno
import hashlib
import os
import socket
import struct

import pytest_twisted
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport

from tekcos.push import wire
from tekcos.push.receiver import Limits, Receiver
from tekcos.push.sender import Sender
from tekcos.push.congestion import BURST
from tekcos.push.udp import PushProtocol, ServerProtocol
from tests.fakes import Disk

CLIENT, SERVER = ("127.0.0.2", 40001), ("127.0.0.1", 9000)


def make_pair(tmp_path, data, drop=lambda i, d: False, timeout=10.0, window=16):
    clock = Clock()
    endpoint = Receiver(Disk(str(tmp_path), reserve=0), Limits(window=window, idle_timeout=5,
                                                                 linger=1))
    server = ServerProtocol(endpoint, clock)
    server.makeConnection(FakeDatagramTransport())
    sender = Sender(offer_id=5, name="x.bin", size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), kind="file",
                    read=lambda off, n: data[off:off + n], payload_size=100, window=window,
                    timeout=timeout)
    client = PushProtocol(sender, clock)
    client.makeConnection(FakeDatagramTransport())
    return clock, server, client


def pump(clock, server, client, drop=lambda i, d: False, steps=10_000):
    """Move datagrams both ways, then let time pass to the next timer."""
    count = 0
    for _ in range(steps):
        moved = False
        for packet, _ in client.transport.written:
            count += 1
            moved = True
            if not drop(count, packet):
                server.datagramReceived(packet, CLIENT)
        client.transport.written.clear()
        for packet, addr in server.transport.written:
            assert addr == CLIENT
            moved = True
            client.datagramReceived(packet, SERVER)
        server.transport.written.clear()
        if client.done.called and not moved and not clock.getDelayedCalls():
            return
        if not moved:
            calls = clock.getDelayedCalls()
            if not calls:
                return
            clock.advance(max(0, min(c.getTime() for c in calls) - clock.seconds()))
        else:
            clock.advance(0)


def test_push_over_fake_transports(tmp_path):
    data = os.urandom(5000)
    clock, server, client = make_pair(tmp_path, data)
    client.begin()
    pump(clock, server, client)
    assert client.done.called
    assert client.core.status == "delivered"
    assert (tmp_path / "x.bin").read_bytes() == data
    # The server lingers to answer duplicates, then its timer ends too.
    clock.advance(2)
    assert server.core.sessions == {}
    assert clock.getDelayedCalls() == []


def test_one_timer_re_armed_through_losses(tmp_path):
    data = os.urandom(3000)
    clock, server, client = make_pair(tmp_path, data)
    client.begin()
    # Drop every 4th datagram the client sends.
    pump(clock, server, client, drop=lambda i, d: i % 4 == 0)
    assert client.core.status == "delivered"
    assert client.core.retransmits > 0
    assert (tmp_path / "x.bin").read_bytes() == data
    clock.advance(2)
    assert clock.getDelayedCalls() == []


def test_silent_server_times_out_on_the_clock(tmp_path):
    data = b"y" * 500
    clock, server, client = make_pair(tmp_path, data, timeout=3.0)
    client.begin()
    offers = []
    # Nobody answers: step the re-arming timer through its backoff.
    clock.pump([0.05] * 100)
    offers = [wire.decode(p)[0] for p, _ in client.transport.written]
    assert client.done.called and client.core.status == "failed"
    assert "no answer" in client.core.error
    # 0, 0.05, 0.15, 0.35, 0.75, 1.55 s (backoff; the next would be at 3.15)
    assert set(offers) == {wire.OFFER} and len(offers) == 6
    assert clock.getDelayedCalls() == []


def test_full_socket_buffer_is_retried_not_lost(tmp_path):
    data = os.urandom(2000)
    clock, server, client = make_pair(tmp_path, data)
    real_write = client.transport.write
    refusals = [3]

    def write(packet, addr=FakeDatagramTransport.noAddr):
        if refusals[0]:
            refusals[0] -= 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        real_write(packet, addr)

    client.transport.write = write
    client.begin()
    pump(clock, server, client)
    assert client.core.status == "delivered"
    assert client.core.retransmits == 0        # held back and sent late, not lost


@pytest_twisted.inlineCallbacks
def test_push_on_the_real_reactor_over_loopback(tmp_path):
    # The adapters on the running reactor with real UDP sockets: the same
    # push_one() that ``tekcos push`` uses, against the server's protocol.
    from twisted.internet import reactor

    from tekcos.push.command import push_one
    received = []
    endpoint = Receiver(Disk(tmp_path), Limits(), on_complete=received.append)
    server = ServerProtocol(endpoint, reactor)
    port = reactor.listenUDP(0, server, interface="127.0.0.1")
    data = os.urandom(300_000)
    try:
        sender, seconds = yield push_one(
            reactor, socket.AF_INET, "127.0.0.1", port.getHost().port, label="r.bin",
            kind="file", name="r.bin", size=len(data), sha=hashlib.sha256(data).hexdigest(),
            read=lambda off, n: data[off:off + n], sender_name="t", timeout=10, window=256,
            payload=1400)
    finally:
        yield port.stopListening()   # stopProtocol cancels the server's timer
    assert sender.status == "delivered" and seconds > 0
    assert (tmp_path / "r.bin").read_bytes() == data
    assert [r.name for r in received] == ["r.bin"]
    # Nothing of ours is left on the reactor.
    assert server._timer is None and server._flush_call is None


@pytest_twisted.inlineCallbacks
def test_a_push_without_a_payload_size_takes_the_paths(tmp_path):
    # Loopback's MTU is 65536: the push uses the largest size we pick by
    # ourselves, and the receiver takes it.
    from twisted.internet import reactor

    from tekcos.push.command import push_one
    from tekcos.push.gro import listen_udp
    endpoint = Receiver(Disk(tmp_path), Limits())
    server = ServerProtocol(endpoint, reactor)
    port = listen_udp(reactor, 0, server, interface="127.0.0.1")
    data = os.urandom(100_000)
    try:
        sender, _ = yield push_one(
            reactor, socket.AF_INET, "127.0.0.1", port.getHost().port, label="p.bin",
            kind="file", name="p.bin", size=len(data), sha=hashlib.sha256(data).hexdigest(),
            read=lambda off, n: data[off:off + n], sender_name="t", timeout=10, window=256,
            payload=None)
    finally:
        yield port.stopListening()
    assert sender.status == "delivered"
    assert sender.payload_size == wire.MAX_PAYLOAD
    assert (tmp_path / "p.bin").read_bytes() == data


def test_path_payload_reads_the_connected_sockets_mtu():
    from tekcos.push.udp import path_payload

    class Held:
        def __init__(self, sock):
            self.socket = sock
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert path_payload(Held(sock)) == wire.DEFAULT_PAYLOAD    # not connected yet
        sock.connect(("127.0.0.1", 9))
        mtu = sock.getsockopt(socket.IPPROTO_IP, 14)
        assert path_payload(Held(sock)) == wire.payload_for_mtu(mtu) == wire.MAX_PAYLOAD
    assert path_payload(object()) == wire.DEFAULT_PAYLOAD           # no socket (tests' fakes)


def test_a_datagram_that_breaks_the_core_costs_a_throttled_line_not_a_traceback(tmp_path):
    logged = []
    endpoint = Receiver(Disk(tmp_path), Limits(), log=logged.append)

    def broken(data, addr, now):
        raise KeyError("a bug")
    endpoint.receive_datagram = broken
    clock = Clock()
    server = ServerProtocol(endpoint, clock)
    server.makeConnection(FakeDatagramTransport())
    for _ in range(1000):
        server.datagramReceived(b"x", ("10.0.0.1", 1))
    # The refusal log allows a burst of 20, then one line a second, which
    # counts what it left out.
    assert len(logged) == 20
    assert logged[0] == "dropped a datagram from 10.0.0.1: KeyError: 'a bug'"
    clock.advance(1.0)
    server.datagramReceived(b"x", ("10.0.0.1", 1))
    assert len(logged) == 21
    assert logged[-1].endswith("(980 more refusals not logged)")
    clock.advance(1.0)     # the flush call
    assert clock.getDelayedCalls() == []


class SegmentingSocket:
    """Stands in for the kernel's UDP GSO: a sendmsg with UDP_SEGMENT is cut
    into datagrams of that size and delivered like transport.write.  Raises
    ``errors`` (errno values) on the first calls, one each."""

    def __init__(self, transport, errors=()):
        self.transport = transport
        self.errors = list(errors)
        self.trains = []

    def sendmsg(self, buffers, ancillary):
        if self.errors:
            code = self.errors.pop(0)
            raise OSError(code, errno.errorcode[code])
        [(level, kind, size)] = ancillary
        assert (level, kind) == (socket.SOL_UDP, 103)
        size = struct.unpack("=H", size)[0]
        data = b"".join(buffers)
        assert len(data) % size == 0
        self.trains.append(len(data) // size)
        for i in range(0, len(data), size):
            self.transport.written.append((data[i:i + size], None))


def with_gso(client, errors=()):
    client.transport.socket = SegmentingSocket(client.transport, errors)
    client._gso = True
    return client.transport.socket


def push_with_gso(tmp_path, errors=()):
    """A 30,000-byte push (300 packets, windows of 256) through a kernel with
    GSO that raises ``errors`` first; returns the client and its socket."""
    data = os.urandom(30_000)
    clock, server, client = make_pair(tmp_path, data, window=256)
    gso = with_gso(client, errors)
    client.begin()
    pump(clock, server, client)
    assert client.core.status == "delivered" and (tmp_path / "x.bin").read_bytes() == data
    return client, gso


def test_bursts_leave_in_trains_of_at_most_one_pacing_burst(tmp_path):
    client, gso = push_with_gso(tmp_path)
    assert client.done.called
    # The window would let far more out at once: pacing cuts it into bursts.
    assert gso.trains and max(gso.trains) == BURST and sum(gso.trains) >= 250


def test_without_gso_in_the_kernel_datagrams_go_one_by_one(tmp_path):
    client, gso = push_with_gso(tmp_path, errors=[errno.EIO])
    assert gso.trains == [] and client._gso is False


def test_a_full_socket_buffer_keeps_the_train_for_later(tmp_path):
    client, gso = push_with_gso(tmp_path, errors=[errno.EAGAIN])
    assert client._gso is True and gso.trains
    assert client.core.retransmits == 0      # kept and sent, not lost and repeated


def test_a_late_timer_reads_the_acks_waiting_in_the_socket_first(tmp_path):
    # The process was descheduled: when it runs again the reactor fires the
    # timer before it polls the socket, where the ACK for everything waits.
    data = os.urandom(1000)
    clock, server, client = make_pair(tmp_path, data)
    waiting = []

    def do_read():
        while waiting:
            client.datagramReceived(waiting.pop(0), SERVER)

    client.transport.doRead = do_read

    def server_to_client(into):
        for packet, _ in server.transport.written:
            into.append(packet)
        server.transport.written.clear()

    def client_to_server():
        for packet, _ in client.transport.written:
            server.datagramReceived(packet, CLIENT)
        client.transport.written.clear()
        clock.advance(0)

    client.begin()
    client_to_server()                           # OFFER
    accepted = []
    server_to_client(accepted)
    for packet in accepted:                      # ACCEPT, read at once
        client.datagramReceived(packet, SERVER)
    clock.advance(0)
    client_to_server()                           # all ten DATA
    server_to_client(waiting)                    # their ACK, not read yet
    assert waiting and client.core.state == "sending"
    clock.advance(1.0)                           # far past the RTO
    assert client.core.state in ("confirming", "finished")
    assert (client.core.retransmits, client.core.probes) == (0, 0)


def test_a_completed_push_is_reported_after_its_done_has_gone_out(tmp_path):
    data = os.urandom(3000)
    clock, server, client = make_pair(tmp_path, data)
    told = []

    def on_complete(received):
        # By now the DONE of this flush is written: the chat's fan-out
        # never runs inside the UDP flush.
        kinds = [wire.decode(packet)[0] for packet, _ in server.transport.written]
        told.append((received.name, received.size, wire.DONE in kinds))
    server.on_complete = on_complete
    client.begin()
    pump(clock, server, client)
    assert told == [("x.bin", 3000, True)]
    clock.advance(2)
    assert clock.getDelayedCalls() == []
