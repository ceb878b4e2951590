"""What a scan found, for people and scripts: the JSON-ready report
(:func:`describe`), the table (:func:`table`) and the lines ``--watch`` prints
between two reports (:func:`changes`).  Used by ``tekcos scan`` and by the
chat's ``/scan`` and ``/neighbors``."""
from __future__ import annotations

import ipaddress
import time

from tekcos.scan import engine
from tekcos.scan import iface as ifaces


def describe(result: engine.ScanResult, tekcos_hosts: set | None = None,
             v6=None) -> dict:
    """The report; with ``v6`` (a :class:`tekcos.scan.ipv6.Result6`), every
    neighbour has ``ipv6`` (its addresses, merged by MAC) and devices that
    answered on IPv6 only are rows with ``ip`` None."""
    from tekcos.scan import vendors
    sel = result.selection
    neighbors = []
    seen = set()
    for host in result.hosts:
        mac = host.macs[0]
        seen.update(host.macs)
        row = {
            "ip": str(host.ip), "mac": mac, "macs": list(host.macs),
            "vendor": vendors.vendor(mac), "local_admin": vendors.local_admin(mac),
            "rtt_ms": round(host.rtt * 1000, 3) if host.rtt is not None else None,
            "conflict": host.conflict,
            "tekcos": True if tekcos_hosts and str(host.ip) in tekcos_hosts else None,
        }
        if v6 is not None:
            row["ipv6"] = [a for m in host.macs for a in v6.neighbours.addresses(m)]
        neighbors.append(row)
    ip = str(sel.ip) if sel.ip is not None else None
    report = {"interface": ifaces.friendly_name(sel.iface, ip), "address": ip,
              "network": str(sel.network) if sel.network is not None else None,
              "gateway": sel.gateway,
              "elapsed_s": round(result.elapsed, 3), "probes": result.sent,
              "rate_pps": result.rate,
              "neighbors": neighbors}
    if v6 is not None:
        found = v6.neighbours
        for mac in sorted(set(found.by_mac) - seen):
            first = found.first_reply(mac)
            neighbors.append({
                "ip": None, "mac": mac, "macs": [mac], "vendor": vendors.vendor(mac),
                "local_admin": vendors.local_admin(mac),
                "rtt_ms": round(first * 1000, 3) if first is not None else None,
                "conflict": False, "tekcos": None, "ipv6": found.addresses(mac)})
        report["elapsed_s"] = round(max(result.elapsed, v6.elapsed), 3)
        report["ipv6"] = {"probes": v6.sent, "problem": v6.problem or None,
                          "not_kept": sum(found.dropped.values())}
    return report


def table(report: dict) -> str:
    lines = [f"{'IP':<16}{'MAC':<19}{'VENDOR':<28}{'RTT':>9}  FLAGS"]
    for n in report["neighbors"]:
        ip = n["ip"] or "-"
        flags = []
        if n["conflict"]:
            flags.append("CONFLICT: " + " ".join(n["macs"]))
        if n["local_admin"]:
            flags.append("local-admin")
        if n["tekcos"]:
            flags.append("tekcos")
        rtt = f"{n['rtt_ms']:.1f} ms" if n["rtt_ms"] is not None else "-"
        lines.append(f"{ip:<16}{n['mac']:<19}{(n['vendor'] or '-')[:27]:<28}{rtt:>9}  "
                     + ", ".join(flags))
        for entry in n.get("ipv6", ()):
            lines.append(f"  {entry['address']} ({entry['scope']}, {entry['kind']})")
    conflicts = sum(1 for n in report["neighbors"] if n["conflict"])
    if report["network"] is None:
        where = f"{report['interface']} (no IPv4 address there: IPv6 only)"
    else:
        where = f"{report['network']} via {report['interface']} ({report['address']})"
    summary = (f"{len(report['neighbors'])} hosts on {where} in {report['elapsed_s']:.2f} s, "
               f"{report['probes']} probes")
    if conflicts:
        summary += f", {conflicts} address conflict(s)"
    v6 = report.get("ipv6")
    if v6 is not None:
        if v6["problem"]:
            summary += f"; IPv6: {v6['problem']}"
        else:
            with_v6 = sum(1 for n in report["neighbors"] if n.get("ipv6"))
            summary += f"; {with_v6} with IPv6"
            if v6["not_kept"]:
                summary += f" ({v6['not_kept']} more IPv6 addresses not kept: at most " \
                           f"16 per MAC)"
    return "\n".join(lines + [summary])


def _key(neighbor: dict) -> str:
    """A row's identity between scans: its IPv4 address, or its MAC for a
    device seen on IPv6 only."""
    return neighbor["ip"] or neighbor["mac"]


def _order(key: str):
    try:
        return (0, ipaddress.ip_address(key))
    except ValueError:
        return (1, key)


def changes(before: dict, after: dict) -> list[str]:
    old = {_key(n): n for n in before["neighbors"]}
    new = {_key(n): n for n in after["neighbors"]}
    stamp = time.strftime("%H:%M:%S")
    lines = []
    for ip in sorted(new.keys() - old.keys(), key=_order):
        lines.append(f"{stamp} + {ip} {new[ip]['mac']} {new[ip]['vendor'] or ''}".rstrip())
    for ip in sorted(old.keys() - new.keys(), key=_order):
        lines.append(f"{stamp} - {ip} {old[ip]['mac']}")
    for ip in sorted(old.keys() & new.keys(), key=_order):
        if old[ip]["mac"] != new[ip]["mac"]:
            lines.append(f"{stamp} ~ {ip} {old[ip]['mac']} -> {new[ip]['mac']}")
    return lines
