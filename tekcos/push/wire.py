"""Datagram format.

Every datagram starts with a 24-byte header, big-endian::

    version  u8    1
    type     u8    see the constants below
    length   u16   payload length
    session  u64   the sender's offer id in OFFER/ACCEPT/REJECT/RETRY, the
                   receiver's token in every later datagram, 0 in HELLO
    seq      u64   packet number (DATA) or next expected packet (ACK)
    crc      u32   CRC-32 of the header (crc field zero) and the payload

A datagram whose length, version or CRC does not match is dropped.  File
sizes and offsets are 64-bit (offset = seq * payload size).
"""
from __future__ import annotations

import json
import struct
try:
    # The same CRC-32 as zlib's (IEEE 802.3), four to five times faster on
    # a 1,448-byte payload: zlib-ng folds with carry-less multiplication.
    from zlib_ng.zlib_ng import crc32
except ImportError:     # a platform without its wheel: the same sums, slower
    from zlib import crc32

VERSION = 1
HEADER = struct.Struct("!BBHQQI")
HEADER_SIZE = HEADER.size  # 24
_HEAD_NO_CRC = struct.Struct("!BBHQQ")

OFFER, ACCEPT, REJECT, DATA, ACK, DONE, FAIL, PROBE, ABORT, HELLO, HELLO_REPLY, RETRY, GET = \
    range(1, 14)
DEFAULT_PAYLOAD = 1400
MAX_DATAGRAM = 65507
# The largest DATA payload a sender picks by itself, and that a receiver
# takes unless told otherwise: one 9000-byte jumbo frame's worth over IPv4
# (IP 20, UDP 8, our header).  The 1500-byte Ethernet frame gives 1448.
JUMBO_MTU = 9000
MAX_PAYLOAD = JUMBO_MTU - 20 - 8 - HEADER_SIZE
MIN_AUTO_PAYLOAD = 512


def payload_for_mtu(mtu: int | None, ipv6: bool = False) -> int:
    """The DATA payload that fills one IP packet of ``mtu`` bytes without
    fragments (``DEFAULT_PAYLOAD`` when the MTU is unknown), kept within
    ``MIN_AUTO_PAYLOAD`` and ``MAX_PAYLOAD``."""
    if not mtu:
        return DEFAULT_PAYLOAD
    fitting = mtu - (40 if ipv6 else 20) - 8 - HEADER_SIZE
    return max(MIN_AUTO_PAYLOAD, min(MAX_PAYLOAD, fitting))
# ACK payload: advertised window (u32), the seq that triggered it (u64), then
# a bitmap of packets received beyond the cumulative point.
ACK_HEAD = struct.Struct("!IQ")


class Malformed(ValueError):
    pass


MAX_JSON = 8192    # OFFER, ACCEPT, REJECT, DONE, FAIL, HELLO_REPLY are all small
# They are flat objects: brackets are only found inside strings (a file
# name), and never many.  Counting them (in C) bounds the nesting before the
# parser sees it, whatever the JSON looks like.
MAX_BRACKETS = 64


def encode(kind: int, session: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a datagram")
    head = _HEAD_NO_CRC.pack(VERSION, kind, len(payload), session, seq)
    crc = crc32(payload, crc32(head))
    return head + struct.pack("!I", crc) + payload


def decode(data: bytes) -> tuple[int, int, int, bytes]:
    """(type, session, seq, payload); raises Malformed."""
    if len(data) < HEADER_SIZE:
        raise Malformed("short datagram")
    version, kind, length, session, seq, crc = HEADER.unpack_from(data)
    if version != VERSION:
        raise Malformed(f"version {version}")
    if length != len(data) - HEADER_SIZE:
        raise Malformed("length mismatch")
    payload = data[HEADER_SIZE:]
    if crc32(payload, crc32(data[:HEADER_SIZE - 4])) != crc:
        raise Malformed("bad checksum")
    return kind, session, seq, payload


def encode_json(kind: int, session: int, obj: dict, pad_to: int = 0) -> bytes:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) < pad_to:
        body += b" " * (pad_to - len(body))
    return encode(kind, session, 0, body)


def decode_json(payload: bytes) -> dict:
    """The JSON object in ``payload``; raises Malformed, also for payloads
    too large or too deeply nested to be ours (checked before parsing)."""
    if len(payload) > MAX_JSON:
        raise Malformed("JSON too large")
    if payload.count(b"[") + payload.count(b"{") > MAX_BRACKETS:
        raise Malformed("JSON nested too deeply")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("bad JSON") from None
    if not isinstance(obj, dict):
        raise Malformed("JSON is not an object")
    return obj


def encode_ack(token: int, cumulative: int, window: int, trigger: int, bits: int) -> bytes:
    """ACK: every packet below ``cumulative`` arrived; bit j of ``bits`` says
    packet ``cumulative + 1 + j`` arrived too (selective acknowledgement)."""
    bitmap = bits.to_bytes((bits.bit_length() + 7) // 8, "little") if bits else b""
    return encode(ACK, token, cumulative, ACK_HEAD.pack(window, trigger) + bitmap)


def decode_ack(seq: int, payload: bytes) -> tuple[int, int, int, int]:
    """(cumulative, window, trigger, bitmap-as-int)."""
    if len(payload) < ACK_HEAD.size:
        raise Malformed("short ACK")
    window, trigger = ACK_HEAD.unpack_from(payload)
    return seq, window, trigger, int.from_bytes(payload[ACK_HEAD.size:], "little")


# -- HELLO: how a server makes itself known on the LAN (tekcos.hello) --------------
HELLO_MIN = 256


def hello_request() -> bytes:
    return encode(HELLO, 0, 0, b" " * HELLO_MIN)


def hello_reply(info: dict) -> bytes:
    return encode_json(HELLO_REPLY, 0, {"tekcos": 1, **info})


def parse_hello_reply(data: bytes) -> dict | None:
    """The server's information if ``data`` is a tekcos HELLO_REPLY, else None."""
    try:
        kind, _, _, payload = decode(data)
        if kind != HELLO_REPLY:
            return None
        info = decode_json(payload)
    except Malformed:
        return None
    return info if info.get("tekcos") == 1 else None
