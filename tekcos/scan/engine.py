"""The blocking ARP scan loop, and its Twisted face.

:func:`scan` sends through a raw AF_PACKET socket (frames are built by hand:
importing scapy's packet layers costs more time than the whole /24 scan)
and reads replies while it sends.  It blocks, so the server runs it with
:class:`Scanner`, which takes the reactor, the thread pool and the scan
function the way Twisted's ``GAIResolver`` takes ``getaddrinfo``.
"""
from __future__ import annotations

import errno
import ipaddress
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from tekcos.scan import arp
from tekcos.scan.iface import Selection, probe_rate


class ScanPermissionError(Exception):
    pass


PERMISSION_HINT = ("ARP scanning needs raw sockets: run as root, or give Python the "
                   "capability once with: sudo setcap cap_net_raw+ep "
                   "$(readlink -f $(which python3))")


@dataclass
class ScanResult:
    selection: Selection
    hosts: list[arp.Host]
    elapsed: float
    sent: int
    frames: list[tuple[float, bytes]] = field(default_factory=list)  # for --pcap
    rate: float | None = None        # probes per second it was paced at


class ScapySocket:
    """The same socket interface through scapy's portable layer-2 socket
    (``conf.L2socket``): Npcap on Windows, where AF_PACKET does not exist."""

    def __init__(self, iface: str):
        import logging
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)   # no chatter on stderr
        try:
            import scapy.arch  # noqa: F401 (sets conf.L2socket for this platform)
            from scapy.config import conf
            self.sock = conf.L2socket(iface=iface, type=arp.ETH_P_ARP, promisc=False,
                                      nofilter=1)
        except PermissionError:
            raise ScanPermissionError(PERMISSION_HINT) from None
        except Exception as e:  # scapy reports a missing Npcap as various errors
            raise ScanPermissionError(f"cannot open a layer-2 socket on {iface} ({e}); on "
                                      "Windows install Npcap from https://npcap.com and run "
                                      "as Administrator") from None

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def recv(self, size: int) -> bytes:
        if not self.wait(0):           # scapy's sockets block: only read what is there
            raise BlockingIOError
        _, data, _ = self.sock.recv_raw(size)
        if not data:
            raise BlockingIOError
        return data

    def wait(self, timeout: float) -> bool:
        return bool(self.sock.select([self.sock], max(0.0, timeout)))

    def close(self) -> None:
        self.sock.close()


def _raw_socket():
    """An AF_PACKET socket for ARP, or ScanPermissionError saying what to do."""
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(arp.ETH_P_ARP))
    except PermissionError:
        raise ScanPermissionError(PERMISSION_HINT) from None
    except OSError as e:
        if e.errno == errno.EPERM:
            raise ScanPermissionError(PERMISSION_HINT) from None
        raise ScanPermissionError(f"cannot open a raw socket here ({e})") from None


def open_socket(iface: str):
    if not hasattr(socket, "AF_PACKET"):
        return ScapySocket(iface)
    sock = _raw_socket()
    sock.bind((iface, arp.ETH_P_ARP))
    sock.setblocking(False)
    return sock


def check_permission() -> None:
    """Raise ScanPermissionError unless raw packet sockets can be opened."""
    if not hasattr(socket, "AF_PACKET"):
        return   # scapy's socket says what is missing when it is opened
    _raw_socket().close()


def _wait(sock, timeout: float) -> bool:
    if hasattr(sock, "wait"):
        return sock.wait(timeout)
    return bool(select.select([sock], [], [], max(0.0, timeout))[0])


def scan(selection: Selection, rate: float | None = None, tries: int = 4, *,
         open_socket: Callable = open_socket, clock: Callable[[], float] = time.monotonic,
         wait: Callable = _wait, keep_frames: bool = False,
         targets: list | None = None) -> ScanResult:
    """Probe every address of ``selection.network`` and return who answered,
    at ``rate`` probes a second (default: the link's, :func:`probe_rate`)."""
    if rate is None:
        rate = probe_rate(selection.iface)
    sock = open_socket(selection.iface)
    frames: list[tuple[float, bytes]] = []
    try:
        start = clock()
        schedule = arp.Schedule(targets if targets is not None else selection.targets(),
                                start, rate=rate, tries=tries)
        our_mac = arp.mac_bytes(selection.mac)
        our_ip = selection.ip.packed
        wall = time.time() - start  # pcap wants wall-clock stamps
        while True:
            now = clock()
            if schedule.finished(now):
                break
            for ip in schedule.probes(now):
                frame = arp.request(our_mac, our_ip, ip.packed)
                try:
                    sock.send(frame)
                except BlockingIOError:
                    pass  # the re-probe will cover it
                if keep_frames:
                    frames.append((wall + now, frame))
            timer = schedule.get_timer()
            if wait(sock, (timer - clock()) if timer is not None else 0.0):
                _read(sock, schedule, our_ip, clock, frames if keep_frames else None, wall)
        elapsed = clock() - start
    finally:
        sock.close()
    hosts = sorted(schedule.answered.values(), key=lambda h: h.ip)
    return ScanResult(selection, hosts, elapsed, schedule.sent, frames, rate)


def _read(sock, schedule: arp.Schedule, our_ip: bytes, clock, frames, wall) -> None:
    while True:
        try:
            frame = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        reply = arp.parse_reply(frame, our_ip)
        if reply is None:
            continue
        now = clock()
        ip, mac = reply
        schedule.reply(ipaddress.IPv4Address(ip), arp.mac_text(mac), now)
        if frames is not None:
            frames.append((wall + now, frame))


class Scanner:
    """Runs :func:`scan` in a thread pool and hands back a Deferred.

    ``reactor``, ``get_thread_pool`` and ``scan_function`` are injected (as in
    Twisted's GAIResolver) so tests can run the whole path synchronously.
    """

    def __init__(self, reactor, get_thread_pool=None, scan_function: Callable = scan):
        self.reactor = reactor
        self.get_thread_pool = get_thread_pool
        self.scan_function = scan_function

    def scan(self, selection: Selection, **kwargs):
        from twisted.internet.threads import deferToThreadPool
        pool = (self.get_thread_pool or self.reactor.getThreadPool)()
        return deferToThreadPool(self.reactor, pool, self.scan_function, selection, **kwargs)
