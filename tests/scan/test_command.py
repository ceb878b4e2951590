"""tekcos scan's output and --watch, with the machine and the scan injected."""
import argparse
import io
import ipaddress
import json
import socket

import pytest

from tekcos.scan import iface as ifaces
from tekcos.scan.arp import Host
from tekcos.scan.command import run
from tekcos.scan.engine import ScanPermissionError, ScanResult


def args(**kw):
    """tekcos scan's options; IPv4 only unless a test asks for IPv6 (with
    its own ``scan6``: nothing here may send on a real interface)."""
    base = dict(network=None, iface=None, tries=4, rate=1000.0, json=False, probe=None,
                pcap=None, watch=False, interval=30.0, force=False, wait=0.5,
                ipv4_only=True, ipv6_only=False)
    base.update(kw)
    return argparse.Namespace(**base)


class Machine:
    def __init__(self):
        self.addr = ("10.5.0.9", "255.255.255.0", "10.5.0.1")

    def system(self):
        # Read self.addr on every call: the machine may move between scans.
        return ifaces.System(
            lambda: {"default": {socket.AF_INET: (self.addr[2], "fake0")}},
            lambda name: {socket.AF_INET: [{"addr": self.addr[0], "netmask": self.addr[1]}],
                          ifaces.AF_LINK: [{"addr": "02:aa:00:00:00:01"}]},
            lambda: ["fake0"], lambda name: True)


def fake_scans(*rounds):
    """Each call returns the next round's {ip: mac}; after the last, Ctrl-C."""
    calls = iter(rounds)

    def scan(selection, **kw):
        try:
            hosts = next(calls)
        except StopIteration:
            raise KeyboardInterrupt
        return ScanResult(selection, [Host(ipaddress.IPv4Address(ip), [mac], 0.0005)
                                      for ip, mac in hosts.items()], 1.0, 300)
    return scan


def test_table_and_json():
    m = Machine()
    out = io.StringIO()
    scan = fake_scans({"10.5.0.1": "3c:22:fb:00:00:01"})
    assert run(args(), out=out, system=m.system(), scan=scan, check=lambda: None) == 0
    lines = out.getvalue().splitlines()
    assert "Apple" in lines[1] and lines[1].startswith("10.5.0.1 ")
    assert lines[-1] == "1 hosts on 10.5.0.0/24 via fake0 (10.5.0.9) in 1.00 s, 300 probes"
    out = io.StringIO()
    run(args(json=True), out=out, system=m.system(), scan=fake_scans({"10.5.0.1": "02:00:00:00:00:01"}),
        check=lambda: None)
    report = json.loads(out.getvalue())
    assert report["neighbors"][0] == {"ip": "10.5.0.1", "mac": "02:00:00:00:00:01",
                                      "macs": ["02:00:00:00:00:01"], "vendor": None,
                                      "local_admin": True, "rtt_ms": 0.5, "conflict": False,
                                      "tekcos": None}


def test_watch_prints_arrivals_departures_and_moves():
    m = Machine()
    out = io.StringIO()
    rounds = [{"10.5.0.1": "02:00:00:00:00:01", "10.5.0.2": "02:00:00:00:00:02"},
              {"10.5.0.1": "02:00:00:00:00:01", "10.5.0.3": "02:00:00:00:00:03"}]
    scans = fake_scans(*rounds, {"192.168.4.1": "02:00:00:00:00:44"})
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            m.addr = ("192.168.4.20", "255.255.255.0", "192.168.4.1")   # we moved

    with pytest.raises(KeyboardInterrupt):
        run(args(watch=True, interval=5), out=out, system=m.system(), scan=scans,
            check=lambda: None, sleep=sleep)
    text = out.getvalue()
    assert sleeps == [5, 5, 5]
    assert "+ 10.5.0.3 02:00:00:00:00:03" in text and "- 10.5.0.2 02:00:00:00:00:02" in text
    assert "* this host moved: 10.5.0.9 on 10.5.0.0/24 -> 192.168.4.20 on 192.168.4.0/24" in text
    assert "+ 192.168.4.1 02:00:00:00:00:44" in text


def test_permission_and_setup_errors_are_one_line():
    err = io.StringIO()

    def no():
        raise ScanPermissionError("ARP scanning needs raw sockets: run as root")
    assert run(args(), err=err, check=no) == 1
    assert err.getvalue() == "tekcos scan: ARP scanning needs raw sockets: run as root\n"
    err = io.StringIO()
    m = Machine()
    # A NETWORK that is not one is a usage error (2), before any permission check.
    assert run(args(network="banana"), err=err, system=m.system(), check=no) == 2
    assert err.getvalue() == ("tekcos scan: bad NETWORK 'banana': write it as "
                              "192.168.1.0/24\n")
    assert run(args(tries=0), err=io.StringIO()) == 2


def test_windows_guid_names_map_to_friendly_names(monkeypatch):
    from collections import namedtuple

    import psutil
    Addr = namedtuple("Addr", "family address netmask broadcast ptp")
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        "Wi-Fi": [Addr(socket.AF_INET, "10.5.0.9", "255.255.255.0", None, None)],
        "Ethernet": [Addr(socket.AF_INET, "10.6.0.2", "255.255.255.0", None, None)]})
    assert ifaces.friendly_name("{4D36E972-E325-11CE-BFC1-08002BE10318}", "10.5.0.9") == "Wi-Fi"
    assert ifaces.friendly_name("fake0", "10.5.0.9") == "fake0"


