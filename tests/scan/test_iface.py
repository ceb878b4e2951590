"""Interface and network selection against described machines."""
# The machines here are described, not real: no packet is sent.
import socket

import pytest

from tekcos.scan import iface as ifaces
from tekcos.scan.iface import AF_LINK, ScanSetupError, System, select


def machine(gateways=None, addrs=None, up=("fake0",), macs=None):
    addrs = addrs if addrs is not None else {"fake0": [("10.1.2.34", "255.255.240.0")]}
    macs = macs or {name: "00:1b:c5:00:00:15" for name in addrs}

    def ifaddresses(name):
        return {socket.AF_INET: [{"addr": a, "netmask": m} for a, m in addrs.get(name, [])],
                AF_LINK: [{"addr": macs.get(name, "")}]}

    return System(lambda: gateways if gateways is not None else
                  {"default": {socket.AF_INET: ("10.1.0.1", "fake0")}},
                  ifaddresses, lambda: list(addrs), lambda name: name in up)


def test_default_route_subnet_from_address_and_netmask():
    sel = select(machine())
    assert (sel.iface, str(sel.ip), str(sel.network), sel.gateway) == \
        ("fake0", "10.1.2.34", "10.1.0.0/20", "10.1.0.1")
    assert len(sel.targets()) == 4094 - 1


def test_several_addresses_pick_the_one_with_the_gateway():
    m = machine(addrs={"fake0": [("192.168.9.5", "255.255.255.0"), ("10.1.2.34", "255.255.0.0")]})
    assert str(select(m).network) == "10.1.0.0/16"


@pytest.mark.parametrize("m, needle", [
    (machine(gateways={}), "no default IPv4 route: pass --iface"),
    (machine(up=()), "fake0 is down"),
    (machine(addrs={"fake0": []}), "no IPv4 address"),
    (machine(addrs={"fake0": [("10.9.9.9", "255.255.255.255")]},
             gateways={"default": {socket.AF_INET: ("0.0.0.0", "fake0")}}), "point-to-point"),
    (machine(addrs={"fake0": [("10.9.9.9", "255.255.255.0"), ("10.8.8.8", "255.255.255.0")]},
             gateways={"default": {socket.AF_INET: ("0.0.0.0", "fake0")}}),
     "several addresses"),
    (machine(macs={"fake0": ""}), "no Ethernet address"),
    (machine(addrs={"fake0": [("10.1.2.34", "255.0.0.0")]}), "need --force"),
])
def test_clear_outcomes(m, needle):
    with pytest.raises(ScanSetupError, match=needle):
        select(m)


def test_default_route_without_gateway_uses_the_only_address():
    m = machine(addrs={"tun0": [("10.66.0.2", "255.255.255.0")]}, up=("tun0",),
                gateways={"default": {socket.AF_INET: ("0.0.0.0", "tun0")}})
    sel = select(m)
    assert str(sel.network) == "10.66.0.0/24" and sel.gateway is None


def test_explicit_network_and_iface():
    m = machine()
    assert str(select(m, network="10.1.2.0/24").network) == "10.1.2.0/24"
    with pytest.raises(ScanSetupError, match="no address in 172.16.0.0/24"):
        select(m, network="172.16.0.0/24")
    with pytest.raises(ScanSetupError, match="bad NETWORK"):
        select(m, network="banana")
    with pytest.raises(ScanSetupError, match="no interface named 'wlan9'"):
        select(m, iface="wlan9")
    assert str(select(machine(addrs={"fake0": [("10.1.2.34", "255.0.0.0")]}),
                      force=True).network) == "10.0.0.0/8"


def test_network_alone_finds_its_interface_without_a_default_route():
    m = machine(gateways={}, addrs={"fake0": [("10.1.2.34", "255.255.255.0")],
                                    "fake1": [("172.20.0.9", "255.255.0.0")]},
                up=("fake0", "fake1"))
    sel = select(m, network="172.20.0.0/16")
    assert (sel.iface, str(sel.ip)) == ("fake1", "172.20.0.9")


def test_a_link_without_ipv4_is_selected_for_ipv6_and_refused_for_arp():
    no_ipv4 = machine(addrs={"fake0": []})
    sel = select(no_ipv4, ipv6=True)
    assert (sel.iface, sel.ip, sel.network, sel.mac) == ("fake0", None, None,
                                                          "00:1b:c5:00:00:15")
    assert sel.targets() == []
    with pytest.raises(ScanSetupError, match="no IPv4 address"):
        select(no_ipv4)
    # A machine with only an IPv6 default route: its interface.
    v6_only = machine(addrs={"fake0": []},
                      gateways={"default": {socket.AF_INET6: ("fe80::1", "fake0")}})
    assert select(v6_only, ipv6=True).iface == "fake0"
    with pytest.raises(ScanSetupError, match="no default IPv4 route"):
        select(v6_only)
    # A NETWORK asks for ARP: no IPv4 there is still an error.
    with pytest.raises(ScanSetupError, match="no IPv4 address"):
        select(no_ipv4, "fake0", "10.0.0.0/24", ipv6=True)
    # And an interface that has IPv4 is selected as ever.
    assert str(select(machine(), ipv6=True).network) == "10.1.0.0/20"


def _links(tmp_path, layout: dict) -> str:
    """A /sys/class/net described by ``layout``: name -> list of entries
    (``wireless``, ``phy80211``, or ``brif/PORT``)."""
    for name, entries in layout.items():
        (tmp_path / name).mkdir()
        for entry in entries:
            (tmp_path / name / entry).mkdir(parents=True)
    return str(tmp_path)


def test_the_probe_rate_is_gentler_on_wifi_and_where_the_link_is_unknown(tmp_path):
    net = _links(tmp_path, {"eth0": [], "wlan0": ["wireless"], "wlp2s0": ["phy80211"],
                            "br0": ["brif/eth0"], "br1": ["brif/eth0", "brif/wlan0"]})
    assert ifaces.probe_rate("eth0", net) == ifaces.WIRED_RATE == 4000
    assert ifaces.probe_rate("br0", net) == ifaces.WIRED_RATE
    for name in ("wlan0", "wlp2s0", "br1", "missing0"):
        assert ifaces.probe_rate(name, net) == ifaces.WIRELESS_RATE == 1000
