"""When the IPv6 look ends, with a fake link and clock; and IPv6 neighbours
on a LAN of network namespaces (a bridge, hosts with known MACs and
addresses): link-local only, an EUI-64 global address, an opaque
(stable-privacy or temporary) one, a host that ignores echo but answers
MLD, one that answers nothing on IPv6, and 15% of the replies lost.
Frames go only between the lab's namespaces.  Those tests need root."""
from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys

import pytest
from twisted.internet.task import Clock

from tekcos.scan import ipv6, ndp
from tests.scan.test_ndp import frame as icmpv6_frame
from tests.twistd import REPO

SCANNER_MAC = "02:aa:00:00:00:fa"
HOSTS = {    # name: (IPv4, MAC, extra IPv6 addresses, what it does)
    "ll": ("10.81.0.1", "3c:22:fb:12:34:56", [], "link-local only"),
    "eui": ("10.81.0.2", "00:1b:c5:00:00:15", ["2001:db8:81::21b:c5ff:fe00:15"], "EUI-64"),
    "opaque": ("10.81.0.3", "02:00:00:00:00:03", ["2001:db8:81::9f1:77a0:1c2e:5b1d"],
               "an opaque global address"),
    "mld": ("10.81.0.4", "00:00:01:ab:cd:ef", [], "ignores echo"),
    "silent": ("10.81.0.5", "da:a1:19:00:00:c8", [], "answers nothing on IPv6"),
}


class FakeLink6:
    """A raw socket on a link where ``answers`` ((seconds, frame)) arrive."""

    def __init__(self, clock, answers):
        self.clock = clock
        self.inbox = sorted(answers, key=lambda a: a[0])
        self.sent = []

    def send(self, data):
        self.sent.append(round(self.clock.seconds(), 3))

    def recv(self, size):
        if self.inbox and self.inbox[0][0] <= self.clock.seconds():
            return self.inbox.pop(0)[1]
        raise BlockingIOError

    def close(self):
        pass

    def select(self, r, w, x, timeout):
        """select() on the fake clock: time moves to the next answer or the timeout."""
        now = self.clock.seconds()
        until = min([t for t, _ in self.inbox if t > now] + [now + timeout])
        self.clock.advance(max(0.0, until - now))
        return ([self] if self.inbox and self.inbox[0][0] <= self.clock.seconds() else [], [], [])


def echo_reply(n: int) -> bytes:
    """An echo reply from the n-th host (a MAC and link-local address of its own)."""
    return icmpv6_frame(f"fe80::1:{n:x}", "fe80::fa", bytes([129, 0, 0, 0]) + b"\0\1\0\0",
                 src_mac=bytes.fromhex(f"3c22fb00{n:04x}"))


def look(answers, clock=None, **options):
    clock = clock or Clock()
    link = FakeLink6(clock, answers)
    result = ipv6.scan6("fake0", "02:aa:00:00:00:fa", open_socket=lambda iface: link,
                        ifaddresses=lambda iface: {socket.AF_INET6: [{"addr": "fe80::fa%fake0"}]},
                        clock=clock.seconds, cache=lambda iface: [], select=link.select,
                        quiet=0.05, **options)
    return result, link


def test_the_look_ends_a_quiet_spell_after_the_last_rounds_answers_are_due():
    result, link = look([(0.001, echo_reply(1)), (0.101, echo_reply(2))])
    assert link.sent == [0.0, 0.0, 0.1, 0.1, 0.2, 0.2]        # an echo and a query a round
    assert len(result.neighbours.by_mac) == 2
    assert result.elapsed == pytest.approx(0.2 + ipv6.MLD_DELAY_MS / 1000 + 0.05)


def test_a_straggler_keeps_the_look_open_for_another_quiet_spell():
    result, _ = look([(0.001, echo_reply(1)), (0.33, echo_reply(2)), (0.37, echo_reply(3)),
                      (0.43, echo_reply(4))])
    # 4 came 60 ms after 3: more than the 50 ms of quiet that ended the look.
    assert sorted(result.neighbours.by_mac) == ["3c:22:fb:00:00:01", "3c:22:fb:00:00:02",
                                                "3c:22:fb:00:00:03"]
    assert result.elapsed == pytest.approx(0.42)


