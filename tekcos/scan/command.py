"""``tekcos scan``: the neighbours on the local subnet, for people and scripts.

Exit status: 0 scanned (even if nobody answered); 1 the scan cannot run
here (no route, interface down, no permission: the message says what to
do); 2 usage errors.
"""
from __future__ import annotations

import json
import sys
import time

from tekcos.scan import engine, iface as ifaces

EXIT_OK, EXIT_CANNOT, EXIT_USAGE = 0, 1, 2


def add_arguments(parser) -> None:
    parser.add_argument("network", nargs="?", metavar="NETWORK",
                        help="network to scan, e.g. 192.168.1.0/24 (default: the subnet of "
                        "the default route's interface)")
    parser.add_argument("--iface", metavar="IF", help="interface to scan from")
    parser.add_argument("--tries", type=int, default=4,
                        help="probes per silent host, with growing waits (4)")
    parser.add_argument("--rate", type=float, default=1000, metavar="PPS",
                        help="probes per second (1000)")
    parser.add_argument("--json", action="store_true", help="one JSON object per scan")
    parser.add_argument("--probe", type=int, metavar="PORT",
                        help="ask each neighbour whether it runs a tekcos server on UDP PORT")
    parser.add_argument("--pcap", metavar="FILE", help="write the ARP requests and replies "
                        "to FILE (pcap, for Wireshark)")
    parser.add_argument("--watch", action="store_true", help="rescan every --interval "
                        "seconds and print who appeared or left, and address changes")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between "
                        "--watch scans (30)")
    parser.add_argument("--force", action="store_true", help="allow networks larger than /16")


def describe(result: engine.ScanResult, tekcos_hosts: set | None = None) -> dict:
    from tekcos.scan import vendors
    sel = result.selection
    neighbors = []
    for host in result.hosts:
        mac = host.macs[0]
        neighbors.append({
            "ip": str(host.ip), "mac": mac, "macs": list(host.macs),
            "vendor": vendors.vendor(mac), "local_admin": vendors.local_admin(mac),
            "rtt_ms": round(host.rtt * 1000, 3) if host.rtt is not None else None,
            "conflict": host.conflict,
            "tekcos": True if tekcos_hosts and str(host.ip) in tekcos_hosts else None,
        })
    return {"interface": ifaces.friendly_name(sel.iface, str(sel.ip)), "address": str(sel.ip),
            "network": str(sel.network), "gateway": sel.gateway,
            "elapsed_s": round(result.elapsed, 3), "probes": result.sent,
            "neighbors": neighbors}


def table(report: dict) -> str:
    lines = [f"{'IP':<16}{'MAC':<19}{'VENDOR':<28}{'RTT':>9}  FLAGS"]
    for n in report["neighbors"]:
        flags = []
        if n["conflict"]:
            flags.append("CONFLICT: " + " ".join(n["macs"]))
        if n["local_admin"]:
            flags.append("local-admin")
        if n["tekcos"]:
            flags.append("tekcos")
        rtt = f"{n['rtt_ms']:.1f} ms" if n["rtt_ms"] is not None else "-"
        lines.append(f"{n['ip']:<16}{n['mac']:<19}{(n['vendor'] or '-')[:27]:<28}{rtt:>9}  "
                     + ", ".join(flags))
    conflicts = sum(1 for n in report["neighbors"] if n["conflict"])
    summary = (f"{len(report['neighbors'])} hosts on {report['network']} via "
               f"{report['interface']} ({report['address']}) in {report['elapsed_s']:.2f} s, "
               f"{report['probes']} probes")
    if conflicts:
        summary += f", {conflicts} address conflict(s)"
    return "\n".join(lines + [summary])


def probe_tekcos(ips: list[str], port: int, timeout: float = 0.5) -> set[str]:
    """The addresses among ``ips`` that answer a HELLO like a tekcos server."""
    from tekcos.scan.discover import hello_replies
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


def run(args, out=sys.stdout, err=sys.stderr, system=None, scan=engine.scan,
        check=engine.check_permission, sleep=time.sleep) -> int:
    if args.tries < 1 or args.rate <= 0 or args.interval <= 0:
        err.write("tekcos scan: --tries, --rate and --interval must be positive\n")
        return EXIT_USAGE
    try:  # before anything else: the fix for this is the one thing to say
        check()
    except engine.ScanPermissionError as e:
        err.write(f"tekcos scan: {e}\n")
        return EXIT_CANNOT
    previous = None
    last_selection = None
    while True:
        try:
            selection = ifaces.select(system or ifaces.local_system(), args.iface,
                                      args.network, args.force)
            result = scan(selection, rate=args.rate, tries=args.tries,
                          keep_frames=bool(args.pcap))
        except ifaces.ScanSetupError as e:
            err.write(f"tekcos scan: {e}\n")
            if not args.watch:
                return EXIT_CANNOT
            sleep(args.interval)
            continue
        except engine.ScanPermissionError as e:
            err.write(f"tekcos scan: {e}\n")
            return EXIT_CANNOT
        found = probe_tekcos([str(h.ip) for h in result.hosts], args.probe) \
            if args.probe else None
        report = describe(result, found)
        if args.pcap:
            write_pcap(args.pcap, result.frames)
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
            return EXIT_OK
        previous, last_selection = report, selection
        sleep(args.interval)


def changes(before: dict, after: dict) -> list[str]:
    old = {n["ip"]: n for n in before["neighbors"]}
    new = {n["ip"]: n for n in after["neighbors"]}
    stamp = time.strftime("%H:%M:%S")
    lines = []
    for ip in sorted(new.keys() - old.keys(), key=lambda a: tuple(map(int, a.split(".")))):
        lines.append(f"{stamp} + {ip} {new[ip]['mac']} {new[ip]['vendor'] or ''}".rstrip())
    for ip in sorted(old.keys() - new.keys(), key=lambda a: tuple(map(int, a.split(".")))):
        lines.append(f"{stamp} - {ip} {old[ip]['mac']}")
    for ip in sorted(old.keys() & new.keys(), key=lambda a: tuple(map(int, a.split(".")))):
        if old[ip]["mac"] != new[ip]["mac"]:
            lines.append(f"{stamp} ~ {ip} {old[ip]['mac']} -> {new[ip]['mac']}")
    return lines
