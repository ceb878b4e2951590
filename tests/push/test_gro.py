"""The batched UDP port (push/gro.py): a sender's GSO train read in one call
arrives as the datagrams that were sent, in order, from their address."""
import socket
import struct

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol

from tekcos.push.gro import GroPort, listen_udp


class Collect(DatagramProtocol):
    def __init__(self, want: int):
        self.got, self.want, self.done = [], want, defer.Deferred()

    def datagramReceived(self, data, addr):
        self.got.append((data, addr))
        if len(self.got) == self.want and not self.done.called:
            self.done.callback(None)


@pytest_twisted.ensureDeferred
async def test_a_gso_train_arrives_as_its_datagrams():
    sizes = [1200] * 16 + [700]      # a train: same-sized segments, a shorter last one
    protocol = Collect(len(sizes) + 1)
    port = listen_udp(reactor, 0, protocol, interface="127.0.0.1")
    try:
        assert isinstance(port, GroPort)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", port.getHost().port)
        payloads = [bytes([i]) * size for i, size in enumerate(sizes)]
        try:
            sender.sendmsg([b"".join(payloads)],
                           [(socket.SOL_UDP, 103, struct.pack("=H", 1200))], 0, target)
        except OSError:            # no GSO here: one by one
            for payload in payloads:
                sender.sendto(payload, target)
        sender.sendto(b"single", target)
        await protocol.done
        source = ("127.0.0.1", sender.getsockname()[1])
        assert protocol.got == [(p, source) for p in payloads] + [(b"single", source)]
        assert port.datagrams == len(sizes) + 1
        if port.gro:   # Linux 5.0+: the train came in one read
            assert port.reads == 2
        sender.close()
    finally:
        await port.stopListening()


def test_reactors_that_are_not_real_ones_get_their_own_port():
    calls = []

    class Fake:
        def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
            calls.append((port, interface, maxPacketSize))
            return "their port"

    assert listen_udp(Fake(), 9000, DatagramProtocol(), interface="::") == "their port"
    assert calls == [(9000, "::", 65535)]
