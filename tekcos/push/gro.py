"""Receiving UDP in batches: a listening port that asks the kernel for UDP GRO.

With ``UDP_GRO`` (Linux 5.0+) the kernel hands one ``recvmsg`` a run of
same-sized datagrams of one flow, glued together, and says the size of
each in a control message: a sender's GSO train arrives in one system call
instead of one call per datagram, wherever the path keeps the train whole
or a NIC's GRO rebuilds it (the default on real NICs and on veth).  Where
nothing is coalesced (offloads off, other systems) every read holds one
datagram, as before.

:func:`listen_udp` is ``reactor.listenUDP`` with such a port; a reactor
that is not a real one (tests' memory reactors) gets the plain call.
"""
from __future__ import annotations

import errno
import socket
import struct

from twisted.internet import udp

from tekcos.compat import connect_udp

UDP_GRO = 104            # linux/udp.h
_SEGMENT = struct.Struct("=i")
_CONTROL = socket.CMSG_SPACE(_SEGMENT.size)
_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_REFUSED = (errno.ECONNREFUSED,)


class GroPort(udp.Port):
    """Twisted's UDP port, reading with ``recvmsg_into`` and splitting what
    GRO glued together into the datagrams the protocol expects."""

    gro = False          # the kernel agreed to coalesce for this socket
    reads = 0            # system calls that returned data
    datagrams = 0        # datagrams they held
    connected_to = None  # (host, port) once connected

    def connect(self, host, port):
        ip, _, zone = host.partition("%")
        if zone and self.addressFamily == socket.AF_INET6:
            # A link-local address means nothing without its zone, which
            # only a 4-tuple carries.
            scope = int(zone) if zone.isdigit() else socket.if_nametoindex(zone)
            connect_udp(self, host, port, (ip, port, 0, scope))
        else:
            super().connect(host, port)
        self.connected_to = (host, port)

    def startListening(self):
        super().startListening()
        self.gro_buffer = bytearray(max(self.maxPacketSize, 65535))
        self.gro_view = memoryview(self.gro_buffer)
        try:
            self.socket.setsockopt(socket.SOL_UDP, UDP_GRO, 1)
            self.gro = True
        except (OSError, AttributeError):
            pass

    def doRead(self):
        read = 0
        sock, protocol = self.socket, self.protocol
        buffer, view = self.gro_buffer, self.gro_view
        ipv6 = self.addressFamily == socket.AF_INET6
        while read < self.maxThroughput:
            try:
                size, control, _flags, addr = sock.recvmsg_into([buffer], _CONTROL)
            except OSError as e:
                if e.errno in _AGAIN:
                    return
                if e.errno in _REFUSED:   # ICMP port unreachable (connected sockets)
                    if self.connected_to is not None:
                        protocol.connectionRefused()
                    return
                raise
            read += size
            if ipv6:
                # As Twisted's own port, (host, port); but a link-local
                # sender keeps its zone, without which it cannot be answered.
                addr = addr[:2] if not addr[3] else (addr[0], addr[1], 0, addr[3])
            segment = size
            for level, kind, data in control:
                if level == socket.SOL_UDP and kind == UDP_GRO:
                    segment = _SEGMENT.unpack_from(data)[0] or size
            data = bytes(view[:size])
            self.reads += 1
            self.datagrams += -(-size // segment) if size else 1
            try:
                if segment >= size:
                    protocol.datagramReceived(data, addr)
                else:
                    for offset in range(0, size, segment):
                        protocol.datagramReceived(data[offset:offset + segment], addr)
            except BaseException:
                from twisted.python import log
                log.err()


def listen_udp(reactor, port: int, protocol, interface: str = "",
               max_packet: int = 65535):
    """``reactor.listenUDP``, with a :class:`GroPort` where the reactor is a
    real one."""
    from twisted.internet.posixbase import PosixReactorBase
    if not isinstance(reactor, PosixReactorBase) or not hasattr(socket, "CMSG_SPACE"):
        return reactor.listenUDP(port, protocol, interface=interface, maxPacketSize=max_packet)
    listening = GroPort(port, protocol, interface, max_packet, reactor)
    listening.startListening()
    return listening
