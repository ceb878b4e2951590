"""IPv6 neighbour frames (tekcos/scan/ndp.py): what the probes look like
and what answers say, with no network."""
from __future__ import annotations

import ipaddress
import struct

from tekcos.scan import ndp

OURS = bytes.fromhex("02aa000000fa")
THEIRS = bytes.fromhex("3c22fb123456")
THEIR_LL = ipaddress.IPv6Address("fe80::3e22:fbff:fe12:3456")


def frame(src_ip, dst_ip, icmp: bytes, src_mac=THEIRS, hop_by_hop=False) -> bytes:
    src, dst = ipaddress.IPv6Address(src_ip).packed, ipaddress.IPv6Address(dst_ip).packed
    icmp = icmp[:2] + struct.pack("!H", ndp.checksum(src, dst, icmp)) + icmp[4:]
    ext = (bytes([58, 0]) + b"\x05\x02\x00\x00\x01\x00") if hop_by_hop else b""
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(icmp), 0 if ext else 58, 1,
                     src, dst)
    return OURS + src_mac + b"\x86\xdd" + ip + ext + icmp


def test_an_echo_reply_an_mld_report_and_an_advertisement_each_name_the_sender():
    reply = frame(THEIR_LL, "fe80::1", bytes([129, 0, 0, 0]) + b"\0\1\0\0tekcos")
    report = frame(THEIR_LL, "ff02::16", bytes([143, 0, 0, 0, 0, 0, 0, 0]), hop_by_hop=True)
    target = ipaddress.IPv6Address("2001:db8::9")
    advert = frame("2001:db8::9", "fe80::1", bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + target.packed)
    assert [(h.address, h.mac, h.why) for h in ndp.parse(reply, OURS)] == \
        [(THEIR_LL, "3c:22:fb:12:34:56", "echo")]
    assert [h.why for h in ndp.parse(report, OURS)] == ["mld"]
    assert {(str(h.address), h.why) for h in ndp.parse(advert, OURS)} == {("2001:db8::9", "na")}


def test_an_address_being_checked_counts_and_nonsense_does_not():
    tentative = ipaddress.IPv6Address("2001:db8::77")
    dad = frame("::", "ff02::1:ff00:77", bytes([135, 0, 0, 0, 0, 0, 0, 0]) + tentative.packed)
    assert [(h.address, h.why) for h in ndp.parse(dad, OURS)] == [(tentative, "ns")]
    ours = frame(THEIR_LL, "fe80::1", bytes([129, 0, 0, 0]), src_mac=OURS)
    assert ndp.parse(ours, OURS) == []                           # our own frames
    assert ndp.parse(dad[:30], OURS) == [] and ndp.parse(b"", OURS) == []
    multicast_source = frame("ff02::1", "fe80::1", bytes([129, 0, 0, 0]))
    assert ndp.parse(multicast_source, OURS) == []


def test_what_is_sent_is_what_rfc_3810_and_4443_ask():
    echo = ndp.echo_request(OURS, ipaddress.IPv6Address("fe80::aa"), 7, 1)
    assert echo[:6] == ndp.ALL_NODES_MAC and echo[12:14] == b"\x86\xdd"
    icmp = echo[54:]
    assert icmp[0] == 128 and ndp.checksum(echo[22:38], echo[38:54], icmp) == 0
    query = ndp.mld_query(OURS, ipaddress.IPv6Address("fe80::aa"), 150)
    assert query[20] == 0 and query[21] == 1                      # hop-by-hop, hop limit 1
    assert query[56:60] == b"\x05\x02\x00\x00"                    # Router Alert: MLD
    icmp = query[62:]
    assert icmp[0] == 130 and len(icmp) == 28                      # MLDv2 (v1 is 24 bytes)
    assert ndp.checksum(query[22:38], query[38:54], icmp) == 0


def test_eui64_ids_are_told_from_opaque_ones_and_a_mac_keeps_16_addresses():
    mac = "3c:22:fb:12:34:56"
    assert ndp.kind(THEIR_LL, mac) == "eui64"
    assert ndp.kind(ipaddress.IPv6Address("2001:db8::9f1:77a0:1c2e:5b1d"), mac) == "opaque"
    assert ndp.scope(ipaddress.IPv6Address("fd00::1")) == "unique-local"
    found = ndp.Neighbours6(started=10.0)
    for i in range(40):
        found.heard(ndp.Heard(ipaddress.IPv6Address(f"2001:db8::{i + 1:x}"), mac, "na"), 10.5)
    found.heard(ndp.Heard(THEIR_LL, mac, "echo"), 10.01)
    assert len(found.addresses(mac)) == 16 and found.dropped[mac] == 25
    assert found.first_reply(mac) == 0.5
