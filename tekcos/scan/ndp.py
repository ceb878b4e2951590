"""IPv6 neighbours: the frames that find them and what their answers say
(sans-IO: bytes in, bytes and records out).

Like nmap's ``targets-ipv6-multicast-echo`` and ``-mld``: one ICMPv6 echo
to all-nodes (ff02::1) that every host answers from the address it was
asked from, and one MLDv2 general query that hosts answer with reports even
where they ignore echo.  Neighbour Solicitations and Advertisements heard
meanwhile (a host checking an address it is about to use, or answering
someone) count too.  Never a Router Advertisement: that would change other
hosts' addresses.

A host is known by its MAC (the frame's source), so its IPv6 addresses
merge with its IPv4 row.  At most :data:`MAX_PER_MAC` addresses are kept
per MAC; a hostile host answering for a whole prefix costs a counter.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

ETH_P_IPV6 = 0x86DD
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
MLDV2_ROUTERS = ipaddress.IPv6Address("ff02::16")
MAX_PER_MAC = 16
MAX_MACS = 65536
ECHO_REQUEST, ECHO_REPLY = 128, 129
MLD_QUERY, MLD_REPORT_V1, MLD_REPORT_V2 = 130, 131, 143
NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT = 135, 136
_ETH = struct.Struct("!6s6sH")
_IP6 = struct.Struct("!IHBB16s16s")


def checksum(src: bytes, dst: bytes, message: bytes) -> int:
    """The ICMPv6 checksum (RFC 4443 2.3) over the pseudo-header and ``message``."""
    data = src + dst + struct.pack("!I3xB", len(message), 58) + message
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _icmp(src: bytes, dst: bytes, kind: int, body: bytes) -> bytes:
    message = struct.pack("!BBH", kind, 0, 0) + body
    return message[:2] + struct.pack("!H", checksum(src, dst, message)) + message[4:]


def echo_request(src_mac: bytes, src_ip: ipaddress.IPv6Address, ident: int, seq: int,
                 data: bytes = b"tekcos") -> bytes:
    """One Ethernet frame: an ICMPv6 echo request from ``src_ip`` to ff02::1."""
    src, dst = src_ip.packed, ALL_NODES.packed
    icmp = _icmp(src, dst, ECHO_REQUEST, struct.pack("!HH", ident, seq) + data)
    ip = _IP6.pack(6 << 28, len(icmp), 58, 255, src, dst)
    return _ETH.pack(ALL_NODES_MAC, src_mac, ETH_P_IPV6) + ip + icmp


def mld_query(src_mac: bytes, src_ip: ipaddress.IPv6Address, max_delay_ms: int = 500) -> bytes:
    """One Ethernet frame: an MLDv2 general query (RFC 3810 5.1) from the
    link-local ``src_ip`` to ff02::1, hop limit 1, with the Router Alert
    option.  Version 2, so that no host falls back to MLDv1 for a while."""
    src, dst = src_ip.packed, ALL_NODES.packed
    # Maximum Response Code, reserved, the group (:: = general), S/QRV 2,
    # QQIC 125, no sources.
    body = struct.pack("!HH16sBBH", max_delay_ms, 0, bytes(16), 2, 125, 0)
    icmp = _icmp(src, dst, MLD_QUERY, body)
    hop_by_hop = struct.pack("!BB", 58, 0) + b"\x05\x02\x00\x00" + b"\x01\x00"
    ip = _IP6.pack(6 << 28, len(hop_by_hop) + len(icmp), 0, 1, src, dst)
    return _ETH.pack(ALL_NODES_MAC, src_mac, ETH_P_IPV6) + ip + hop_by_hop + icmp


@dataclass
class Heard:
    """One address a frame showed, and for what."""
    address: ipaddress.IPv6Address
    mac: str
    why: str      # "echo", "mld", "ns" (checking or asking), "na"


def parse(frame: bytes, our_mac: bytes) -> list[Heard]:
    """The (address, MAC) pairs an incoming frame shows: its source, and for
    a Neighbour Solicitation from :: or an Advertisement, the target."""
    if len(frame) < _ETH.size + _IP6.size:
        return []
    _, src_mac, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_IPV6 or src_mac == our_mac or src_mac[0] & 1:
        return []
    first, length, next_header, _, src, _ = _IP6.unpack_from(frame, _ETH.size)
    if first >> 28 != 6:
        return []
    offset = _ETH.size + _IP6.size
    end = min(len(frame), offset + length)
    if next_header == 0 and offset + 2 <= end:     # hop-by-hop options (MLD)
        next_header = frame[offset]
        offset += (frame[offset + 1] + 1) * 8
    if next_header != 58 or offset + 4 > end:
        return []
    kind = frame[offset]
    mac = ":".join(f"{b:02x}" for b in src_mac)
    source = ipaddress.IPv6Address(src)
    out = []
    if kind in (NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT) and offset + 24 <= end:
        target = ipaddress.IPv6Address(frame[offset + 8:offset + 24])
        if kind == NEIGHBOR_ADVERT or source.is_unspecified:   # its own (tentative) address
            out.append(Heard(target, mac, "na" if kind == NEIGHBOR_ADVERT else "ns"))
    why = {ECHO_REPLY: "echo", MLD_REPORT_V1: "mld", MLD_REPORT_V2: "mld",
           NEIGHBOR_SOLICIT: "ns", NEIGHBOR_ADVERT: "na"}.get(kind)
    if why is not None and not source.is_unspecified:
        out.append(Heard(source, mac, why))
    return [h for h in out if usable(h.address)]


def usable(address: ipaddress.IPv6Address) -> bool:
    return not (address.is_multicast or address.is_unspecified or address.is_loopback
                or address.ipv4_mapped is not None)


def scope(address: ipaddress.IPv6Address) -> str:
    if address.is_link_local:
        return "link-local"
    if address in ipaddress.IPv6Network("fc00::/7"):
        return "unique-local"
    return "global"


def kind(address: ipaddress.IPv6Address, mac: str) -> str:
    """``eui64``: the interface ID is made of the MAC (stable, and it gives
    the MAC away); ``opaque``: a stable-privacy (RFC 7217) or temporary
    (RFC 8981) ID, which cannot be told apart from outside."""
    iid = address.packed[8:]
    octets = bytes(int(part, 16) for part in mac.split(":"))
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return "eui64" if iid == eui else "opaque"


@dataclass
class Neighbours6:
    """What the frames showed, by MAC, bounded."""
    started: float = 0.0
    by_mac: dict = field(default_factory=dict)      # mac -> {address: (seconds, why)}
    dropped: dict = field(default_factory=dict)     # mac -> addresses not kept
    ignored_macs: int = 0

    def heard(self, heard: Heard, now: float) -> bool:
        """Keep what ``heard`` says; True if it was news (a MAC or an
        address of it not known before, and kept)."""
        entries = self.by_mac.get(heard.mac)
        if entries is None:
            if len(self.by_mac) >= MAX_MACS:
                self.ignored_macs += 1
                return False
            entries = self.by_mac[heard.mac] = {}
        if heard.address in entries:
            return False
        if len(entries) >= MAX_PER_MAC:
            self.dropped[heard.mac] = self.dropped.get(heard.mac, 0) + 1
            return False
        entries[heard.address] = (now - self.started, heard.why)
        return True

    def addresses(self, mac: str) -> list[dict]:
        """A MAC's addresses for the report: link-local first, then by address."""
        entries = self.by_mac.get(mac, {})
        ordered = sorted(entries, key=lambda a: (not a.is_link_local, a))
        return [{"address": str(a), "scope": scope(a), "kind": kind(a, mac),
                 "rtt_ms": round(entries[a][0] * 1000, 3), "seen": entries[a][1]}
                for a in ordered]

    def first_reply(self, mac: str) -> float | None:
        times = [t for t, _ in self.by_mac.get(mac, {}).values()]
        return min(times) if times else None
