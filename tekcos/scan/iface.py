"""Choosing the interface, source address and network to scan.

Default: the interface carrying the default IPv4 route, and the subnet of
its address that contains the gateway (from address and netmask, not a
guessed /24).  Where IPv6 neighbours are looked for too, a link without
IPv4 (an interface without an IPv4 address, a machine with only an IPv6
default route) is a selection without ``ip`` and ``network``: the IPv6
look alone runs there.  Every situation that makes that impossible gets a
:class:`ScanSetupError` whose message says what to pass instead.  The system
is read through small injectable functions so that tests can describe any
machine; the defaults use netifaces and psutil.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable

AF_LINK = 17  # netifaces.AF_LINK on Linux
MAX_PREFIX_WITHOUT_FORCE = 16


class ScanSetupError(Exception):
    """A one-line explanation for the user."""


@dataclass(frozen=True)
class Selection:
    iface: str
    ip: ipaddress.IPv4Address | None      # None: a link without IPv4 (IPv6 only)
    mac: str
    network: ipaddress.IPv4Network | None
    gateway: str | None = None

    def targets(self) -> list[ipaddress.IPv4Address]:
        """Every address to probe: the network without ourselves (and without
        network/broadcast addresses for prefixes up to /30); none without IPv4."""
        if self.network is None:
            return []
        hosts = self.network.hosts() if self.network.prefixlen < 31 else self.network
        return [h for h in hosts if h != self.ip]


@dataclass
class System:
    """How to read the machine's interfaces (netifaces/psutil by default)."""
    gateways: Callable[[], dict]
    ifaddresses: Callable[[str], dict]
    interfaces: Callable[[], list]
    is_up: Callable[[str], bool]


def local_system() -> System:
    import netifaces
    import psutil

    def is_up(name: str) -> bool:
        stats = psutil.net_if_stats().get(name)
        return bool(stats and stats.isup)

    global AF_LINK
    AF_LINK = netifaces.AF_LINK

    def gateways() -> dict:
        found = netifaces.gateways()
        if not found.get("default", {}).get(socket.AF_INET):
            device = _default_device_without_gateway()
            if device:
                found.setdefault("default", {})[socket.AF_INET] = ("0.0.0.0", device)
        return found

    return System(gateways, netifaces.ifaddresses, netifaces.interfaces, is_up)


def _default_device_without_gateway(path: str = "/proc/net/route") -> str | None:
    """netifaces omits a default route that has no gateway (``ip route add
    default dev tun0``, as VPNs do); Linux lists it in /proc/net/route."""
    try:
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    return fields[0]
    except (OSError, StopIteration):
        pass
    return None


def friendly_name(iface: str, ip: str | None = None) -> str:
    """On Windows netifaces names interfaces by GUID; psutil knows the
    friendly name ("Ethernet", "Wi-Fi").  Match them on the IPv4 address."""
    if not iface.startswith("{") or ip is None:
        return iface
    try:
        import psutil
        for name, addrs in psutil.net_if_addrs().items():
            if any(a.family == socket.AF_INET and a.address == ip for a in addrs):
                return name
    except Exception:
        pass
    return iface


def _ipv4_interfaces(system: System, iface: str) -> list[ipaddress.IPv4Interface]:
    result = []
    for entry in system.ifaddresses(iface).get(socket.AF_INET, []):
        addr, mask = entry.get("addr"), entry.get("netmask")
        if addr and mask:
            result.append(ipaddress.IPv4Interface(f"{addr}/{mask}"))
    return result


def _iface_for(system: System, network: str) -> str | None:
    """The interface with an address inside ``network``, if exactly one has."""
    try:
        wanted = ipaddress.IPv4Network(network, strict=False)
    except ValueError:
        return None
    matches = [name for name in system.interfaces()
               if any(a.ip in wanted for a in _ipv4_interfaces(system, name))]
    return matches[0] if len(matches) == 1 else None


def parse_network(text: str) -> ipaddress.IPv4Network:
    """``192.168.1.0/24`` (host bits allowed); raises ScanSetupError."""
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise ScanSetupError(f"bad NETWORK {text!r}: write it as 192.168.1.0/24") from None


def select(system: System, iface: str | None = None, network: str | None = None,
           force: bool = False, ipv6: bool = False) -> Selection:
    """Interface, source address and network to scan.

    ``iface`` and ``network`` are what the user passed (or None); without them
    the default route's interface and the subnet containing its gateway are
    used.  ``ipv6``: IPv6 neighbours are looked for too, so a link without
    IPv4 is a selection (without ``ip`` and ``network``) rather than an
    error.  Raises ScanSetupError with one sentence saying what to pass.
    """
    wanted = parse_network(network) if network is not None else None
    iface, gateway = _choose_iface(system, iface, wanted, ipv6 and wanted is None)
    addresses, mac = _check_iface(system, iface, ipv6 and wanted is None)
    if not addresses:
        return Selection(iface=iface, ip=None, mac=mac.lower(), network=None)
    if wanted is not None:
        chosen, net = _address_in(iface, addresses, wanted), wanted
    else:
        chosen, gateway = _address_for_route(iface, addresses, gateway)
        net = chosen.network
    if net.prefixlen < MAX_PREFIX_WITHOUT_FORCE and not force:
        raise ScanSetupError(f"{net} has {net.num_addresses} addresses; networks larger than "
                             f"/{MAX_PREFIX_WITHOUT_FORCE} need --force")
    return Selection(iface=iface, ip=chosen.ip, mac=mac.lower(), network=net,
                     gateway=gateway)


