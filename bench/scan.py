"""ARP scan benchmark: tekcos scan against arp-scan on a namespace LAN.

Builds a bridge with --hosts host namespaces in a /24 (and, for the /20
figure, the same hosts spread over a /20), drops a share of the ARP replies
reaching the scanner with nftables, and runs ``tekcos scan`` and ``arp-scan``
(both with their defaults) several times at each loss rate.  Prints hosts
found and seconds (median), the /20 time and the time from process start to
the first ARP request on the wire.

Needs root, iproute2, nftables and arp-scan.  Only namespaces it creates are
scanned.  Usage: sudo python bench/scan.py [--runs 5] [--hosts 20]
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


def build(lab, hosts: int, prefix: int):
    switch = lab.ns("sw")
    bridge = lab.bridge(switch)
    scanner = lab.ns("scan")
    if prefix == 24:
        net, me = "10.81.0.{}/24", "10.81.0.250/24"
        addrs = [net.format(i * 12 % 250 + 1) for i in range(hosts)]
    else:
        me = "10.82.15.250/20"
        addrs = [f"10.82.{i % 16}.{i * 7 % 250 + 1}/20" for i in range(hosts)]
    dev = lab.attach(scanner, switch, bridge, me, mac="02:aa:00:00:00:fa")
    for i, addr in enumerate(addrs):
        ns = lab.ns(f"h{i}")
        lab.attach(ns, switch, bridge, addr, mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}")
    return switch, scanner, dev, {a.split("/")[0] for a in addrs}


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
    args = parser.parse_args()
    if not shutil.which("arp-scan"):
        raise SystemExit("arp-scan is not installed (apt-get install arp-scan)")
    os.chdir(ROOT)
    sys.stdout.reconfigure(line_buffering=True)
    print(f"/24 with {args.hosts} hosts, {args.runs} runs per loss rate, defaults for both "
          "(tekcos: 1000 pps, 4 tries; arp-scan: 2 retries, 500 ms timeout)")
    print(f"{'loss':>5} {'tekcos found':>13} {'scan s':>7} {'wall s':>7} "
          f"{'arp-scan found':>15} {'wall s':>7}")
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
                found, scan_s, wall = tekcos_scan(lab, scanner, "10.81.0.0/24")
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
    print(f"process start to first ARP request (tekcos scan, median): {first * 1000:.0f} ms")


if __name__ == "__main__":
    main()
