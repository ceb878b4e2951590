"""The Neighbours table of the desktop window, without Tk.

Two sources give the same rows: the server's ``/neighbors`` answer (the
table of :func:`tekcos.scan.report.table`, one ``*** `` line per host,
read back by :class:`TableReader` by its fixed columns), and a scan of the
user's own LAN (:func:`local_scan`, where this process may send raw
frames), whose report is :func:`tekcos.scan.report.describe`'s.  Rows sort
by any column; addresses sort as numbers, not as text.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

COLUMNS = ("ip", "mac", "vendor", "rtt", "flags", "ipv6")
_HEADER = re.compile(r"^\*\*\* IP\s+MAC\s+VENDOR\s+RTT\s+FLAGS$")
_SUMMARY = re.compile(r"^\*\*\* \d+ hosts on ")
_WIDTHS = (16, 19, 28, 9)        # the columns of report.table(), after "*** "
MAX_ROWS = 65536                 # a /16 at most: a hostile server cannot grow it further


@dataclass
class Neighbour:
    ip: str
    mac: str
    vendor: str
    rtt: str
    flags: str
    ipv6: str = ""       # its IPv6 addresses, space-separated

    def sort_key(self, column: str):
        if column == "ip":
            try:
                address = ipaddress.ip_address(self.ip)
                return (address.version, int(address))
            except ValueError:
                return (9, 0)
        if column == "rtt":
            try:
                return float(self.rtt.split()[0])
            except (ValueError, IndexError):
                return float("inf")
        return getattr(self, column).casefold()


class TableReader:
    """Picks the ``/neighbors`` table out of the server's lines.  ``feed``
    returns the finished rows and summary when the table's last line
    arrives, None otherwise."""

    def __init__(self):
        self._rows: list[Neighbour] | None = None

    def feed(self, line: str) -> tuple[list[Neighbour], str] | None:
        if _HEADER.match(line):
            self._rows = []
            return None
        if self._rows is None:
            return None
        if _SUMMARY.match(line):
            rows, self._rows = self._rows, None
            return rows, line[4:]
        if not line.startswith("*** "):
            self._rows = None        # something else came between: not our table
            return None
        if line.startswith("***   ") and self._rows:
            # An IPv6 address of the row above: "  ADDRESS (scope, kind)".
            row = self._rows[-1]
            address = line[6:].split(" ", 1)[0]
            if len(row.ipv6) < 1024:
                row.ipv6 = f"{row.ipv6} {address}".strip()
            return None
        if len(self._rows) < MAX_ROWS:
            self._rows.append(_row(line[4:]))
        return None


def _row(text: str) -> Neighbour:
    fields, at = [], 0
    for width in _WIDTHS:
        fields.append(text[at:at + width].strip())
        at += width
    ip, mac, vendor, rtt = fields
    return Neighbour("" if ip == "-" else ip, mac, "" if vendor == "-" else vendor, "" if rtt == "-" else rtt,
                     text[at:].strip())


def from_report(report: dict) -> list[Neighbour]:
    """The rows of a scan report (:func:`tekcos.scan.report.describe`)."""
    rows = []
    for n in report["neighbors"]:
        flags = [f"CONFLICT: {' '.join(n['macs'])}"] if n["conflict"] else []
        flags += ["local-admin"] if n["local_admin"] else []
        flags += ["tekcos"] if n.get("tekcos") else []
        rtt = f"{n['rtt_ms']:.1f} ms" if n["rtt_ms"] is not None else ""
        rows.append(Neighbour(n["ip"] or "", n["mac"], n["vendor"] or "", rtt, ", ".join(flags),
                              " ".join(a["address"] for a in n.get("ipv6", ()))))
    return rows


def sorted_rows(rows: list[Neighbour], column: str, descending: bool = False):
    return sorted(rows, key=lambda row: row.sort_key(column), reverse=descending)


def local_scan() -> tuple[list[Neighbour], str]:
    """Scan this machine's LAN (blocking: run it in a thread).  Raises
    :class:`~tekcos.scan.engine.ScanPermissionError` or
    :class:`~tekcos.scan.iface.ScanSetupError` with the one-line reason."""
    from tekcos.scan import engine
    from tekcos.scan import iface as ifaces
    from tekcos.scan.ipv6 import both_families
    from tekcos.scan.report import describe, table
    engine.check_permission()
    result, v6 = both_families(ifaces.select(ifaces.local_system()), tries=2)
    report = describe(result, None, v6)
    return from_report(report), table(report).splitlines()[-1]
