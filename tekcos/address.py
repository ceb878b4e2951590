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


def resolve_server(text: str) -> tuple[int, str, int]:
    """``(family, IP, port)`` of a ``HOST[:PORT]`` the user gave (already
    checked by :func:`parse_address`); raises OSError whose ``str()`` is
    ``cannot resolve HOST: reason``."""
    host, port = parse_address(text)
    try:
        family, ip = resolve_udp(host, port)
    except OSError as e:
        raise OSError(f"cannot resolve {host}: {e.strerror or e}") from None
    if family == socket.AF_INET6 and ipaddress.IPv6Address(ip.split("%")[0]).is_link_local:
        # Twisted's UDP ports carry no zone (the interface of fe80::1%eth0),
        # without which such an address cannot be reached.
        raise OSError(f"cannot reach {host}: a link-local address (fe80::) does not work for "
                      "files yet; use the host's IPv4, global or ULA address")
    return family, ip, port


def resolve_udp(host: str, port: int) -> tuple[int, str]:
    """``(address family, IP)`` for ``host``, IPv4 preferred; raises OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == family:
                return family, info[4][0]
    raise OSError(f"no address for {host}")


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


_DUAL_STACK: list[bool] = []


def dual_stack() -> bool:
    """Whether one IPv6 socket on ``::`` here also takes IPv4 (IPv6 works and
    ``net.ipv6.bindv6only`` is 0, Linux's default).  Asked once."""
    if not _DUAL_STACK:
        _DUAL_STACK.append(_probe_dual_stack())
    return _DUAL_STACK[0]


def _probe_dual_stack() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with open("/proc/sys/net/ipv6/bindv6only") as f:
            if f.read().strip() != "0":
                return False
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def listen_backlog() -> int:
    """The longest accept queue the kernel allows (``somaxconn``): a crowd
    reconnecting at once after a restart must not overflow it."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return max(1024, int(f.read()))
    except (OSError, ValueError):
        return max(1024, socket.SOMAXCONN)


def local_host(transport) -> str | None:
    """The address of this server that a connection reached (an IPv4 address
    inside an IPv6 one shown as IPv4), for telling people HOST:PORT."""
    try:
        host = getattr(transport.getHost(), "host", None)
    except AttributeError:
        return None
    if host and host.startswith("::ffff:") and "." in host:
        return host[len("::ffff:"):]
    return host
