"""tekcos scan on a LAN built from network namespaces: a bridge and host
namespaces with known MACs and addresses.  Scans run only inside the
scanner's namespace.  Needs root (TEKCOS_REQUIRE_NETNS=1 turns a skip into a
failure)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import netlab  # noqa: F401 (annotations)
from tests.asuser import AsUser
from tests.twistd import REPO, serve_in

HOSTS = {  # ip -> mac: real OUIs (vendor lookup) and locally administered ones
    "10.79.0.1": "00:1b:c5:00:00:15",
    "10.79.0.2": "3c:22:fb:12:34:56",
    "10.79.0.3": "02:00:00:00:00:03",
    "10.79.0.17": "00:00:01:ab:cd:ef",
    "10.79.0.200": "da:a1:19:00:00:c8",
}
SCANNER_MAC = "02:aa:00:00:00:fa"


class LAN:
    def __init__(self, lab: netlab.Lab):
        self.lab = lab
        self.switch = lab.ns("sw")
        self.bridge = lab.bridge(self.switch)
        self.hosts = {}
        for ip, mac in HOSTS.items():
            self.add_host(ip, mac)
        self.scanner = lab.ns("scanner")
        self.dev = lab.attach(self.scanner, self.switch, self.bridge, "10.79.0.250/24",
                              mac=SCANNER_MAC)
        lab.exec(self.scanner, "ip", "route", "add", "default", "via", "10.79.0.1")

    def add_host(self, ip, mac):
        ns = self.lab.ns(f"h{len(self.hosts)}")
        self.lab.attach(ns, self.switch, self.bridge, f"{ip}/24", mac=mac)
        self.hosts[ns] = ip
        return ns

    def scan(self, *args, timeout=60):
        """``tekcos scan`` in the scanner's namespace, ARP only unless a test
        asks for IPv6 (the IPv6 side has its own lab: tests/scan/test_ipv6.py)."""
        if not any(a in ("--ipv6-only", "--ipv4-and-ipv6") for a in args):
            args = ("--ipv4-only", *args)
        cmd = ["ip", "netns", "exec", self.scanner, sys.executable, "-m", "tekcos.cli", "scan",
               *(a for a in args if a != "--ipv4-and-ipv6")]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture
def lan(lab):
    return LAN(lab)


def neighbors(result):
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return report, {n["ip"]: n for n in report["neighbors"]}


def test_finds_exactly_the_hosts_with_macs_vendors_and_flags(lan):
    report, found = neighbors(lan.scan("--json"))
    assert report["interface"] == lan.dev and report["network"] == "10.79.0.0/24"
    assert report["address"] == "10.79.0.250" and report["gateway"] == "10.79.0.1"
    assert {ip: n["mac"] for ip, n in found.items()} == HOSTS
    assert found["10.79.0.1"]["vendor"] == "Converging Systems Inc."
    assert found["10.79.0.2"]["vendor"] == "Apple, Inc."
    assert found["10.79.0.3"]["local_admin"] and not found["10.79.0.2"]["local_admin"]
    assert all(n["macs"] == [n["mac"]] and n["tekcos"] is None for n in found.values())
    assert all(0 <= n["rtt_ms"] < 100 for n in found.values())
    # (How fast a scan is belongs to bench/scan.py, not to a test.)
    assert report["elapsed_s"] > 0 and report["probes"] >= 253


def test_table_for_people(lan):
    result = lan.scan()
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IP", "MAC", "VENDOR", "RTT", "FLAGS"]
    assert any(l.startswith("10.79.0.2 ") and "Apple" in l for l in lines)
    assert lines[-1].startswith("5 hosts on 10.79.0.0/24 via")


def test_lossy_replies_are_recovered_by_reprobing(lan):
    lan.lab.drop_arp(lan.scanner, lan.dev, 40)
    # Five hosts send few replies: scan until some were really dropped (each
    # scan has a ~2% chance of losing none); every scan must find everyone.
    for _ in range(3):
        report, found = neighbors(lan.scan("--json", "--tries", "10"))
        assert set(found) == set(HOSTS)
        if lan.lab.dropped(lan.scanner)[0] > 0:
            break
    assert lan.lab.dropped(lan.scanner)[0] > 0


def test_address_conflict_reports_both_macs(lan):
    lan.add_host("10.79.0.2", "02:00:00:00:0b:ad")
    report, found = neighbors(lan.scan("--json", "--tries", "2"))
    assert sorted(found["10.79.0.2"]["macs"]) == ["02:00:00:00:0b:ad", "3c:22:fb:12:34:56"]
    assert found["10.79.0.2"]["conflict"]
    assert not found["10.79.0.1"]["conflict"]


def test_pcap_has_the_requests_and_replies(lan, tmp_path):
    pcap = tmp_path / "scan.pcap"
    neighbors(lan.scan("--json", "--tries", "1", "--pcap", str(pcap)))
    from scapy.layers.l2 import ARP
    from scapy.utils import rdpcap
    packets = rdpcap(str(pcap))
    requests = [p for p in packets if p[ARP].op == 1]
    replies = [p for p in packets if p[ARP].op == 2]
    assert len(requests) == 253 and {p[ARP].psrc for p in requests} == {"10.79.0.250"}
    assert {p[ARP].psrc for p in replies} == set(HOSTS)


def test_probe_finds_the_tekcos_server(lan, tmp_path):
    server_ns = next(ns for ns, ip in lan.hosts.items() if ip == "10.79.0.17")
    serve_in(lan.lab, server_ns, tmp_path / "dl")
    report, found = neighbors(lan.scan("--json", "--tries", "2", "--probe", "9000",
                                         "--wait", "5"))
    assert found["10.79.0.17"]["tekcos"] is True
    assert [ip for ip, n in found.items() if n["tekcos"]] == ["10.79.0.17"]


def test_interface_edge_cases(lan):
    lab, ns, dev = lan.lab, lan.scanner, lan.dev
    lab.exec(ns, "ip", "route", "del", "default")
    result = lan.scan()
    assert result.returncode == 1 and "no default IPv4 route: pass --iface" in result.stderr
    assert "Traceback" not in result.stderr
    # A default route with no gateway (as a VPN sets up): the only address's subnet.
    lab.exec(ns, "ip", "route", "add", "default", "dev", dev)
    report, found = neighbors(lan.scan("--json", "--tries", "1"))
    assert report["network"] == "10.79.0.0/24" and report["gateway"] is None
    # Several addresses, none holding the gateway: asks for a NETWORK.
    lab.exec(ns, "ip", "addr", "add", "10.80.0.5/24", "dev", dev)
    result = lan.scan()
    assert result.returncode == 1 and "several addresses" in result.stderr
    report, found = neighbors(lan.scan("10.79.0.0/24", "--json", "--tries", "1"))
    assert set(found) == set(HOSTS)
    # A /32 point-to-point address only.
    lab.exec(ns, "ip", "addr", "flush", "dev", dev)
    lab.exec(ns, "ip", "addr", "add", "10.79.0.250/32", "dev", dev)
    lab.exec(ns, "ip", "route", "add", "default", "dev", dev)
    result = lan.scan()
    assert result.returncode == 1 and "point-to-point" in result.stderr
    # Interface down.
    lab.exec(ns, "ip", "link", "set", dev, "down")
    result = lan.scan("--iface", dev)
    assert result.returncode == 1 and "is down" in result.stderr
    result = lan.scan("10.0.0.0/8", "--iface", "lo")
    assert result.returncode == 1 and "no Ethernet address" in result.stderr


def test_without_root_one_clear_line(lan):
    # As uid 65534 from a copy that user can read, whatever the checkout's mode.
    nobody = AsUser("65534", netns=lan.scanner)
    try:
        result = nobody.run("scan")
    finally:
        nobody.close()
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "needs raw sockets" in result.stderr and "setcap cap_net_raw" in result.stderr


def test_chat_without_a_host_finds_the_server_on_the_lan(lan, tmp_path):
    server_ns = next(ns for ns, ip in lan.hosts.items() if ip == "10.79.0.2")
    serve_in(lan.lab, server_ns, tmp_path / "dl")
    result = subprocess.run(["ip", "netns", "exec", lan.scanner, sys.executable, "-m",
                             "tekcos.cli", "chat", "--nick", "finder", "--wait", "5"],
                            input="/who\n",
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1. 10.79.0.2:9000")
    assert "*** lobby (1): finder" in result.stdout


def test_the_portable_scapy_socket_finds_the_same_hosts(lan):
    # What Windows uses (through Npcap); here scapy's Linux layer-2 socket.
    code = ("import json, sys; from tekcos.scan import engine, iface; "
            "sel = iface.select(iface.local_system()); "
            "r = engine.scan(sel, tries=2, open_socket=engine.ScapySocket); "
            "print(json.dumps({str(h.ip): h.macs for h in r.hosts}))")
    out = lan.lab.exec(lan.scanner, sys.executable, "-c", code)
    assert json.loads(out) == {ip: [mac] for ip, mac in HOSTS.items()}


def test_both_families_by_default_merge_by_mac_and_keep_every_arp_row(lan):
    """Without a family flag: the same IPv4 rows, IPv6 addresses on the rows
    of hosts whose link-local address is ready, and the switch's own ports
    (which have IPv6 here) as rows without an IPv4 address."""
    import time
    time.sleep(2.5)                     # the hosts' link-local addresses pass DAD
    report, found = neighbors(lan.scan("--json", "--ipv4-and-ipv6"))
    by_ip = {ip: n for ip, n in found.items() if ip is not None}
    assert {ip: n["mac"] for ip, n in by_ip.items()} == HOSTS
    for ip, n in by_ip.items():
        octets = bytes(int(x, 16) for x in n["mac"].split(":"))
        eui = bytes([octets[0] ^ 2]) + octets[1:3] + b"\xff\xfe" + octets[3:]
        expected = str(__import__("ipaddress").IPv6Address(b"\xfe\x80" + bytes(6) + eui))
        assert [a["address"] for a in n["ipv6"]] == [expected], ip
    assert all(n["ipv6"] for n in report["neighbors"] if n["ip"] is None)
    assert report["ipv6"]["problem"] is None
