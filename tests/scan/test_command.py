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
    base = dict(network=None, iface=None, tries=4, rate=1000.0, json=False, probe=None,
                pcap=None, watch=False, interval=30.0, force=False, wait=0.5)
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
