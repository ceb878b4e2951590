"""Twisted adapters for the sans-IO transfer cores.

Each adapter owns one ``IDelayedCall`` for its core's timer and re-arms it
after every change.  Input is handled datagram by datagram; output is
flushed once per batch of input (a ``callLater(0)``), so one ACK answers a
whole burst of DATA and one burst of DATA answers a batch of ACKs.
"""
from __future__ import annotations

import errno
import mmap
import os
import socket
import struct
import sys

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from tekcos import exits
from tekcos.address import dual_stack
from tekcos.hosts import mapped, shown
from tekcos.push import wire
from tekcos.push.gro import listen_udp
from tekcos.push.receiver import Limits, Receiver
from tekcos.push.sender import Sender
from tekcos.push.serve import Outgoing, ServerCores
from tekcos.push.storage import Downloads
from tekcos.push.worker import DiskWorker

RETRY_SEND = 0.001   # when the socket buffer is full
LATE_TIMER = 0.002   # a timer this late means the process was not running
SWEEP_EVERY = 3600   # seconds between looks for expired partial files
# UDP generic segmentation offload (Linux 4.18+): one sendmsg carries several
# datagrams of one size, cut apart by the kernel.  A train holds a paced
# burst (tekcos.push.congestion.BURST) and the retransmissions that go first,
# so that they cost no system call of their own; it stays well under the
# kernel's 64, because long trains overflow receive queues on the way (the
# measurements are in docs/performance.md).
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
GSO_SEGMENTS = 32
GSO_BYTES = 65000
# Python does not export these; they are Linux's values (asm-generic/socket.h).
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32 if sys.platform.startswith("linux") else None)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else None)


def size_socket_buffers(transport, size: int) -> None:
    """Make the kernel buffers hold a whole window (root may exceed rmem_max)."""
    sock = getattr(transport, "socket", None)
    if sock is None:
        return
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            if force is None:
                raise PermissionError
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError:
                pass


IP_MTU = getattr(socket, "IP_MTU", 14)          # linux/in.h
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)      # linux/in6.h


def path_payload(transport) -> int:
    """The DATA payload that fits the path of a connected transport in one
    unfragmented packet: the kernel's path MTU for its peer (the route's, or
    less where ICMP said so), ``wire.DEFAULT_PAYLOAD`` where it cannot say."""
    sock = getattr(transport, "socket", None)
    if sock is None:
        return wire.DEFAULT_PAYLOAD
    ipv6 = sock.family == socket.AF_INET6
    try:
        if ipv6:
            mtu = sock.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
        else:
            mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
    except OSError:     # not connected, or not Linux
        return wire.DEFAULT_PAYLOAD
    if ipv6:
        peer = sock.getpeername()[0]
        ipv6 = not peer.startswith("::ffff:")    # an IPv4 peer of a dual-stack socket
    return wire.payload_for_mtu(mtu, ipv6)


