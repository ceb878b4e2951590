"""Reaching and listening: a ``HOST[:PORT]`` resolved for a push, whether
this system takes IPv4 on an IPv6 socket, the accept queue, the address a
connection reached.  The pure helpers (parsing, per-host keys, display)
are in :mod:`tekcos.hosts` and importable from here too."""
from __future__ import annotations

import ipaddress
import socket

from tekcos.hosts import DEFAULT_PORT, host_key, mapped, parse_address, shown  # noqa: F401 (here too)


def resolve_server(text: str) -> tuple[int, str, int]:
    """``(family, IP, port)`` of a ``HOST[:PORT]`` the user gave (already
    checked by :func:`parse_address`); raises OSError whose ``str()`` is
    ``cannot resolve HOST: reason``."""
    host, port = parse_address(text)
    try:
        family, ip = resolve_udp(host, port)
    except OSError as e:
        raise OSError(f"cannot resolve {host}: {e.strerror or e}") from None
    if family == socket.AF_INET6 and "%" not in ip and \
            ipaddress.IPv6Address(ip).is_link_local:
        raise OSError(f"cannot reach {host}: a link-local address needs its interface, "
                      "as in [fe80::1%eth0]")
    return family, ip, port


def resolve_udp(host: str, port: int) -> tuple[int, str]:
    """``(address family, IP)`` for ``host``, IPv4 preferred; raises OSError."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    for family in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == family:
                ip = info[4][0]
                # A link-local address means nothing without its zone
                # (fe80::1%eth0): keep it, as the interface's number.
                if family == socket.AF_INET6 and info[4][3] and "%" not in ip:
                    ip = f"{ip}%{info[4][3]}"
                return family, ip
    raise OSError(f"no address for {host}")


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


def lan_address(family=socket.AF_INET) -> str | None:
    """This machine's address on its LAN: the source address of its route
    towards the outside world.  Connecting a UDP socket sends nothing; the
    kernel only picks the route (TEST-NET addresses, RFC 5737/3849)."""
    target = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))
            return probe.getsockname()[0]
    except OSError:
        return None
