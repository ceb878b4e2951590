"""The blocking IPv6 neighbour look, beside the ARP scan.

:func:`scan6` sends, on the scan's interface, three MLDv2 general queries
and three ICMPv6 echoes to ff02::1 (from the link-local address, and one
from a global address where the interface has one, so that hosts answer
from their global addresses too), 100 ms apart, reads every IPv6 frame
until the answers have settled (:class:`Listening`), and adds what the
kernel's neighbour cache (``ip -6 neigh``) knows of the interface.  Frames
come and go through an AF_PACKET socket, like the ARP scan's, and need the
same right.
"""
from __future__ import annotations

import ipaddress
import os
import select
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tekcos.scan import arp, ndp
from tekcos.scan.engine import PERMISSION_HINT, ScanPermissionError

EVERY = 0.1           # seconds between the rounds (replies get lost too)
ROUNDS = 3            # each an echo and an MLD query: a host answers each query
MLD_DELAY_MS = 100    # once, within this delay, so spaced queries bring several
QUIET = 0.05          # the look ends once nothing new came for this long...
DOZING = 0.3          # ...or this long on Wi-Fi, where a station in power save
                      # hears multicast only after the next DTIM beacon
LIMIT = 2.0           # seconds of listening at most, whatever keeps coming


class Listening:
    """When the look ends (sans-IO: times are passed in).

    Once nothing new has been heard for ``quiet`` seconds after the answers
    to the last round were due (``answers_due``: the last query's MLD delay
    after it): the wait for stragglers follows what arrives, not fixed
    steps.  Never later than ``limit`` after ``start``.
    """

    def __init__(self, start: float, answers_due: float, quiet: float = QUIET,
                 limit: float = LIMIT):
        self.start = start
        self.answers_due = answers_due
        self.quiet = quiet
        self.limit = limit
        self.last_news = start

    def news(self, now: float) -> None:
        self.last_news = max(self.last_news, now)

    def end(self) -> float:
        return min(self.start + self.limit,
                   max(self.answers_due, self.last_news) + self.quiet)


@dataclass
class Result6:
    neighbours: ndp.Neighbours6
    elapsed: float
    sent: int
    problem: str = ""                       # why nothing could be asked ("" if it could)
    frames: list = field(default_factory=list)


def interface_addresses(iface: str, ifaddresses: Callable | None = None
                        ) -> tuple[ipaddress.IPv6Address | None, ipaddress.IPv6Address | None]:
    """(link-local, global or unique-local) IPv6 addresses of ``iface``."""
    if ifaddresses is None:
        import netifaces
        ifaddresses = netifaces.ifaddresses
    link, other = None, None
    for entry in ifaddresses(iface).get(socket.AF_INET6, []):
        try:
            address = ipaddress.IPv6Address(entry.get("addr", "").split("%")[0])
        except ValueError:
            continue
        if address.is_link_local:
            link = link or address
        elif not (address.is_loopback or address.is_multicast):
            other = other or address
    return link, other


def _open(iface: str):
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ndp.ETH_P_IPV6))
    except PermissionError:
        raise ScanPermissionError(PERMISSION_HINT) from None
    sock.bind((iface, ndp.ETH_P_IPV6))
    sock.setblocking(False)
    return sock


