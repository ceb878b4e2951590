"""What hostile telnet input costs the server, against plain input.

Feeds reads to one chat connection (the real ChatProtocol and hub, in
memory, no sockets) and prints the cost per KiB for plain text and for
inputs full of 0xFF bytes, each with the ratio to plain text read in reads of
the same size.  The issue's bound: hostile input may cost at most 5x the
plain path per byte.

Usage: python bench/telnet.py [--reads 300]
"""
from __future__ import annotations

import argparse
import random
import time

from common import Server

CHUNK = 64 * 1024


LINE = b"the quick brown fox jumps over the lazy dog, again and again and again\r\n"


def plain_of(size: int) -> bytes:
    return (LINE * (size // len(LINE) + 1))[:size]


def inputs() -> dict[str, bytes]:
    rng = random.Random(1)
    return {
        "64 distinct WILLs per 192-byte read": bytes(b for i in range(64) for b in (255, 251, i)),
        "IAC IAC (literal 0xFF) only": b"\xff" * CHUNK,
        "IAC DO TIMING-MARK flood": (b"\xff\xfd\x06" * (CHUNK // 3 + 1))[:CHUNK],
        "IAC WILL x, every option": bytes(b for i in range(CHUNK // 3 + 1)
                                          for b in (255, 251, i % 256))[:CHUNK],
        "text with IAC NOP every 2 bytes": (b"a\xff\xf1" * (CHUNK // 3 + 1))[:CHUNK],
        "random bytes, 1/4 of them 0xFF": bytes(255 if rng.random() < 0.25 else rng.randrange(256)
                                                for _ in range(CHUNK)),
    }


def cost(data: bytes, reads: int) -> float:
    """Microseconds per KiB, the median of 5 rounds of ``reads`` reads."""
    rounds = []
    for _ in range(5):
        server = Server(rate=5, burst=20)
        user = server.user("hostile")
        server.user("reader")
        feed = user.protocol.dataReceived
        transport = user.transport
        started = time.perf_counter()
        for _ in range(reads):
            feed(data)
            transport.clear()
        rounds.append((time.perf_counter() - started) / reads * 1e6 / (len(data) / 1024))
    rounds.sort()
    return rounds[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    print(f"{'read of':40}{'µs/KiB':>10}{'plain µs/KiB':>14}{'ratio':>8}")
    for name, data in inputs().items():
        us = cost(data, args.reads)
        plain = cost(plain_of(len(data)), args.reads)
        print(f"{name:40}{us:>10.1f}{plain:>14.1f}{us / plain:>8.2f}")


if __name__ == "__main__":
    main()