def test_the_look_listens_while_the_scan_beside_it_runs_and_not_past_its_limit():
    clock = Clock()
    result, _ = look([(0.8, echo_reply(1))], clock, keep_open=lambda: clock.seconds() < 0.9)
    assert len(result.neighbours.by_mac) == 1
    assert 0.9 <= result.elapsed <= 0.9 + 0.011
    # A stream of new MACs (a hostile host) cannot keep it open for ever.
    result, _ = look([(0.01 * i, echo_reply(i)) for i in range(1, 500)])
    assert result.elapsed == pytest.approx(ipv6.LIMIT, abs=0.02)


def link_local(mac: str) -> str:
    octets = bytes(int(p, 16) for p in mac.split(":"))
    iid = bytes([octets[0] ^ 2]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


class LAN6:
    def __init__(self, lab):
        self.lab = lab
        self.switch = lab.ns("sw")
        # The switch itself has no IPv6 (a bridge with an address answers too).
        lab.exec(self.switch, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1")
        self.bridge = lab.bridge(self.switch)
        self.hosts = {}
        for name, (ip, mac, extra, _) in HOSTS.items():
            ns = self._ns(f"h{name}")
            self.hosts[name] = ns
            lab.attach(ns, self.switch, self.bridge, [f"{ip}/24"], mac=mac)
            for address in extra:
                lab.exec(ns, "ip", "-6", "addr", "add", f"{address}/64", "dev", "eth1", "nodad")
        lab.exec(self.hosts["mld"], "sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=1",
                 "net.ipv6.icmp.echo_ignore_multicast=1")
        lab.exec(self.hosts["silent"], "nft", "-f", "-", input="""
table ip6 tekcos_silent {
    chain out { type filter hook output priority 0; policy drop; }
}
""")
        self.scanner = self._ns("scanner")
        lab.attach(self.scanner, self.switch, self.bridge, ["10.81.0.250/24"], mac=SCANNER_MAC)
        lab.exec(self.scanner, "ip", "-6", "addr", "add", "2001:db8:81::fa/64", "dev", "eth1",
                 "nodad")
        lab.exec(self.scanner, "ip", "route", "add", "default", "via", "10.81.0.1")

    def _ns(self, name):
        ns = self.lab.ns(name)
        # No duplicate-address wait: addresses are usable at once.
        self.lab.exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                      "net.ipv6.conf.default.accept_dad=0")
        return ns

    def lose_replies(self, percent: float) -> None:
        """Drop ``percent`` % of the echo replies and MLD reports the hosts
        send, on their bridge ports (before any capture sees them)."""
        threshold = int(round(percent * 100))
        for name, ns in self.hosts.items():
            dev = self.lab.ports[ns]
            self.lab.exec(self.switch, "nft", "-f", "-", input=f"""
table netdev tekcos_loss_{name} {{
    chain ingress {{
        type filter hook ingress device "{dev}" priority 0; policy accept;
        meta l4proto ipv6-icmp icmpv6 type {{ echo-reply, mld2-listener-report }} \
numgen random mod 10000 < {threshold} counter drop
    }}
}}
""")

    def scan(self, *args):
        cmd = ["ip", "netns", "exec", self.scanner, sys.executable, "-m", "tekcos.cli", "scan",
               "--json", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        return report, {n["mac"]: n for n in report["neighbors"]}


@pytest.fixture
def lan6(lab):
    return LAN6(lab)


def addresses(row) -> dict:
    """{address as typed here: (scope, kind)} (the report writes RFC 5952's form)."""
    return {ipaddress.IPv6Address(a["address"]): (a["scope"], a["kind"]) for a in row["ipv6"]}


def v6(text: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(text)


def test_ipv6_neighbours_merge_with_their_ipv4_rows_by_mac(lan6):
    report, rows = lan6.scan()
    assert report["ipv6"]["problem"] is None and report["ipv6"]["not_kept"] == 0
    assert {mac: row["ip"] for mac, row in rows.items()} == \
        {mac: ip for ip, mac, _, _ in HOSTS.values()}
    ll, eui, opaque, mld, silent = (rows[HOSTS[n][1]] for n in HOSTS)
    assert addresses(ll) == {v6(link_local(HOSTS["ll"][1])): ("link-local", "eui64")}
    assert addresses(eui) == {v6(link_local(HOSTS["eui"][1])): ("link-local", "eui64"),
                              v6("2001:db8:81::21b:c5ff:fe00:15"): ("global", "eui64")}
    assert addresses(opaque)[v6("2001:db8:81::9f1:77a0:1c2e:5b1d")] == ("global", "opaque")
    assert v6(link_local(HOSTS["mld"][1])) in addresses(mld)    # by its MLD report
    assert {a["seen"] for a in mld["ipv6"]} <= {"mld", "ns", "na", "cache"}
    assert silent["ipv6"] == []
    # The same, IPv6 only: no ARP, the rows known by MAC.
    report, rows = lan6.scan("--ipv6-only")
    assert report["probes"] == 0 and all(row["ip"] is None for row in rows.values())
    assert set(rows) == {HOSTS[n][1] for n in ("ll", "eui", "opaque", "mld")}


def test_full_recall_of_hosts_answering_echo_with_15_percent_of_replies_lost(lan6):
    lan6.lose_replies(15)
    for _ in range(3):
        _, rows = lan6.scan("--ipv6-only")
        for name in ("ll", "eui", "opaque"):
            assert v6(link_local(HOSTS[name][1])) in addresses(rows[HOSTS[name][1]]), name
        assert v6("2001:db8:81::21b:c5ff:fe00:15") in addresses(rows[HOSTS["eui"][1]])


def test_frames_are_well_formed_for_wireshark(lan6, tmp_path):
    """The echo and the MLD query as scapy reads them from --pcap."""
    pcap = tmp_path / "scan.pcap"
    lan6.scan("--ipv6-only", "--pcap", str(pcap))
    from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6MLQuery2, IPv6
    from scapy.utils import rdpcap
    frames = rdpcap(str(pcap))
    echoes = [f for f in frames if f.haslayer(ICMPv6EchoRequest)]
    queries = [f for f in frames if f.haslayer(ICMPv6MLQuery2)]
    assert len(echoes) == 3 and len(queries) == 3
    # scapy computes each checksum again: ours must be the same.
    for frame, layer in [(f, ICMPv6EchoRequest) for f in echoes] + \
            [(f, ICMPv6MLQuery2) for f in queries]:
        ours = frame[layer].cksum
        again = IPv6(bytes(frame[IPv6]))
        del again[layer].cksum
        assert IPv6(bytes(again))[layer].cksum == ours
    assert all(f[IPv6].dst == "ff02::1" for f in echoes + queries)
    assert queries[0][IPv6].hlim == 1 and queries[0][IPv6].src.startswith("fe80::")
    # Replies came back in the capture too.
    assert any(ndp.parse(bytes(f), bytes.fromhex(SCANNER_MAC.replace(":", ""))) for f in frames)


def test_a_link_without_ipv4_is_scanned_for_its_ipv6_neighbours(lan6):
    lab, ns = lan6.lab, lan6.scanner
    lab.exec(ns, "ip", "route", "del", "default")
    lab.exec(ns, "ip", "-4", "addr", "flush", "dev", "eth1")
    report, rows = lan6.scan("--iface", "eth1")
    assert (report["address"], report["network"], report["probes"]) == (None, None, 0)
    assert set(rows) == {HOSTS[n][1] for n in ("ll", "eui", "opaque", "mld")}
    assert all(row["ip"] is None for row in rows.values())
    # With an IPv6 default route only, that route's interface by default.
    lab.exec(ns, "ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth1")
    report, rows = lan6.scan()
    assert v6("2001:db8:81::21b:c5ff:fe00:15") in addresses(rows[HOSTS["eui"][1]])
    # ARP alone has nothing to do there: one line, exit 1.
    result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "tekcos.cli",
                             "scan", "--ipv4-only"], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 1 and "no default IPv4 route" in result.stderr
    assert "Traceback" not in result.stderr
