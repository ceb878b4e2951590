"""HELLO: how a tekcos server on the LAN makes itself known.

The server answers a HELLO datagram on its UDP port (the push port) with a
HELLO_REPLY carrying a small JSON object (``tekcos``, ``server``, ``version``,
``chat_port``).  ``tekcos chat`` without a host and ``tekcos scan --probe``
send HELLOs; the push receiver answers them.  The datagrams use the push wire
format (:mod:`tekcos.push.wire`); a HELLO is padded so that the reply fits the
receiver's anti-amplification budget.
"""
from __future__ import annotations

import select
import socket
import time

from tekcos.push import wire

# The datagram formats live in tekcos.push.wire.
HELLO_MIN = wire.HELLO_MIN
request, reply, parse_reply = wire.hello_request, wire.hello_reply, wire.parse_hello_reply


def hello_replies(targets: list[str], port: int, timeout: float = 0.5,
                  broadcast: bool = False) -> list[tuple[str, dict]]:
    """Send a HELLO to each of ``targets`` (IPv4) and collect the replies.

    Returns ``[(ip, info)]`` sorted by address.  Waits at most ``timeout``
    seconds, and no longer once every unicast target has answered.
    """
    hello = request()
    found: dict[str, dict] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        for ip in targets:
            try:
                sock.sendto(hello, (ip, port))
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while broadcast or len(found) < len(set(targets)):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                data, addr = sock.recvfrom(2048)
            except OSError:
                continue
            info = parse_reply(data)
            if info is not None:
                found[addr[0]] = info
    return sorted(found.items(), key=lambda item: socket.inet_aton(item[0]))
