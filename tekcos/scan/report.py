"""What a scan found, for people and scripts: the JSON-ready report
(:func:`describe`), the table (:func:`table`) and the lines ``--watch`` prints
between two reports (:func:`changes`).  Used by ``tekcos scan`` and by the
chat's ``/scan`` and ``/neighbors``."""
from __future__ import annotations

import ipaddress
import time

from tekcos.scan import engine
from tekcos.scan import iface as ifaces


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


def changes(before: dict, after: dict) -> list[str]:
    old = {n["ip"]: n for n in before["neighbors"]}
    new = {n["ip"]: n for n in after["neighbors"]}
    stamp = time.strftime("%H:%M:%S")
    lines = []
    for ip in sorted(new.keys() - old.keys(), key=ipaddress.ip_address):
        lines.append(f"{stamp} + {ip} {new[ip]['mac']} {new[ip]['vendor'] or ''}".rstrip())
    for ip in sorted(old.keys() - new.keys(), key=ipaddress.ip_address):
        lines.append(f"{stamp} - {ip} {old[ip]['mac']}")
    for ip in sorted(old.keys() & new.keys(), key=ipaddress.ip_address):
        if old[ip]["mac"] != new[ip]["mac"]:
            lines.append(f"{stamp} ~ {ip} {old[ip]['mac']} -> {new[ip]['mac']}")
    return lines
