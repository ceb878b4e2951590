"""ARP scan benchmark: tekcos scan against arp-scan on a namespace LAN.

Builds a bridge with --hosts host namespaces in a /24 (and, for the /20
figure, the same hosts spread over a /20), drops a share of the ARP replies
reaching the scanner with nftables, and runs ``tekcos scan`` and ``arp-scan``
(both with their defaults, ``tekcos scan --ipv4-only``) several times at
each loss rate.  Prints hosts found and seconds (median), the /20 time and
the time from process start to the first ARP request on the wire.

IPv6 on the same LAN (every host has its link-local address; a third of
them also a global one; 15% of the echo replies and MLD reports, and of the
ARP replies, lost on the hosts' ports where asked): ``tekcos scan
--ipv6-only`` against ``ping -6 -c 2 ff02::1%IF`` followed by ``ip -6
neigh`` (the usual way), each starting from empty neighbour caches
everywhere, and ``tekcos scan`` doing both families at once (target: the
/24 and the IPv6 neighbours in 0.6 s at full recall).

Needs root, iproute2, nftables, arp-scan and ping (iputils-ping).  Only
namespaces it creates are scanned.  Usage: sudo python bench/scan.py [--runs 5]
[--hosts 20]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from common import ROOT, netlab


SNIFF = r"""
import socket, sys, time
# ETH_P_ALL: only such taps see outgoing frames.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((sys.argv[1], 0x0003))
print("ready", flush=True)
while True:
    frame = s.recv(2048)
    if frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01":
        print(repr(time.time()), flush=True)
        break
"""


def quick_ipv6(lab, ns: str) -> None:
    """Addresses usable at once (no duplicate-address wait)."""
    lab.exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
             "net.ipv6.conf.default.accept_dad=0")


def build(lab, hosts: int, prefix: int):
    switch = lab.ns("sw")
    # The switch itself has no IPv6 (a bridge with an address answers too).
    lab.exec(switch, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
             "net.ipv6.conf.default.disable_ipv6=1")
    bridge = lab.bridge(switch)
    scanner = lab.ns("scan")
    quick_ipv6(lab, scanner)
    if prefix == 24:
        net, me = "10.81.0.{}/24", "10.81.0.250/24"
        addrs = [net.format(i * 12 % 250 + 1) for i in range(hosts)]
    else:
        me = "10.82.15.250/20"
        addrs = [f"10.82.{i % 16}.{i * 7 % 250 + 1}/20" for i in range(hosts)]
    dev = lab.attach(scanner, switch, bridge, me, mac="02:aa:00:00:00:fa")
    lab.exec(scanner, "ip", "-6", "addr", "add", "2001:db8:81::fa/64", "dev", dev, "nodad")
    for i, addr in enumerate(addrs):
        ns = lab.ns(f"h{i}")
        quick_ipv6(lab, ns)
        lab.attach(ns, switch, bridge, addr, mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}")
        if i % 3 == 0:
            lab.exec(ns, "ip", "-6", "addr", "add", f"2001:db8:81::{i + 1:x}/64", "dev", "eth1",
                     "nodad")
    return switch, scanner, dev, {a.split("/")[0] for a in addrs}


def host_macs(hosts: int) -> set[str]:
    return {f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(hosts)}


def forget_neighbours(lab) -> None:
    """Every namespace starts from an empty IPv6 neighbour cache (a host that
    still knows the scanner sends it no Neighbour Solicitation, which is what
    ``ip -6 neigh`` learns from)."""
    for ns in lab.namespaces:
        lab.exec(ns, "ip", "-6", "neigh", "flush", "all")


def tekcos_scan6(lab, scanner, dev, extra=()):
    """MACs with IPv6 addresses found, IPv6 addresses found, seconds (as
    reported), wall seconds."""
    forget_neighbours(lab)
    start = time.perf_counter()
    out = lab.exec(scanner, sys.executable, "-m", "tekcos.cli", "scan", "10.81.0.0/24",
                   "--json", *extra)
    wall = time.perf_counter() - start
    report = json.loads(out)
    with_v6 = {n["mac"] for n in report["neighbors"] if n.get("ipv6")}
    addresses = sum(len(n.get("ipv6", ())) for n in report["neighbors"])
    ipv4 = {n["ip"] for n in report["neighbors"] if n["ip"]}
    return with_v6, addresses, report["elapsed_s"], wall, ipv4


def ping6_neigh(lab, scanner, dev):
    """The usual way: ping all-nodes twice, then read the neighbour cache."""
    forget_neighbours(lab)
    start = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", scanner, "ping", "-6", "-c", "2", "-i", "0.2",
                    "-w", "1", f"ff02::1%{dev}"], capture_output=True)
    out = lab.exec(scanner, "ip", "-6", "neigh", "show", "dev", dev)
    wall = time.perf_counter() - start
    macs = set(re.findall(r"lladdr ([0-9a-f:]{17})", out))
    return macs, len(out.splitlines()), wall


def lose_ipv6_replies(lab, switch, ports, percent: float) -> None:
    threshold = int(round(percent * 100))
    for k, port in enumerate(ports):
        lab.exec(switch, "nft", "-f", "-", input=f"""
