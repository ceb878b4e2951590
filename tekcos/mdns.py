"""This server on the LAN's multicast DNS (RFC 6762) and DNS-SD (RFC 6763),
with python-zeroconf: ``HOSTNAME.local`` answers with the server's
addresses, ``_tekcos._tcp`` names the chat (TXT: version, UDP port, web
port) and ``_http._tcp`` the web page, so a phone opens
``http://HOSTNAME.local:8080/`` and ``tekcos chat`` with no host finds the
server without a scan.

zeroconf runs its own thread; registering (which probes the names first,
about 1.5 s) and the goodbyes on shutdown block, so :class:`Advertiser`
runs them in the reactor's thread pool.  Where multicast does not work (no
interface that can take it), the server says so in one log line and goes
on without.  zeroconf is imported only when the service starts, so
``twistd --help`` stays fast.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Callable

from twisted.application.service import Service
from twisted.internet import threads
from twisted.logger import Logger

CHAT_TYPE = "_tekcos._tcp.local."
WEB_TYPE = "_http._tcp.local."
MAX_LABEL = 63          # bytes in one DNS label (RFC 1035)


@dataclass
class Record:
    """One service to announce: its DNS-SD type, instance name, port, TXT."""
    kind: str
    instance: str
    port: int
    properties: dict = field(default_factory=dict)


def host_label(hostname: str) -> str:
    """``HOSTNAME`` of ``HOSTNAME.local``: the first label of the system's
    name, letters, digits and hyphens only (RFC 952 style), never empty."""
    label = re.sub(r"[^A-Za-z0-9-]+", "-", hostname.split(".")[0]).strip("-")
    return label[:MAX_LABEL].rstrip("-") or "tekcos"


def records(hostname: str, chat_port: int | None, web_port: int | None, version: str,
            udp_port: int = 0, node: str = "") -> list[Record]:
    """What this server announces: the chat (when it listens on TCP) and the
    web page (with ``--web`` on a TCP port)."""
    who = node or host_label(hostname)
    out = []
    if chat_port:
        txt = {"version": version, "udp": str(udp_port or 0)}
        if web_port:
            txt["web"] = str(web_port)
        out.append(Record(CHAT_TYPE, _instance(f"tekcos on {who}"), chat_port, txt))
    if web_port:
        out.append(Record(WEB_TYPE, _instance(f"tekcos chat on {who}"), web_port,
                          {"path": "/"}))
    return out


def _instance(name: str) -> str:
    data = name.encode()[:MAX_LABEL]
    return data.decode("utf-8", "ignore")


def lan_addresses(interfaces: Callable[[], dict] | None = None) -> list[str]:
    """This machine's addresses that others on a LAN can reach: IPv4 and
    global or unique-local IPv6 (no loopback, no link-local)."""
    if interfaces is None:
        import psutil
        interfaces = psutil.net_if_addrs
    found = []
    for addrs in interfaces().values():
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(addr.address.split("%")[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
                continue
            if str(ip) not in found:
                found.append(str(ip))
    return found


class Advertiser(Service):
    """Announces ``records`` while the server runs (unannounced, with
    goodbye packets, when it stops).  ``zeroconf`` makes the zeroconf
    instance (``zeroconf.Zeroconf`` by default); ``in_thread(f)`` runs a
    blocking call off the reactor and returns a Deferred."""

    log = Logger()

    def __init__(self, hostname: str, recs: list[Record], addresses: Callable[[], list[str]],
                 zeroconf: Callable[[], object] | None = None,
                 in_thread: Callable | None = None):
        self.hostname = hostname
        self.records = recs
        self.addresses = addresses
        self.zeroconf = zeroconf
        self.in_thread = in_thread or threads.deferToThread
        self.instance = None
        self.announced: list[str] = []     # instance names as registered
        self._starting = None

    def startService(self):
        super().startService()
        if not self.records:
            return
        self._starting = self.in_thread(self._register)
        self._starting.addCallbacks(self._registered, self._failed)

    def _register(self) -> list[str]:
        """On a pool thread: build the zeroconf instance, register each record."""
        from zeroconf import ServiceInfo
        make = self.zeroconf
        if make is None:
            from zeroconf import IPVersion, Zeroconf

            def make():
                return Zeroconf(ip_version=IPVersion.All)
        addresses = self.addresses()
        if not addresses:
            raise OSError("no LAN address to announce")
        self.instance = zc = make()
        server = f"{host_label(self.hostname)}.local."
        names = []
        for record in self.records:
            info = ServiceInfo(record.kind, f"{record.instance}.{record.kind}",
                               port=record.port, properties=record.properties,
                               server=server, parsed_addresses=addresses)
            zc.register_service(info, allow_name_change=True)
            names.append(info.name)
        return names

    def _registered(self, names: list[str]) -> None:
        self._starting = None
        self.announced = names
        host = f"{host_label(self.hostname)}.local"
        web = next((r.port for r in self.records if r.kind == WEB_TYPE), None)
        self.log.info("mDNS: announced {names} as {host}{page}",
                      names=", ".join(n.split("._")[0] for n in names), host=host,
                      page=f"; the page is http://{host}:{web}/" if web else "")

    def _failed(self, failure) -> None:
        self._starting = None
        self.log.warn("mDNS: not announced ({why}); use --no-mdns to stop trying",
                      why=failure.getErrorMessage() or failure.type.__name__)
        self._close_quietly()

    def _close_quietly(self) -> None:
        zc, self.instance = self.instance, None
        if zc is not None:
            self.in_thread(zc.close).addErrback(lambda f: None)

    def stopService(self):
        super().stopService()
        if self._starting is not None:
            # Still probing: stop once that is over (zeroconf is not built
            # to be closed under a registration).
            d, self._starting = self._starting, None
            d.addBoth(lambda _: self._goodbye())
            return d
        return self._goodbye()

    def _goodbye(self):
        zc, self.instance = self.instance, None
        if zc is None:
            return None

        def bye():
            try:
                zc.unregister_all_services()
            finally:
                zc.close()
        d = self.in_thread(bye)
        d.addErrback(lambda f: self.log.warn("mDNS: goodbye failed: {why}",
                                             why=f.getErrorMessage()))
        return d


def browse(kind: str = CHAT_TYPE, wait: float = 1.0, zeroconf=None) -> list[tuple[str, dict]]:
    """Servers announcing ``kind`` on the LAN: ``[(address, info)]``, info as
    a HELLO reply gives it (``server``, ``version``, ``chat_port``).
    Blocks about ``wait`` seconds; [] where multicast does not work."""
    import time

    try:
        from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
    except ImportError:
        return []
    try:
        zc = zeroconf() if zeroconf is not None else Zeroconf(ip_version=IPVersion.All)
    except OSError:
        return []
    names: list[str] = []

    def seen(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added and name not in names:
            names.append(name)
    try:
        browser = ServiceBrowser(zc, kind, handlers=[seen])
        time.sleep(wait)
        browser.cancel()
        found = []
        for name in names[:64]:
            info = zc.get_service_info(kind, name, timeout=int(wait * 1000))
            if info is None or not info.port:
                continue
            addresses = sorted(info.parsed_addresses(),
                               key=lambda a: (":" in a, a))   # IPv4 first
            if not addresses:
                continue
            txt = {k.decode(errors="replace"): (v or b"").decode(errors="replace")
                   for k, v in (info.properties or {}).items() if isinstance(k, bytes)}
            found.append((addresses[0], {"server": name.split("._")[0][:MAX_LABEL],
                                         "version": txt.get("version", "?")[:32],
                                         "chat_port": info.port}))
        return found
    finally:
        zc.close()
