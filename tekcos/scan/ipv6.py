"""The blocking IPv6 neighbour look, beside the ARP scan.

:func:`scan6` sends, on the scan's interface, an MLDv2 general query and
three ICMPv6 echoes to ff02::1 (from the link-local address, and one from a
global address where the interface has one, so that hosts answer from
their global addresses too), 150 ms apart, reads every IPv6 frame for the
scan window, and adds what the kernel's neighbour cache (``ip -6 neigh``)
knows of the interface.  Frames come and go through an AF_PACKET socket,
like the ARP scan's, and need the same right.
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

ECHO_EVERY = 0.15     # seconds between the echoes (replies get lost too)
ECHOES = 3
QUERY_EVERY = 0.2     # seconds between MLD queries: a host answers each one once,
QUERIES = 3           # within MLD_DELAY, so spaced queries bring several answers
MLD_DELAY_MS = 150
WINDOW = 0.6          # seconds of listening


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


def scan6(iface: str, mac: str, window: float = WINDOW, *, open_socket: Callable = _open,
          ifaddresses: Callable | None = None, clock: Callable[[], float] = time.monotonic,
          cache: Callable = neighbour_cache, keep_frames: bool = False) -> Result6:
    """Who answers on IPv6 on ``iface`` within ``window`` seconds."""
    found = ndp.Neighbours6(started=clock())
    link, other = interface_addresses(iface, ifaddresses)
    if link is None:
        return Result6(found, 0.0, 0, problem=f"no IPv6 on {iface} (no link-local address)")
    our_mac = arp.mac_bytes(mac)
    sock = open_socket(iface)
    frames = []
    wall = time.time() - found.started
    ident = os.getpid() & 0xFFFF
    plan = [(i * QUERY_EVERY, ndp.mld_query(our_mac, link, MLD_DELAY_MS))
            for i in range(QUERIES)]
    for i in range(ECHOES):
        source = other if (other is not None and i == 1) else link
        plan.append((i * ECHO_EVERY, ndp.echo_request(our_mac, source, ident, i)))
    plan.sort(key=lambda step: step[0])
    sent = 0
    try:
        end = found.started + window
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
            if now >= end:
                break
            due = found.started + plan[0][0] if plan else end
            if select.select([sock], [], [], max(0.0, min(due, end) - clock()))[0]:
                _read(sock, our_mac, found, clock, frames if keep_frames else None, wall)
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


def _read(sock, our_mac: bytes, found: ndp.Neighbours6, clock, frames, wall) -> None:
    while True:
        try:
            frame = sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
        heard = ndp.parse(frame, our_mac)
        if not heard:
            continue
        now = clock()
        for h in heard:
            found.heard(h, now)
        if frames is not None:
            frames.append((wall + now, frame))


def alongside(selection, scan: Callable, look6: Callable | None = None, *, ipv4: bool = True,
              ipv6: bool = True, keep_frames: bool = False, **scan_options):
    """The ARP scan (``scan(selection, ...)``) and the IPv6 look (``look6``,
    :func:`scan6` by default)
    at the same time, each where asked: ``(ScanResult, Result6 or None)``.
    Blocking; the IPv6 look runs in a thread of its own, and what it raises
    is raised here."""
    from tekcos.scan.engine import ScanResult
    look6 = look6 or scan6
    v6: list = []
    failed: list = []

    def look():
        try:
            v6.append(look6(selection.iface, selection.mac, keep_frames=keep_frames))
        except Exception as e:     # handed to the caller below, on its own thread
            failed.append(e)
    thread = None
    if ipv6:
        thread = threading.Thread(target=look, name="tekcos-scan6", daemon=True)
        thread.start()
    if ipv4 and selection.ip is not None:       # (a link without IPv4: nothing to ARP)
        result = scan(selection, keep_frames=keep_frames, **scan_options)
    else:
        result = ScanResult(selection, [], 0.0, 0)
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