def neighbour_cache(iface: str, run=subprocess.run) -> list[tuple[str, str]]:
    """(address, MAC) pairs the kernel knows on ``iface`` (``ip -6 neigh``)."""
    try:
        out = run(["ip", "-6", "neigh", "show", "dev", iface], capture_output=True,
                  text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    pairs = []
    for line in out.splitlines():
        parts = line.split()
        if "lladdr" in parts and parts.index("lladdr") + 1 < len(parts) \
                and "FAILED" not in parts and "INCOMPLETE" not in parts:
            pairs.append((parts[0], parts[parts.index("lladdr") + 1].lower()))
    return pairs


def scan6(iface: str, mac: str, *, open_socket: Callable = _open,
          ifaddresses: Callable | None = None, clock: Callable[[], float] = time.monotonic,
          cache: Callable = neighbour_cache, keep_frames: bool = False,
          quiet: float | None = None, keep_open: Callable[[], bool] | None = None,
          select: Callable = select.select) -> Result6:
    """Who answers on IPv6 on ``iface``.  Listens until :class:`Listening`
    says the answers settled (``quiet``: default :data:`QUIET`, or
    :data:`DOZING` on Wi-Fi), and meanwhile as long as ``keep_open()``
    says (the ARP scan beside it still runs: listening costs nothing)."""
    found = ndp.Neighbours6(started=clock())
    link, other = interface_addresses(iface, ifaddresses)
    if link is None:
        return Result6(found, 0.0, 0, problem=f"no IPv6 on {iface} (no link-local address)")
    our_mac = arp.mac_bytes(mac)
    sock = open_socket(iface)
    frames = []
    wall = time.time() - found.started
    ident = os.getpid() & 0xFFFF
    plan = []
    for i in range(ROUNDS):
        source = other if (other is not None and i == 1) else link
        plan.append((i * EVERY, ndp.echo_request(our_mac, source, ident, i)))
        plan.append((i * EVERY, ndp.mld_query(our_mac, link, MLD_DELAY_MS)))
    if quiet is None:
        from tekcos.scan.iface import WIRELESS_RATE, probe_rate
        quiet = DOZING if probe_rate(iface) == WIRELESS_RATE else QUIET
    listening = Listening(found.started, found.started + plan[-1][0] + MLD_DELAY_MS / 1000,
                          quiet)
    sent = 0
    try:
        while True:
            now = clock()
            while plan and found.started + plan[0][0] <= now:
                _, frame = plan.pop(0)
                try:
                    sock.send(frame)
                    sent += 1
                except OSError:
                    pass
                if keep_frames:
                    frames.append((wall + now, frame))
            end = listening.end()
            if now >= end and not plan:
                if keep_open is None or not keep_open() \
                        or now >= listening.start + listening.limit:
                    break
                end = now + 0.01       # look again in a moment
            due = found.started + plan[0][0] if plan else end
            if select([sock], [], [], max(0.0, min(due, end) - clock()))[0]:
                _read(sock, our_mac, found, clock, listening,
                      frames if keep_frames else None, wall)
    finally:
        sock.close()
    for address, neighbour_mac in cache(iface):
        try:
            heard = ndp.Heard(ipaddress.IPv6Address(address.split("%")[0]), neighbour_mac,
                              "cache")
        except ValueError:
            continue
        if ndp.usable(heard.address) and heard.mac != mac.lower():
            found.heard(heard, clock())
    return Result6(found, clock() - found.started, sent, frames=frames)


def _read(sock, our_mac: bytes, found: ndp.Neighbours6, clock, listening: Listening,
          frames, wall) -> None:
    while True:
        try:
            frame = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        heard = ndp.parse(frame, our_mac)
        if not heard:
            continue
        now = clock()
        if any([found.heard(h, now) for h in heard]):
            listening.news(now)
        if frames is not None:
            frames.append((wall + now, frame))


def alongside(selection, scan: Callable, look6: Callable | None = None, *, ipv4: bool = True,
              ipv6: bool = True, keep_frames: bool = False, **scan_options):
    """The ARP scan (``scan(selection, ...)``) and the IPv6 look (``look6``,
    :func:`scan6` by default)
    at the same time, each where asked: ``(ScanResult, Result6 or None)``.
    Blocking; the IPv6 look runs in a thread of its own, listening as long
    as the ARP scan runs, and what it raises is raised here."""
    from tekcos.scan.engine import ScanResult
    look6 = look6 or scan6
    v6: list = []
    failed: list = []
    arp_done = threading.Event()

    def look():
        try:
            v6.append(look6(selection.iface, selection.mac, keep_frames=keep_frames,
                            keep_open=lambda: not arp_done.is_set()))
        except Exception as e:     # handed to the caller below, on its own thread
            failed.append(e)
    thread = None
    if ipv6:
        thread = threading.Thread(target=look, name="tekcos-scan6", daemon=True)
        thread.start()
    try:
        if ipv4 and selection.ip is not None:    # (a link without IPv4: nothing to ARP)
            result = scan(selection, keep_frames=keep_frames, **scan_options)
        else:
            result = ScanResult(selection, [], 0.0, 0)
    finally:
        arp_done.set()
    if thread is not None:
        thread.join()
        if failed:
            raise failed[0]
    return result, (v6[0] if v6 else None)


def both_families(selection, **scan_options):
    """What the server's ``/scan`` runs in its thread: the ARP scan and the
    IPv6 look together (:func:`alongside` with the engine's scan)."""
    from tekcos.scan.engine import scan
    return alongside(selection, scan, **scan_options)

