"""ARP frames and the probe schedule (sans-IO: time is passed in).

Like arp-scan rather than ``srp(retry=N)``: probes go out at a paced rate,
replies are read while sending, and only hosts that have not answered are
probed again, each after a growing wait (50 ms, 100 ms, 200 ms, ... up to
500 ms).
Re-probes of early targets interleave with first probes of later ones, so
the scan takes about (probes sent) / rate plus one final wait.
"""
from __future__ import annotations

import heapq
import ipaddress
import struct
from dataclasses import dataclass, field

ETH_P_ARP = 0x0806
MAX_WAIT = 0.5   # growing waits stop growing here (like arp-scan's 500 ms timeout)
BROADCAST = b"\xff" * 6
_FRAME = struct.Struct("!6s6sH HHBBH 6s4s 6s4s")


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.replace("-", ":").split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def request(src_mac: bytes, src_ip: bytes, target_ip: bytes) -> bytes:
    """A broadcast who-has carrying our real MAC and IP (never a fake
    sender address: that would poison the neighbours' ARP caches)."""
    return _FRAME.pack(BROADCAST, src_mac, ETH_P_ARP, 1, 0x0800, 6, 4, 1,
                       src_mac, src_ip, b"\x00" * 6, target_ip)


def parse_reply(frame: bytes, our_ip: bytes) -> tuple[bytes, bytes] | None:
    """(sender IP, sender MAC) of an ARP reply addressed to our IP, else None."""
    if len(frame) < _FRAME.size:
        return None
    (_, _, ethertype, htype, ptype, hlen, plen, op, sha, spa, _, tpa) = \
        _FRAME.unpack_from(frame)
    if ethertype != ETH_P_ARP or htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
        return None
    if op != 2 or tpa != our_ip:
        return None
    return spa, sha


@dataclass
class Host:
    ip: ipaddress.IPv4Address
    macs: list = field(default_factory=list)   # every MAC that answered, first first
    rtt: float | None = None                   # seconds, from the first reply

    @property
    def conflict(self) -> bool:
        return len(self.macs) > 1


class Schedule:
    """When to probe which target.

    ``probes(now)`` returns the targets to send to now (at most what the rate
    allows); ``reply(ip, mac, now)`` records an answer; ``get_timer()`` says
    when to call again (None: finished).
    """

    def __init__(self, targets: list[ipaddress.IPv4Address], now: float, rate: float = 1000,
                 tries: int = 4, first_wait: float = 0.05, final_wait: float = 0.1):
        self.rate = rate
        self.tries = tries
        self.first_wait = first_wait
        self.final_wait = final_wait
        self.start = now
        self.sent = 0
        self.queue = [(now, i, t, 0) for i, t in enumerate(targets)]  # (due, order, ip, attempt)
        heapq.heapify(self.queue)
        self.sent_at: dict[ipaddress.IPv4Address, float] = {}
        self.answered: dict[ipaddress.IPv4Address, Host] = {}
        self.last_send = now
        self._order = len(targets)

    def _allowance(self, now: float) -> int:
        # One second's worth of burst at most would defeat pacing: allow 1 ms.
        return int((now - self.start) * self.rate) + 1 - self.sent

    def probes(self, now: float) -> list[ipaddress.IPv4Address]:
        out = []
        budget = self._allowance(now)
        queue = self.queue
        while budget > 0 and queue and queue[0][0] <= now:
            due, _, ip, attempt = heapq.heappop(queue)
            if ip in self.answered:
                continue
            out.append(ip)
            budget -= 1
            self.sent += 1
            self.sent_at[ip] = now   # RTT is measured from the latest probe
            self.last_send = now
            if attempt + 1 < self.tries:
                self._order += 1
                wait = min(self.first_wait * (2 ** attempt), MAX_WAIT)
                heapq.heappush(queue, (now + wait, self._order, ip, attempt + 1))
        # Keep the rate's clock from running ahead while idle between rounds.
        if not out and (not queue or queue[0][0] > now):
            self.start = now - self.sent / self.rate
        return out

    def reply(self, ip: ipaddress.IPv4Address, mac: str, now: float) -> None:
        host = self.answered.get(ip)
        if host is None:
            host = self.answered[ip] = Host(ip)
            first = self.sent_at.get(ip)
            host.rtt = (now - first) if first is not None else None
        if mac not in host.macs:
            host.macs.append(mac)

    def get_timer(self) -> float | None:
        while self.queue and self.queue[0][2] in self.answered:
            heapq.heappop(self.queue)
        if self.queue:
            return max(self.queue[0][0], self.start + self.sent / self.rate)
        return self.last_send + self.final_wait

    def finished(self, now: float) -> bool:
        return not self.queue and now >= self.last_send + self.final_wait
