"""/oper, /scan, /neighbors and the address watch, in memory: the scanner is
injected (a Deferred we fire), time is a task.Clock."""
import ipaddress

from twisted.internet import defer

from tekcos.scan.arp import Host
from tekcos.scan.engine import ScanPermissionError, ScanResult
from tekcos.scan.iface import ScanSetupError, Selection
from tekcos.scan.service import Neighbourhood
from tests.memory import Server, matching

SEL = Selection("eth1", ipaddress.IPv4Address("10.79.0.250"), "02:aa:00:00:00:fa",
                ipaddress.IPv4Network("10.79.0.0/24"), "10.79.0.1")


class FakeScanner:
    def __init__(self):
        self.calls = []

    def scan(self, selection):
        d = defer.Deferred()
        self.calls.append((selection, d))
        return d


def result():
    hosts = [Host(ipaddress.IPv4Address("10.79.0.1"), ["3c:22:fb:12:34:56"], 0.0004),
             Host(ipaddress.IPv4Address("10.79.0.2"), ["02:00:00:00:00:02", "02:00:00:00:00:99"],
                  0.0005)]
    return ScanResult(SEL, hosts, 1.02, 900)


def setup(access="operators", password="sesame", select=lambda: SEL):
    server = Server()
    scanner = FakeScanner()
    hood = Neighbourhood(scanner, server.clock.seconds, select, access=access,
                         cooldown=60, announce=server.hub.announce)
    server.hub.neighbourhood = hood
    server.hub.oper_password = password
    return server, scanner, hood


def test_operators_only_by_default_and_oper_with_the_password():
    server, scanner, hood = setup()
    a = server.user("alice")
    a.type("/scan\n")
    assert "only operators may /scan" in a.lines()[0]
    a.type("/oper wrong\n")
    assert a.lines() == ["*** Error: wrong password."]
    a.type("/oper sesame\n")
    assert a.lines() == ["*** You are now an operator."]
    a.type("/scan\n")
    assert a.lines() == ["*** Scanning 10.79.0.0/24 on eth1..."]
    assert len(scanner.calls) == 1


def test_result_goes_to_the_asker_one_at_a_time_with_cooldown():
    server, scanner, hood = setup(access="everyone")
    a, b = server.user("alice"), server.user("bob")
    a.read()
    a.type("/scan\n")
    b.type("/scan\n")
    assert "already running" in b.lines()[-1]
    scanner.calls[0][1].callback(result())
    lines = a.lines()
    assert lines[1].startswith("*** IP") and "Apple" in lines[2]
    assert "CONFLICT: 02:00:00:00:00:02 02:00:00:00:00:99" in lines[3]
    assert lines[-1].startswith("*** 2 hosts on 10.79.0.0/24 via eth1")
    assert matching(b.lines(), "hosts on") == []          # only the asker
    b.type("/scan\n")
    assert "try again in 60 s" in b.lines()[-1]
    b.type("/neighbors\n")
    assert b.lines()[-1].startswith("*** 2 hosts on 10.79.0.0/24")
    server.clock.advance(61)
    b.type("/scan\n")
    assert len(scanner.calls) == 2


def test_nobody_and_failures_and_no_scan_yet():
    server, scanner, hood = setup(access="nobody")
    a = server.user("alice")
    a.type("/neighbors\n")
    assert "No scan yet" in a.lines()[0]
    a.type("/scan\n")
    assert "turned off" in a.lines()[0]
    server, scanner, hood = setup(access="everyone")
    a = server.user("alice")
    a.type("/scan\n")
    a.read()
    scanner.calls[0][1].errback(ScanPermissionError("no"))
    assert "needs CAP_NET_RAW (run it with conf/tekcos-netraw.service)" in a.lines()[0]
    assert not hood.running

    def broken():
        raise ScanSetupError("no default IPv4 route: pass --iface")
    server, scanner, hood = setup(access="everyone", select=broken)
    a = server.user("alice")
    server.clock.advance(100)
    a.type("/scan\n")
    assert "cannot scan: no default IPv4 route" in a.lines()[0]


