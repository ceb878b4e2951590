"""Neighbour scans from the chat (``/scan``, ``/neighbors``) and the watch
on the server's own address.

:class:`Neighbourhood` is a plain object: it decides who may scan (access
policy, one scan at a time, cooldown), starts the scan through an injected
:class:`~tekcos.scan.engine.Scanner` (which runs it in a thread), and tells
the asker the result through ``session.write_lines``.  ``check_address()``
is called periodically by the server; it notices when this host's address
or subnet changed and announces it through ``announce``.
"""
from __future__ import annotations

import math
from typing import Callable

from tekcos.scan import iface as ifaces
from tekcos.scan.engine import ScanPermissionError
from tekcos.scan.report import describe, table


ANSWER_WINDOW = 5.0    # seconds other nodes' tables are taken after /neighbors
MAX_ASKED = 64         # /neighbors waiting for other nodes' answers


class Neighbourhood:
    def __init__(self, scanner, now: Callable[[], float], select: Callable[[], object],
                 access: str = "operators", cooldown: float = 60.0,
                 announce: Callable[[str], None] | None = None,
                 log: Callable[[str], None] | None = None):
        self.scanner = scanner
        self.now = now
        self.select = select
        self.access = access
        self.cooldown = cooldown
        self.announce = announce or (lambda text: None)
        self.log = log or (lambda text: None)
        self.running = False
        self.last_started = float("-inf")
        self.scans_done = 0      # for the operators' metrics
        self.scans_failed = 0
        self.last_report: dict | None = None
        self.address = None    # (ip, network) last seen
        # With other nodes: asks them for their tables (``ask_others(id)``);
        # their answers come to remote_table().
        self.ask_others: Callable[[int], None] | None = None
        self.asked: dict[int, tuple[object, float]] = {}   # id -> (session, when)
        self._next_request = 1

    # -- scans ---------------------------------------------------------------------
    def refusal(self, session) -> str | None:
        if self.access == "nobody":
            return "scanning from the chat is turned off on this server."
        if self.access == "operators" and not getattr(session, "operator", False):
            return "only operators may /scan (authenticate with /oper PASSWORD)."
        if self.running:
            return "a scan is already running; its result will go to whoever asked."
        wait = self.last_started + self.cooldown - self.now()
        if wait > 0:
            return f"the last scan was recent; try again in {math.ceil(wait)} s (/neighbors shows it)."
        return None

    def request(self, session) -> None:
        refusal = self.refusal(session)
        if refusal:
            session.error(refusal)
            return
        self._start(session)

    def _start(self, session=None) -> None:
        try:
            selection = self.select()
        except ifaces.ScanSetupError as e:
            if session is not None:
                session.error(f"cannot scan: {e}")
            return
        self.running = True
        self.last_started = self.now()
        if session is not None:
            session.send(f"*** Scanning {_link(selection)} on {selection.iface}...")
        self.log(f"scan of {_link(selection)} started"
                 + (f" by {session.nick}" if session is not None else ""))
        d = self.scanner.scan(selection)
        d.addCallbacks(lambda result: self._done(result, session),
                       lambda failure: self._failed(failure, session))

    def _done(self, result, session) -> None:
        self.running = False
        self.scans_done += 1
        # Both families (scan.ipv6.both_families) or the ARP scan alone.
        result, v6 = result if isinstance(result, tuple) else (result, None)
        self.last_report = describe(result, None, v6)
        self.log(f"scan of {_link(result.selection)}: {len(result.hosts)} hosts "
                 f"in {result.elapsed:.2f} s")
        if session is not None and not session.closed:
            session.write_lines(["*** " + line for line in table(self.last_report).splitlines()])

    def _failed(self, failure, session) -> None:
        self.running = False
        self.scans_failed += 1
        if failure.check(ScanPermissionError):
            text = ("the server may not scan: it needs CAP_NET_RAW (run it with "
                    "conf/tekcos-netraw.service)")
        else:
            text = f"the scan failed: {failure.getErrorMessage()}"
        self.log(text)
        if session is not None and not session.closed:
            session.error(text)

    def neighbors(self, session) -> None:
        if self.last_report is None:
            session.send("*** No scan yet. /scan runs one"
                         + (" (operators only)." if self.access == "operators" else "."))
        else:
            session.write_lines(["*** " + line for line in self.table_lines()])
        if self.ask_others is not None:
            now = self.now()
            for request, (_, when) in list(self.asked.items()):
                if now - when > ANSWER_WINDOW:
                    del self.asked[request]
            if len(self.asked) < MAX_ASKED:
                request = self._next_request
                self._next_request = request % (1 << 30) + 1
                self.asked[request] = (session, now)
                self.ask_others(request)

    def table_lines(self) -> list[str]:
        """The last scan's table (none: no scan yet)."""
        return table(self.last_report).splitlines() if self.last_report is not None else []

    def remote_table(self, node: str, request: int, lines: list[str]) -> None:
        """``node``'s table, answering our ``request``: to whoever asked,
        each line marked with the node (so that it is not read as ours)."""
        asked = self.asked.get(request)
        if asked is None or self.now() - asked[1] > ANSWER_WINDOW:
            return
        session = asked[0]
        if not session.closed and lines:
            session.write_lines([f"*** The LAN of node {node} (its last scan):"]
                                + [f"*** [{node}] {line}" for line in lines])

    # -- moving between networks ------------------------------------------------
    def check_address(self) -> None:
        """Called periodically: announce (and rescan) when our address or
        subnet changed since the previous call.  The first call only records."""
        try:
            selection = self.select()
            current = (str(selection.ip), str(selection.network)) if selection.ip is not None \
                else ("no IPv4 address", f"{selection.iface} (IPv6 only)")
        except ifaces.ScanSetupError:
            current = None
        if not self._checked:
            self._checked = True
            self.address = current
            return
        if current == self.address:
            return
        previous, self.address = self.address, current
        old = f"{previous[0]} on {previous[1]}" if previous else "no network"
        new = f"{current[0]} on {current[1]}" if current else "no network"
        self.log(f"this server's address changed: {old} -> {new}")
        self.announce(f"this server moved: {old} -> {new}")
        if current is not None and self.access != "nobody" and not self.running:
            self._start()

    _checked = False


def _link(selection) -> str:
    """The network a scan covers, as said to people."""
    return str(selection.network) if selection.network is not None \
        else "the IPv6 link (no IPv4 address there)"
