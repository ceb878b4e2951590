"""Addresses as people type and read them: ``HOST[:PORT]``, the key per-host
limits count under, IPv4 clients of dual-stack sockets shown as IPv4.
Pure functions (no sockets): the sans-IO cores use them."""
from __future__ import annotations

import ipaddress
import re

DEFAULT_PORT = 9000
# HOST:PORT as one side tells another where to fetch from: a name, an IPv4
# address or a bracketed IPv6 one (nothing else reaches a user's screen).
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}")


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_host_port(text) -> bool:
    """Whether ``text`` is a plain ``HOST:PORT`` (see :func:`host_port`)."""
    return isinstance(text, str) and _HOST_PORT.fullmatch(text) is not None


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


def host_key(host: str | None) -> str | None:
    """The key that per-address caps count under: the IP address itself
    for IPv4, the /64 for IPv6 (one host picks any address in its prefix,
    RFC 8981), and the IPv4 address inside an IPv4-mapped IPv6 one.
    Anything that is not an IP address (a UNIX socket's name) is its own key."""
    if host is None or ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))


def shown(host: str | None) -> str | None:
    """An address as people read it: an IPv4 client of a dual-stack socket
    (``::ffff:10.0.0.7``) is ``10.0.0.7``."""
    if host and host.startswith("::ffff:") and "." in host:
        return host[len("::ffff:"):]
    return host


def mapped(host: str) -> str:
    """``host`` as a dual-stack (IPv6) socket sends to it: an IPv4 address
    becomes IPv4-mapped."""
    return host if ":" in host else "::ffff:" + host
