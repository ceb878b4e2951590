"""``HOST[:PORT]`` as people type it, and the port every tekcos service uses
by default (chat on TCP, pushes and HELLO on UDP)."""
from __future__ import annotations

import ipaddress
import socket

DEFAULT_PORT = 9000


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address.

    Returns ``(host, port)``; raises ValueError with a message fit for a user.
    """
    host, port = text, default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}")
        if rest:
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"bad address {text!r}: write IPv6 as [ADDR]:PORT") from None
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    return host, port


def resolve_udp(host: str, port: int) -> tuple[int, str]:
    """``(address family, IP)`` for ``host``, IPv4 preferred; raises OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == family:
                return family, info[4][0]
    raise OSError(f"no address for {host}")