def _choose_iface(system: System, iface: str | None, wanted: ipaddress.IPv4Network | None,
                  ipv6: bool = False) -> tuple[str, str | None]:
    """(interface, default gateway or None); with ``ipv6``, the IPv6 default
    route's interface where there is no IPv4 one."""
    if iface is None and wanted is not None:
        iface = _iface_for(system, str(wanted))
    if iface is not None:
        return iface, None
    defaults = system.gateways().get("default", {})
    default = defaults.get(socket.AF_INET)
    if not default and ipv6 and defaults.get(socket.AF_INET6):
        return defaults[socket.AF_INET6][1], None
    if not default:
        raise ScanSetupError("no default IPv4 route: pass --iface IF and a NETWORK "
                             "(for example: tekcos scan 192.168.1.0/24 --iface wlan0)")
    return default[1], default[0]


def _check_iface(system: System, iface: str,
                 ipv6: bool = False) -> tuple[list[ipaddress.IPv4Interface], str]:
    """The interface's IPv4 addresses and MAC, once it is known to be usable
    (with ``ipv6``, also when it has no IPv4 address: then none)."""
    if iface not in system.interfaces():
        raise ScanSetupError(f"no interface named {iface!r}; interfaces: "
                             + ", ".join(sorted(system.interfaces())))
    shown = friendly_name(iface)
    if not system.is_up(iface):
        raise ScanSetupError(f"interface {shown} is down: bring it up or pass another --iface")
    addresses = _ipv4_interfaces(system, iface)
    if not addresses and not ipv6:
        raise ScanSetupError(f"interface {shown} has no IPv4 address: pass another --iface")
    links = system.ifaddresses(iface).get(AF_LINK, [])
    mac = (links[0].get("addr") if links else "") or ""
    if len(mac.split(":")) != 6 or mac == "00:00:00:00:00:00":
        raise ScanSetupError(f"interface {shown} has no Ethernet address (a tunnel or VPN?): "
                             "ARP works only on Ethernet and Wi-Fi; pass another --iface")
    return addresses, mac


def _address_in(iface: str, addresses: list, wanted: ipaddress.IPv4Network):
    """Our address inside the network the user asked for."""
    inside = [a for a in addresses if a.ip in wanted]
    if not inside:
        have = ", ".join(str(a) for a in addresses)
        raise ScanSetupError(f"{friendly_name(iface)} has no address in {wanted} (it has "
                             f"{have}): ARP reaches only the local link; pass the --iface on "
                             "that network")
    return inside[0]


def _address_for_route(iface: str, addresses: list, gateway: str | None):
    """(our address on the subnet holding the gateway, the gateway or None)."""
    shown = friendly_name(iface)
    gw = None
    if gateway is not None and gateway != "0.0.0.0":
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            pass
    containing = [a for a in addresses if gw is not None and gw in a.network]
    if containing:
        chosen = containing[0]
    elif len(addresses) == 1:
        chosen = addresses[0]
        if gw is None:
            gateway = None  # a route with no gateway (VPN, point-to-point)
    else:
        have = ", ".join(str(a) for a in addresses)
        raise ScanSetupError(f"{shown} has several addresses ({have}) and none contains the "
                             "gateway: pass the NETWORK to scan")
    if chosen.network.prefixlen >= 31:
        raise ScanSetupError(f"{shown} has a point-to-point address ({chosen}): there is "
                             "no subnet to scan; pass a NETWORK")
    return chosen, gateway


# Probes per second by the kind of link.  Wired Ethernet carries 4,000
# ARP broadcasts a second (2.7 Mbit/s with framing) without anyone on it
# noticing.  On Wi-Fi every broadcast is sent again by the access point at
# the slow basic rate, which all stations share: 1,000 a second is already
# a fifth of the air at 6 Mbit/s.
WIRED_RATE = 4000
WIRELESS_RATE = 1000


def probe_rate(iface: str, sys_net: str = "/sys/class/net") -> int:
    """The ARP scan's rate on ``iface``: :data:`WIRED_RATE`, or
    :data:`WIRELESS_RATE` on a Wi-Fi interface, a bridge with a Wi-Fi port,
    and wherever the kind of link cannot be read (not Linux)."""
    import os
    base = os.path.join(sys_net, iface)
    if not os.path.isdir(base):
        return WIRELESS_RATE

    def wireless(path: str) -> bool:
        return any(os.path.exists(os.path.join(path, name)) for name in ("wireless", "phy80211"))
    if wireless(base):
        return WIRELESS_RATE
    ports = os.path.join(base, "brif")
    if os.path.isdir(ports) and any(wireless(os.path.join(sys_net, port))
                                    for port in os.listdir(ports)):
        return WIRELESS_RATE
    return WIRED_RATE