def test_address_change_is_announced_in_lobby_and_rescanned():
    current = [SEL]
    server, scanner, hood = setup(access="everyone", select=lambda: current[0])
    a = server.user("alice")
    hood.check_address()           # first look: only recorded
    hood.check_address()
    assert a.lines() == [] and scanner.calls == []
    current[0] = Selection("wlan0", ipaddress.IPv4Address("192.168.7.20"), "02:aa:00:00:00:fb",
                           ipaddress.IPv4Network("192.168.7.0/24"), "192.168.7.1")
    hood.check_address()
    line = a.lines()[0]
    assert line.endswith("-- this server moved: 10.79.0.250 on 10.79.0.0/24 -> "
                         "192.168.7.20 on 192.168.7.0/24")
    assert len(scanner.calls) == 1 and scanner.calls[0][0].iface == "wlan0"
    scanner.calls[0][1].callback(result())
    assert hood.last_report["network"] == "10.79.0.0/24"


def test_a_scan_of_both_families_shows_each_hosts_ipv6_addresses():
    from tekcos.scan import ndp
    from tekcos.scan.ipv6 import Result6
    server, scanner, hood = setup(access="everyone")
    a = server.user("alice")
    a.read()
    a.type("/scan\n")
    found = ndp.Neighbours6(started=100.0)
    found.heard(ndp.Heard(ipaddress.IPv6Address("fe80::3e22:fbff:fe12:3456"),
                          "3c:22:fb:12:34:56", "echo"), 100.01)
    found.heard(ndp.Heard(ipaddress.IPv6Address("fd00::7"), "02:00:00:00:00:77", "mld"), 100.02)
    scanner.calls[0][1].callback((result(), Result6(found, 0.6, 6)))
    lines = a.lines()
    apple = next(i for i, line in enumerate(lines) if "Apple" in line)
    assert lines[apple + 1] == "***   fe80::3e22:fbff:fe12:3456 (link-local, eui64)"
    assert any(line.startswith("*** -") and "02:00:00:00:00:77" in line for line in lines)
    assert "***   fd00::7 (unique-local, opaque)" in lines
    assert lines[-1].startswith("*** 3 hosts on 10.79.0.0/24 via eth1") \
        and "2 with IPv6" in lines[-1]
    assert hood.last_report["ipv6"] == {"probes": 6, "problem": None, "not_kept": 0}


def test_a_server_on_a_link_without_ipv4_scans_it_on_ipv6_and_says_so():
    from tekcos.scan import ndp
    from tekcos.scan.ipv6 import Result6
    v6_only = Selection("eth1", None, "02:aa:00:00:00:fa", None)
    current = [SEL]
    server, scanner, hood = setup(access="everyone", select=lambda: current[0])
    a = server.user("alice")
    hood.check_address()
    current[0] = v6_only                 # the DHCP lease is gone; IPv6 stays
    hood.check_address()
    assert a.lines()[0].endswith("-- this server moved: 10.79.0.250 on 10.79.0.0/24 -> "
                                 "no IPv4 address on eth1 (IPv6 only)")
    [(selection, fired)] = scanner.calls
    assert selection is v6_only
    found = ndp.Neighbours6(started=100.0)
    found.heard(ndp.Heard(ipaddress.IPv6Address("fe80::3e22:fbff:fe12:3456"),
                          "3c:22:fb:12:34:56", "echo"), 100.01)
    fired.callback((ScanResult(v6_only, [], 0.0, 0), Result6(found, 0.6, 3)))
    a.read()
    server.clock.advance(120)
    a.type("/scan\n")
    assert "*** Scanning the IPv6 link (no IPv4 address there) on eth1..." in a.read()
    scanner.calls[1][1].callback((ScanResult(v6_only, [], 0.0, 0), Result6(found, 0.6, 3)))
    assert a.lines()[-1].startswith(
        "*** 1 hosts on eth1 (no IPv4 address there: IPv6 only) in ")
