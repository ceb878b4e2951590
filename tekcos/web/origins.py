"""The names a browser may use to reach this server (DNS rebinding).

A page served by ``evil.example`` may make its visitor's browser talk to
this server if ``evil.example`` resolves to it (DNS rebinding): the browser
then sends ``Host: evil.example`` and ``Origin: http://evil.example``, which
agree with each other.  So agreeing is not enough: the Host must name this
server itself.  Allowed are ``localhost`` and any loopback address, every
address of this machine's interfaces (refreshed every half minute, as DHCP
may change them), its host name, that name with ``.local`` (mDNS), and the
operator's ``web-origins`` (bare host names, or whole origins such as
``https://chat.example.org`` for a reverse proxy, which are then accepted
as Origin whatever the Host).
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Iterable
from urllib.parse import urlsplit

REFRESH = 30.0


def host_of(header) -> str | None:
    """The host name or address in a Host header value (port and IPv6
    brackets removed, lower case, no trailing dot); None if malformed."""
    if header is None:
        return None
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = header.strip().lower()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return host
    host, sep, port = text.partition(":")
    if sep and not port.isdigit():
        return None
    host = host.rstrip(".")
    return host or None


def local_addresses() -> set[str]:
    """Every address of this machine's interfaces (psutil)."""
    import psutil
    found = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            found.add(address.address.split("%", 1)[0].lower())
    return found


class AllowedHosts:
    """``host_allowed(Host)`` and ``origin_allowed(Origin, Host)``.

    ``names``: the operator's ``web-origins`` plus the host name;
    ``addresses``: a function returning this machine's addresses (called
    at most every :data:`REFRESH` seconds of ``now()``)."""

    def __init__(self, names: Iterable[str], hostname: str = "",
                 addresses: Callable[[], set[str]] = local_addresses,
                 now: Callable[[], float] | None = None):
        self.origins: set[str] = set()
        self.names: set[str] = {"localhost"}
        for entry in names:
            entry = entry.strip().lower().rstrip("/")
            if "://" in entry:
                self.origins.add(entry)
                entry = urlsplit(entry).hostname or ""
            if entry:
                self.names.add(entry.rstrip("."))
        if hostname:
            short = hostname.lower().rstrip(".")
            self.names |= {short, f"{short.split('.')[0]}.local"}
        self._addresses = addresses
        self._now = now or (lambda: 0.0)
        self._known: set[str] = set()
        self._stamp: float | None = None

    def _is_ours(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.names
        if address.is_loopback:
            return True
        now = self._now()
        if self._stamp is None or now - self._stamp > REFRESH or \
                (str(address) not in self._known and now - self._stamp >= 1.0):
            # An address not seen before may be new (DHCP): look again, at
            # most once a second.
            try:
                self._known = {a for a in self._addresses()}
            except OSError:
                pass
            self._stamp = now
        return str(address) in self._known

    def host_allowed(self, header) -> bool:
        """A request without Host (HTTP/1.0, not a browser) is let in."""
        if header is None:
            return True
        host = host_of(header)
        return host is not None and self._is_ours(host)

    def origin_allowed(self, origin: str | None, host_header) -> bool:
        """Clients that send no Origin are not browsers: let in like telnet.
        A browser's Origin must be one the operator listed, or name the
        host it connected to, which must be ours."""
        if origin is None:
            return True
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or host_header is None:
            return False
        host = host_header.decode("ascii", "replace") if isinstance(host_header, bytes) \
            else host_header
        return parts.netloc == host.strip().lower() and self.host_allowed(host)
