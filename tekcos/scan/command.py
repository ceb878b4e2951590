"""``tekcos scan``: the neighbours on the local subnet, for people and scripts.

Exit status: 0 scanned (even if nobody answered); 1 the scan cannot run
here (no route, interface down, no permission: the message says what to
do); 2 usage errors.
"""
from __future__ import annotations

import json
import sys
import time

from tekcos import exits
from tekcos.scan import engine
from tekcos.scan import iface as ifaces
from tekcos.scan.report import changes, describe, table


def add_arguments(parser) -> None:
    parser.add_argument("network", nargs="?", metavar="NETWORK",
                        help="network to scan, e.g. 192.168.1.0/24 (default: the subnet of "
                        "the default route's interface)")
    parser.add_argument("--iface", metavar="IF", help="interface to scan from")
    parser.add_argument("--tries", type=int, default=4,
                        help="probes per silent host, with growing waits (4)")
    parser.add_argument("--rate", type=float, metavar="PPS",
                        help="ARP probes per second (4000 on Ethernet, 1000 on Wi-Fi)")
    parser.add_argument("--json", action="store_true", help="one JSON object per scan")
    parser.add_argument("--probe", type=int, metavar="PORT",
                        help="ask each neighbour whether it runs a tekcos server on UDP PORT")
    parser.add_argument("--wait", type=float, default=0.5, metavar="SECONDS",
                        help="with --probe: how long to wait for answers (0.5)")
    parser.add_argument("--pcap", metavar="FILE", help="write the ARP and ICMPv6 frames sent "
                        "and answered to FILE (pcap, for Wireshark)")
    parser.add_argument("--watch", action="store_true", help="rescan every --interval "
                        "seconds and print who appeared or left, and address changes")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between "
                        "--watch scans (30)")
    parser.add_argument("--force", action="store_true", help="allow networks larger than /16")
    family = parser.add_mutually_exclusive_group()
    family.add_argument("--ipv4-only", action="store_true",
                        help="ARP only: no IPv6 neighbours")
    family.add_argument("--ipv6-only", action="store_true",
                        help="IPv6 only (echo to ff02::1, an MLD query, the neighbour cache)")


def probe_tekcos(ips: list[str], port: int, timeout: float = 0.5) -> set[str]:
    """The addresses among ``ips`` that answer a HELLO like a tekcos server."""
    from tekcos.hello import hello_replies
    return {ip for ip, _ in hello_replies(ips, port, timeout)}


def write_pcap(path: str, frames) -> None:
    from scapy.utils import PcapWriter
    writer = PcapWriter(path, linktype=1, sync=False)
    try:
        writer.write_header(None)   # also for a scan that saw nothing
        for stamp, frame in frames:
            writer.write_packet(frame, sec=int(stamp), usec=int((stamp % 1) * 1e6))
    finally:
        writer.close()


def both(selection, args, scan, scan6):
    """The ARP scan and the IPv6 look at the same time (each as asked):
    (ScanResult, Result6 or None)."""
    from tekcos.scan.ipv6 import alongside
    return alongside(selection, scan, scan6, ipv4=not getattr(args, "ipv6_only", False),
                     ipv6=not getattr(args, "ipv4_only", False), keep_frames=bool(args.pcap),
                     rate=args.rate, tries=args.tries)


def run(args, out=sys.stdout, err=sys.stderr, system=None, scan=engine.scan,
        check=engine.check_permission, sleep=time.sleep, scan6=None) -> int:
    if scan6 is None:
        from tekcos.scan.ipv6 import scan6
    if args.tries < 1 or (args.rate is not None and args.rate <= 0) or args.interval <= 0:
        err.write("tekcos scan: --tries, --rate and --interval must be positive\n")
        return exits.USAGE
    if args.network is not None:
        try:
            ifaces.parse_network(args.network)
        except ifaces.ScanSetupError as e:
            err.write(f"tekcos scan: {e}\n")
            return exits.USAGE
    try:  # before anything else: the fix for this is the one thing to say
        check()
    except engine.ScanPermissionError as e:
        err.write(f"tekcos scan: {e}\n")
        return exits.CANNOT
    previous = None
    last_selection = None
    while True:
        try:
            selection = ifaces.select(system or ifaces.local_system(), args.iface,
                                      args.network, args.force,
                                      ipv6=not getattr(args, "ipv4_only", False))
            result, v6 = both(selection, args, scan, scan6)
        except ifaces.ScanSetupError as e:
            err.write(f"tekcos scan: {e}\n")
            if not args.watch:
                return exits.CANNOT
            sleep(args.interval)
            continue
        except engine.ScanPermissionError as e:
            err.write(f"tekcos scan: {e}\n")
            return exits.CANNOT
        found = probe_tekcos([str(h.ip) for h in result.hosts], args.probe, args.wait) \
            if args.probe else None
        report = describe(result, found, v6)
        if args.pcap:
            write_pcap(args.pcap, sorted(result.frames + (v6.frames if v6 else []),
                                         key=lambda f: f[0]))
        if args.watch and last_selection is not None and (
                last_selection.ip, last_selection.network) != (selection.ip, selection.network):
            out.write(f"* this host moved: {last_selection.ip} on {last_selection.network} "
                      f"-> {selection.ip} on {selection.network}\n")
        if args.json:
            out.write(json.dumps(report) + "\n")
        elif args.watch and previous is not None:
            for line in changes(previous, report):
                out.write(line + "\n")
        else:
            out.write(table(report) + "\n")
        out.flush()
        if not args.watch:
            return exits.OK
        previous, last_selection = report, selection
        sleep(args.interval)