table netdev tekcos_loss6_{k} {{
    chain ingress {{
        type filter hook ingress device "{port}" priority 0; policy accept;
        meta l4proto ipv6-icmp icmpv6 type {{ echo-reply, mld2-listener-report }} \
numgen random mod 10000 < {threshold} counter drop
    }}
}}
""")


def tekcos_scan(lab, scanner, network, extra=()):
    start = time.perf_counter()
    out = lab.exec(scanner, sys.executable, "-m", "tekcos.cli", "scan", network, "--json",
                   *extra)
    wall = time.perf_counter() - start
    report = json.loads(out)
    return {n["ip"] for n in report["neighbors"]}, report["elapsed_s"], wall


def arp_scan(lab, scanner, dev, network):
    start = time.perf_counter()
    out = lab.exec(scanner, "arp-scan", "--interface", dev, "--quiet", "--plain", network)
    wall = time.perf_counter() - start
    return set(re.findall(r"^(\d+\.\d+\.\d+\.\d+)\s", out, re.M)), wall


def first_packet_delay(lab, scanner, dev, network) -> float:
    sniffer = lab.popen(scanner, [sys.executable, "-c", SNIFF, dev], stdout=subprocess.PIPE,
                        text=True)
    sniffer.stdout.readline()
    started = time.time()
    scan = lab.popen(scanner, [sys.executable, "-m", "tekcos.cli", "scan", network,
                               "--tries", "1"], stdout=subprocess.DEVNULL, cwd=ROOT)
    seen = float(sniffer.stdout.readline())
    scan.wait(30)
    sniffer.wait(5)
    return seen - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--loss", type=float, nargs="+", default=[0, 15, 30])
    parser.add_argument("--ipv6-part", action="store_true", help="only the IPv6 comparison")
    args = parser.parse_args()
    if args.ipv6_part:
        os.chdir(ROOT)
        ipv6(args)
        return
    if not shutil.which("arp-scan") or not shutil.which("ping"):
        raise SystemExit("needs arp-scan and ping (apt-get install arp-scan iputils-ping)")
    os.chdir(ROOT)
    sys.stdout.reconfigure(line_buffering=True)
    print(f"/24 with {args.hosts} hosts, {args.runs} runs per loss rate, defaults for both "
          "(tekcos: 4000 pps on this wired LAN, 4 tries; arp-scan: 2 retries, 500 ms timeout)")
    print(f"{'loss':>5} {'tekcos found':>13} {'scan s':>7} {'wall s':>7} "
          f"{'arp-scan found':>15} {'wall s':>7}")
    first = None                  # measured on the lossless LAN, where asked
    for loss in args.loss:
        with netlab.Lab() as lab:
            switch, scanner, dev, hosts = build(lab, args.hosts, 24)
            if loss:
                # On the hosts' bridge ports: arp-scan's capture would see
                # replies dropped at the scanner's own ingress.
                for port in lab.ports.values():
                    if port != lab.ports[scanner]:
                        lab.drop_arp(switch, port, loss, replies_only=True)
            t_found, t_scan, t_wall, a_found, a_wall = [], [], [], [], []
            for _ in range(args.runs):
                found, scan_s, wall = tekcos_scan(lab, scanner, "10.81.0.0/24",
                                                  ("--ipv4-only",))
                assert found <= hosts
                t_found.append(len(found)); t_scan.append(scan_s); t_wall.append(wall)
                found, wall = arp_scan(lab, scanner, dev, "10.81.0.0/24")
                a_found.append(len(found & hosts)); a_wall.append(wall)
            print(f"{loss:>4g}% {statistics.mean(t_found):>13.1f} "
                  f"{statistics.median(t_scan):>7.2f} {statistics.median(t_wall):>7.2f} "
                  f"{statistics.mean(a_found):>15.1f} {statistics.median(a_wall):>7.2f}")
            if loss == 0:
                delays = [first_packet_delay(lab, scanner, dev, "10.81.0.0/24")
                          for _ in range(args.runs)]
                first = statistics.median(delays)
    with netlab.Lab() as lab:
        switch, scanner, dev, hosts = build(lab, args.hosts, 20)
        rows = []
        for label, extra in (("defaults", ()), ("--rate 8000", ("--rate", "8000"))):
            found, scan_s, wall = tekcos_scan(lab, scanner, "10.82.0.0/20", extra)
            rows.append(f"tekcos {label}: {len(found)}/{len(hosts)} in {scan_s:.2f} s "
                        f"(wall {wall:.2f} s)")
        found, wall = arp_scan(lab, scanner, dev, "10.82.0.0/20")
        rows.append(f"arp-scan defaults: {len(found & hosts)}/{len(hosts)} in {wall:.2f} s")
    print("/20: " + "; ".join(rows))
    if first is not None:
        print(f"process start to first ARP request (tekcos scan, median): "
              f"{first * 1000:.0f} ms")
    ipv6(args)


def ipv6(args) -> None:
    macs = host_macs(args.hosts)
    print(f"IPv6, {args.hosts} hosts (link-local each, a global address on a third), "
          f"{args.runs} runs, from empty neighbour caches")
    print(f"{'loss':>5} {'tekcos -6 found':>16} {'addresses':>10} {'scan s':>7} {'wall s':>7} "
          f"{'ping6+neigh found':>18} {'wall s':>7} {'tekcos v4+v6 s':>15} {'v4 found':>9}")
    for loss in (0, 15):
        with netlab.Lab() as lab:
            switch, scanner, dev, hosts = build(lab, args.hosts, 24)
            if loss:
                ports = [p for ns, p in lab.ports.items() if ns != scanner]
                lose_ipv6_replies(lab, switch, ports, loss)
                for port in ports:      # and the ARP replies, for both families at once
                    lab.drop_arp(switch, port, loss, replies_only=True)
            rows = {k: [] for k in ("t", "addr", "scan", "wall", "p", "pwall", "both", "v4")}
            for _ in range(args.runs):
                found, count, scan_s, wall, _ = tekcos_scan6(lab, scanner, dev,
                                                             ("--ipv6-only",))
                rows["t"].append(len(found & macs))
                rows["addr"].append(count)
                rows["scan"].append(scan_s)
                rows["wall"].append(wall)
                found, _, wall = ping6_neigh(lab, scanner, dev)
                rows["p"].append(len(found & macs))
                rows["pwall"].append(wall)
                _, _, both_s, _, ipv4 = tekcos_scan6(lab, scanner, dev)
                rows["both"].append(both_s)
                rows["v4"].append(len(ipv4 & hosts))
            mean, median = statistics.mean, statistics.median
            print(f"{loss:>4g}% {mean(rows['t']):>16.1f} {mean(rows['addr']):>10.1f} "
                  f"{median(rows['scan']):>7.2f} {median(rows['wall']):>7.2f} "
                  f"{mean(rows['p']):>18.1f} {median(rows['pwall']):>7.2f} "
                  f"{median(rows['both']):>15.2f} {mean(rows['v4']):>9.1f}")


if __name__ == "__main__":
    main()