def fake_scan6(by_mac: dict, problem: str = ""):
    """scan6 answering with ``by_mac`` ({mac: [(address, seconds, why)]})."""
    from tekcos.scan import ndp
    from tekcos.scan.ipv6 import Result6

    def scan6(iface, mac, keep_frames=False, keep_open=None):
        assert iface == "fake0" and mac == "02:aa:00:00:00:01"
        found = ndp.Neighbours6(started=100.0)
        for neighbour, entries in by_mac.items():
            for address, seconds, why in entries:
                found.heard(ndp.Heard(ipaddress.IPv6Address(address), neighbour, why),
                            100.0 + seconds)
        return Result6(found, 0.6, 4, problem=problem)
    return scan6


def test_ipv6_neighbours_merge_by_mac_and_ipv6_only_devices_get_a_row():
    m = Machine()
    phone = "3c:22:fb:00:00:01"
    scan6 = fake_scan6({
        phone: [("fe80::3e22:fbff:fe00:1", 0.002, "echo"), ("2001:db8::3e22:fbff:fe00:1",
                                                             0.003, "echo"),
                ("2001:db8::9f1:77a0:1c2e:5b1d", 0.004, "echo")],
        "00:1b:c5:00:00:15": [("fe80::21b:c5ff:fe00:15", 0.2, "mld")]})
    out = io.StringIO()
    assert run(args(json=True, ipv4_only=False), out=out, system=m.system(),
               scan=fake_scans({"10.5.0.1": phone}), check=lambda: None, scan6=scan6) == 0
    report = json.loads(out.getvalue())
    rows = {n["ip"]: n for n in report["neighbors"]}
    assert [(a["address"], a["scope"], a["kind"]) for a in rows["10.5.0.1"]["ipv6"]] == [
        ("fe80::3e22:fbff:fe00:1", "link-local", "eui64"),
        ("2001:db8::9f1:77a0:1c2e:5b1d", "global", "opaque"),
        ("2001:db8::3e22:fbff:fe00:1", "global", "eui64")]
    v6_only = rows[None]
    assert v6_only["mac"] == "00:1b:c5:00:00:15" and v6_only["vendor"] == "Converging Systems Inc."
    assert v6_only["ipv6"][0]["seen"] == "mld" and v6_only["rtt_ms"] == 200.0
    assert report["ipv6"] == {"probes": 4, "problem": None, "not_kept": 0}
    out = io.StringIO()
    run(args(ipv4_only=False), out=out, system=m.system(),
        scan=fake_scans({"10.5.0.1": phone}), check=lambda: None, scan6=scan6)
    lines = out.getvalue().splitlines()
    assert lines[2] == "  fe80::3e22:fbff:fe00:1 (link-local, eui64)"
    assert lines[5].startswith("-               00:1b:c5:00:00:15")
    assert lines[-1].endswith("; 2 with IPv6")


def test_ipv6_only_skips_arp_and_a_link_without_ipv6_is_said_in_one_line():
    m = Machine()
    out = io.StringIO()

    def no_arp(selection, **kw):
        raise AssertionError("no ARP scan with --ipv6-only")
    assert run(args(ipv4_only=False, ipv6_only=True), out=out, system=m.system(), scan=no_arp,
               check=lambda: None, scan6=fake_scan6({}, "no IPv6 on fake0 (no link-local "
                                                        "address)")) == 0
    assert out.getvalue().splitlines()[-1].endswith(
        "; IPv6: no IPv6 on fake0 (no link-local address)")


def test_one_mac_answering_for_a_whole_prefix_is_bounded_and_counted():
    m = Machine()
    hostile = "02:66:66:66:66:66"
    scan6 = fake_scan6({hostile: [(f"2001:db8::{i:x}", 0.001, "na") for i in range(1, 5001)]})
    out = io.StringIO()
    run(args(json=True, ipv4_only=False), out=out, system=m.system(), scan=fake_scans({}),
        check=lambda: None, scan6=scan6)
    report = json.loads(out.getvalue())
    assert len(report["neighbors"][0]["ipv6"]) == 16
    assert report["ipv6"]["not_kept"] == 5000 - 16


def test_a_link_without_ipv4_is_scanned_for_ipv6_neighbours_alone():
    system = ifaces.System(
        lambda: {"default": {socket.AF_INET6: ("fe80::1", "fake0")}},
        lambda name: {ifaces.AF_LINK: [{"addr": "02:aa:00:00:00:01"}]},
        lambda: ["fake0"], lambda name: True)

    def no_arp(selection, **kw):
        raise AssertionError("no ARP scan without IPv4")
    scan6 = fake_scan6({"3c:22:fb:00:00:01": [("fe80::3e22:fbff:fe00:1", 0.002, "echo")]})
    out = io.StringIO()
    assert run(args(json=True, ipv4_only=False), out=out, system=system, scan=no_arp,
               check=lambda: None, scan6=scan6) == 0
    report = json.loads(out.getvalue())
    assert (report["address"], report["network"], report["probes"]) == (None, None, 0)
    assert [(n["ip"], n["mac"]) for n in report["neighbors"]] == [(None, "3c:22:fb:00:00:01")]
    out = io.StringIO()
    run(args(ipv4_only=False), out=out, system=system, scan=no_arp, check=lambda: None,
        scan6=scan6)
    assert out.getvalue().splitlines()[-1].startswith(
        "1 hosts on fake0 (no IPv4 address there: IPv6 only) in ")
    # ARP alone cannot run there: one line, as before.
    err = io.StringIO()
    assert run(args(), out=io.StringIO(), err=err, system=system, scan=no_arp,
               check=lambda: None) == 1
    assert "no default IPv4 route" in err.getvalue()