class _Driven(DatagramProtocol):
    """Flush scheduling, the one timer, and writes that survive a full buffer."""

    log = Logger()

    def __init__(self, core, clock):
        self.core = core
        self.clock = clock
        self._timer = None
        self._deadline = 0.0           # when the timer was asked to fire
        self._flush_call = None
        self._backlog: list[tuple[bytes, tuple | None]] = []
        self._gso = sys.platform.startswith("linux")
        # A dual-stack socket (IPv6 on ::) reaches IPv4 hosts by their
        # IPv4-mapped address; the cores only ever see the plain one.
        self._dual = False

    def _poke(self) -> None:
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush)

    def _flush(self) -> None:
        # Runs of equal-sized datagrams to one address (a burst of DATA)
        # go to the kernel in one sendmsg each (UDP GSO): the per-datagram
        # system call was most of a sender's time.
        self._flush_call = None
        if self.transport is None:
            return
        now = self.clock.seconds()
        items = self._backlog + self._outgoing(now)
        self._backlog = []
        i = 0
        while i < len(items):
            if self._backlog:                     # blocked: keep order
                self._backlog.extend(items[i:])
                break
            data, addr = items[i]
            j = i + 1
            if self._gso:
                limit = min(i + GSO_SEGMENTS, i + GSO_BYTES // max(1, len(data)), len(items))
                while j < limit and len(items[j][0]) == len(data) and items[j][1] == addr:
                    j += 1
            if j - i > 1:
                self._write_segments([item[0] for item in items[i:j]], addr)
            else:
                self._write(data, addr)
            i = j
        self._rearm(now)
        self._after_flush()

    def _write_segments(self, datagrams: list[bytes], addr) -> None:
        sock = getattr(self.transport, "socket", None)
        if self._dual and addr is not None and ":" not in addr[0]:
            addr = (mapped(addr[0]), addr[1])
        control = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", len(datagrams[0])))]
        try:
            if addr is None:
                sock.sendmsg([b"".join(datagrams)], control)
            else:
                sock.sendmsg([b"".join(datagrams)], control, 0, addr)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ENOBUFS):
                self._backlog.extend((d, addr) for d in datagrams)
            elif e.errno == errno.ECONNREFUSED:
                self.connectionRefused()
            else:   # no GSO here (old kernel, other system): one by one from now on
                self._gso = False
                for data in datagrams:
                    if self._backlog:
                        self._backlog.append((data, addr))
                    else:
                        self._write(data, addr)
        except AttributeError:     # not a real socket (tests)
            self._gso = False
            for data in datagrams:
                self._write(data, addr)

    def _after_flush(self) -> None:
        pass

    def _write(self, data: bytes, addr) -> None:
        try:
            if addr is None:
                self.transport.write(data)
            elif self._dual and ":" not in addr[0]:
                self.transport.write(data, (mapped(addr[0]), addr[1]))
            else:
                self.transport.write(data, addr)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ENOBUFS):
                self._backlog.append((data, addr))
            elif e.errno == errno.ECONNREFUSED:
                self.connectionRefused()
            else:
                self.log.warn("send failed: {error}", error=e)

    def _rearm(self, now: float) -> None:
        deadline = self.core.get_timer()
        if self._backlog:
            deadline = now + RETRY_SEND if deadline is None else min(deadline, now + RETRY_SEND)
        if deadline is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            return
        self._deadline = deadline
        delay = max(0.0, deadline - now)
        if self._timer is not None and self._timer.active():
            self._timer.reset(delay)
        else:
            self._timer = self.clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        # The reactor runs due timers before it polls the sockets: after this
        # process was descheduled for a while, the peer's ACKs are still
        # unread when a sender's timer fires late, and every packet in
        # flight would look lost.  Read them first (not on every timer:
        # pacing fires one per burst, and an empty read costs a system call
        # and an exception).
        read = getattr(self.transport, "doRead", None)
        if read is not None and self._sending() \
                and self.clock.seconds() > self._deadline + LATE_TIMER:
            read()
        self.core.handle_timer(self.clock.seconds())
        self._after_timer()
        self._flush()

    def _sending(self) -> bool:
        """Whether a sender is running here (then a late timer reads first)."""
        return False

    def _after_timer(self) -> None:
        pass

    def _cancel(self) -> None:
        for call in (self._timer, self._flush_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._flush_call = None


class ServerProtocol(_Driven):
    """Receives pushes (and answers HELLO) on the server's UDP port;
    ``on_complete(Received)`` is told of each completed push once the
    datagrams of that flush have gone out."""

    def __init__(self, endpoint: Receiver, clock, buffer_bytes: int = 32 << 20,
                 on_complete=None):
        super().__init__(endpoint, clock)
        self.buffer_bytes = buffer_bytes
        self.on_complete = on_complete
        self._plain: dict[tuple, tuple] = {}   # IPv4-mapped address -> as IPv4

    def _sending(self) -> bool:
        # Downloads served from here (tekcos.push.serve) are senders.
        outgoing = getattr(self.core, "outgoing", None)
        return bool(outgoing is not None and outgoing.by_offer)

    def _after_flush(self) -> None:
        if self.on_complete is None:
            return
        while (event := self.core.next_event()) is not None:
            self.on_complete(event)

    def startProtocol(self) -> None:
        size_socket_buffers(self.transport, self.buffer_bytes)
        self._dual = getattr(self.transport, "addressFamily", None) == socket.AF_INET6
        # The disk worker finishes writes and publications on its own thread;
        # it wakes us here so that DONE or FAIL goes out at once.
        call_from_thread = getattr(self.clock, "callFromThread", None)
        if call_from_thread is not None:
            self.core.downloads.worker.on_wake(lambda: call_from_thread(self._poke))

    def datagramReceived(self, data: bytes, addr) -> None:
        now = self.clock.seconds()
        if self._dual and addr[0].startswith("::ffff:"):
            # The same few senders, datagram after datagram: a table, not
            # a new tuple each time.
            plain = self._plain.get(addr)
            if plain is None:
                if len(self._plain) >= 4096:
                    self._plain.clear()
                plain = self._plain[addr] = (shown(addr[0]), addr[1])
            addr = plain
        try:
            self.core.receive_datagram(data, addr, now)
        except Exception as e:
            # The core refuses what it does not like; should a datagram still
            # find a bug, it costs one throttled log line, never a traceback
            # per datagram (which a hostile LAN could repeat at will).
            self.core.log_refusal(f"dropped a datagram from {addr[0]}: "
                                  f"{type(e).__name__}: {str(e)[:200]}", now)
        self._poke()

    def _outgoing(self, now: float):
        out = self.core.datagrams_to_send(now)
        if getattr(self.core, "can_send", False):
            # A download's sender held some back (its burst): come back
            # after the reactor has read what arrived meanwhile.
            self.clock.callLater(0, self._poke)
        return out

    def stopProtocol(self) -> None:
        self._cancel()
        self.core.close()
        self.core.downloads.worker.close()   # part files removed before we exit


class PushProtocol(_Driven):
    """Pushes one file or message; ``done`` fires with the finished Sender.

    The transport must be connected to the receiver's address, so that
    datagrams from anyone else never reach the sender.
    """

    def __init__(self, sender: Sender, clock, buffer_bytes: int = 4 << 20, on_progress=None):
        super().__init__(sender, clock)
        self.done: defer.Deferred = defer.Deferred()
        self.buffer_bytes = buffer_bytes
        self.on_progress = on_progress

    def startProtocol(self) -> None:
        size_socket_buffers(self.transport, self.buffer_bytes)

    def begin(self) -> None:
        """Start pushing; call once the transport is connected.  A sender
        made without a payload size gets the path's (:func:`path_payload`)."""
        if self.core.payload_from_path:
            self.core.use_payload(path_payload(self.transport))
        self.core.start(self.clock.seconds())
        self._flush()

    def datagramReceived(self, data: bytes, addr) -> None:
        self.core.receive_datagram(data, self.clock.seconds())
        if self._check_done():
            return
        self._poke()

    def connectionRefused(self) -> None:
        # ICMP port unreachable: nothing listens there.  Only conclusive
        # before the receiver has answered.
        if self.core.state == "offering":
            self.core.abort("connection refused: no tekcos server listens there")
            self._check_done()

    def stopProtocol(self) -> None:
        # Twisted's epoll reactor closes a connected UDP port when the socket
        # reports an error (ICMP port unreachable) before we could read it.
        if not self.core.finished:
            self.core.abort("connection refused: no tekcos server listens there"
                            if self.core.state == "offering" else "the socket was closed")
        self._cancel()
        if not self.done.called:
            self.done.callback(self.core)

    def _outgoing(self, now: float):
        out = [(d, None) for d in self.core.datagrams_to_send(now)]
        if self.on_progress is not None:
            self.on_progress(self.core)
        if self.core.can_send:
            # Come back after the reactor has read what arrived meanwhile.
            self.clock.callLater(0, self._poke)
        return out

    def _sending(self) -> bool:
        return not self.core.finished

    def _after_timer(self) -> None:
        self._check_done()

    def _check_done(self) -> bool:
        if not self.core.finished or self.done.called:
            return False
        # Send what the core still has (an ABORT), then stop.
        if self.transport is not None:
            for data in self.core.datagrams_to_send(self.clock.seconds()):
                self._write(data, None)
        self._cancel()
        self.done.callback(self.core)
        return True

    def cancel(self, reason: str) -> None:
        if not self.core.finished:
            self.core.abort(reason)
            self._check_done()


def open_read(path: str):
    """``(read(offset, n), close())`` over a file, memory-mapped (a file
    served to ``tekcos get``)."""
    with open(path, "rb") as handle:
        if not os.fstat(handle.fileno()).st_size:
            return (lambda off, n: b""), (lambda: None)
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return (lambda off, n: mapping[off:off + n]), mapping.close


def push_service(values: dict, on_complete, server_info: dict, reactor,
                 deliveries=None) -> UDPServer:
    """The server's UDP side, from the resolved settings: pushes are stored
    under ``downloads`` and reported to ``on_complete``; HELLOs are answered
    with ``server_info``; with ``deliveries`` (tekcos.delivery), files
    addressed to people are asked for and served to ``tekcos get``."""
    log = Logger(namespace="tekcos.push")
    downloads = Downloads(values["downloads"], worker=DiskWorker(threaded=True))
    keep = values["resume-hours"] * 3600
    limits = Limits(max_file_size=values["max-file-size"], max_message=values["max-message"],
                    max_sessions=values["max-transfers"], idle_timeout=values["transfer-timeout"],
                    resume_seconds=keep)
    endpoint = Receiver(downloads, limits, server_info=server_info,
                        log=lambda text: log.info("{text}", text=text), addressing=deliveries)
    core = endpoint
    if deliveries is not None:
        outgoing = Outgoing(deliveries.lookup,
                            lambda relative: open_read(os.path.join(downloads.directory,
                                                                    relative)),
                            deliveries.fetched, log=lambda text: log.info("{text}", text=text),
                            elsewhere=deliveries.kept_elsewhere,
                            coming=deliveries.coming, on_brought=deliveries.brought_away)
        core = ServerCores(endpoint, outgoing)
    removed = downloads.sweep(keep, at_start=True)
    if removed:
        log.info("removed the partial files of {n} push(es) that cannot be resumed", n=removed)
    server = UDPServer(values["udp-port"], ServerProtocol(core, reactor, on_complete=on_complete),
                       reactor=reactor)
    server.announce = lambda where: log.info(
        "pushes and HELLO listening on {where}; files go to {directory}", where=where,
        directory=os.path.abspath(values["downloads"]))

    def sweep() -> None:
        try:
            gone = downloads.sweep(keep, endpoint.keys_in_use())
        except OSError as e:
            log.warn("cannot sweep the downloads directory: {e}", e=e)
            return
        if gone:
            log.info("removed the partial files of {n} push(es) older than {h:g} hours",
                     n=gone, h=keep / 3600)

    server.sweep = task.LoopingCall(sweep)
    server.sweep.clock = reactor
    return server


class UDPServer(Service):
    """Listens on a UDP port while running (like internet.UDPServer, with an
    injectable reactor)."""

    def __init__(self, port: int, protocol, reactor, interface: str | None = None):
        self.port_number = port
        self.protocol = protocol
        self.reactor = reactor
        # Every address, IPv4 and IPv6 on one socket where the system allows.
        self.interface = ("::" if dual_stack() else "") if interface is None else interface
        self.port = None
        self.sweep: task.LoopingCall | None = None   # expires kept partial files
        self.announce = lambda where: None             # told where it listens

    @property
    def receiver(self):
        """The sans-IO :class:`~tekcos.push.receiver.Receiver` behind the
        port: its storage and counters, for the web page and /metrics."""
        return self.protocol.core

    def privilegedStartService(self):
        # Like the TCP endpoints: bind before privileges are dropped.
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        self._listen()
        if self.sweep is not None and not self.sweep.running:
            self.sweep.start(SWEEP_EVERY, now=False)

    def _listen(self):
        if self.port is None:
            try:
                self.port = listen_udp(self.reactor, self.port_number, self.protocol,
                                       interface=self.interface)
            except CannotListenError as e:
                exits.cannot_listen(f"udp:{self.port_number}", e)
            else:
                family = "IPv4 and IPv6" if self.interface == "::" else \
                    "IPv6" if ":" in self.interface else "IPv4"
                host = getattr(self.port, "getHost", None)   # memory reactors have none
                number = host().port if host is not None else self.port_number
                self.announce(f"UDP port {number} ({family})")

    def stopService(self):
        super().stopService()
        if self.sweep is not None and self.sweep.running:
            self.sweep.stop()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
