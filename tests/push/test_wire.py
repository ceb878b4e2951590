import pytest

from tekcos.push import wire


def test_roundtrip_and_64_bit_fields():
    data = wire.encode(wire.DATA, (1 << 64) - 1, (1 << 40) + 3, b"payload")
    assert len(data) == wire.HEADER_SIZE + 7
    assert wire.decode(data) == (wire.DATA, (1 << 64) - 1, (1 << 40) + 3, b"payload")


@pytest.mark.parametrize("position", range(0, wire.HEADER_SIZE + 7))
def test_any_flipped_bit_is_detected(position):
    data = bytearray(wire.encode(wire.DATA, 5, 9, b"payload"))
    data[position] ^= 0x10
    with pytest.raises(wire.Malformed):
        wire.decode(bytes(data))


def test_short_truncated_and_foreign_datagrams():
    good = wire.encode(wire.ACK, 1, 2, b"x" * 20)
    for bad in [b"", b"\x01" * 10, good[:-1], good + b"y", b"\x02" + good[1:]]:
        with pytest.raises(wire.Malformed):
            wire.decode(bad)


def test_json_payloads_and_padding():
    data = wire.encode_json(wire.OFFER, 3, {"name": "ü.txt"}, pad_to=200)
    kind, session, seq, payload = wire.decode(data)
    assert (kind, session, len(payload)) == (wire.OFFER, 3, 200)
    assert wire.decode_json(payload) == {"name": "ü.txt"}
    with pytest.raises(wire.Malformed):
        wire.decode_json(b"[1, 2]")
    with pytest.raises(wire.Malformed):
        wire.decode_json(b"\xff")


def test_ack_bitmap():
    bits = 0b1011 | (1 << 700)
    data = wire.encode_ack(9, 1000, 2048, 1003, bits)
    kind, token, seq, payload = wire.decode(data)
    assert wire.decode_ack(seq, payload) == (1000, 2048, 1003, bits)
    kind, token, seq, payload = wire.decode(wire.encode_ack(9, 5, 64, 4, 0))
    assert wire.decode_ack(seq, payload) == (5, 64, 4, 0)


@pytest.mark.parametrize("mtu, ipv6, payload", [
    (1500, False, 1448),       # Ethernet
    (1500, True, 1428),
    (9000, False, 8948),       # jumbo frames
    (65536, False, 8948),      # loopback: no more than a jumbo frame's
    (1280, True, 1208),        # the IPv6 minimum
    (300, False, 512),         # below the floor: fragments rather than crumbs
    (None, False, 1400),       # unknown
])
def test_payload_for_mtu(mtu, ipv6, payload):
    assert wire.payload_for_mtu(mtu, ipv6) == payload


def test_the_checksum_is_zlibs_crc32_whichever_library_computes_it():
    # Peers with and without zlib-ng must agree on every datagram.
    import zlib
    data = wire.encode(wire.DATA, 0x1234, 99, bytes(range(256)) * 5)
    head = data[:wire.HEADER_SIZE - 4]
    assert data[wire.HEADER_SIZE - 4:wire.HEADER_SIZE] == \
        zlib.crc32(data[wire.HEADER_SIZE:], zlib.crc32(head)).to_bytes(4, "big")
    assert wire.crc32 is not zlib.crc32      # the fast one is installed (setup.cfg)
