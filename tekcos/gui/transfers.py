"""The Transfers panel and the Find servers list, without Tk.

:class:`Transfers` is the ``watcher`` of :class:`tekcos.push.actions.FileActions`:
one row per file sent or fetched, with its progress, rate (smoothed over
the last seconds), time left and outcome.  Time comes in as ``now``.
:class:`ServerList` holds the tekcos servers that answered a HELLO.
"""
from __future__ import annotations

from dataclasses import dataclass

RATE_WEIGHT = 0.3      # weight of the newest sample in the smoothed rate


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_seconds(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


@dataclass
class Row:
    key: int
    name: str
    direction: str            # send | get
    peer: str
    done: int = 0
    total: int = 0
    rate: float = 0.0         # bytes a second, smoothed
    state: str = "running"    # running | done | failed
    note: str = ""
    _at: float = 0.0
    _at_bytes: int = 0

    @property
    def progress(self) -> str:
        if not self.total:
            return human_bytes(self.done)
        return f"{100 * self.done / self.total:.0f}% of {human_bytes(self.total)}"

    @property
    def eta(self) -> str:
        if self.state != "running" or not self.total or self.rate <= 0:
            return ""
        return human_seconds((self.total - self.done) / self.rate)

    @property
    def outcome(self) -> str:
        if self.state == "running":
            return self.note or "…"
        return ("✓ " if self.state == "done" else "✗ ") + self.note


class Transfers:
    """The rows, in the order they started; ``changed`` is called with a
    row's key whenever it changes (the view redraws that row)."""

    def __init__(self, clock, changed=lambda key: None):
        self.clock = clock
        self.changed = changed
        self.rows: dict[int, Row] = {}

    # FileActions' watcher interface (called on the reactor's side; the
    # window hands the calls over to its own thread first).
    def started(self, key: int, name: str, direction: str, peer: str) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row(key, name, direction, peer)
        row.state, row.note, row.rate = "running", "", 0.0
        row._at, row._at_bytes = self.clock(), row.done
        self.changed(key)

    def moved(self, key: int, done: int, total: int, note: str = "") -> None:
        row = self.rows.get(key)
        if row is None:
            return
        now = self.clock()
        if now > row._at and done >= row._at_bytes:
            sample = (done - row._at_bytes) / (now - row._at)
            row.rate = sample if row.rate <= 0 else (RATE_WEIGHT * sample
                                                     + (1 - RATE_WEIGHT) * row.rate)
        row._at, row._at_bytes = now, done
        row.done, row.total, row.note = done, total or row.total, note
        self.changed(key)

    def ended(self, key: int, ok: bool, note: str, name: str = "", size: int = 0) -> None:
        row = self.rows.get(key)
        if row is None:
            return
        row.state = "done" if ok else "failed"
        row.note = note
        row.name = name or row.name
        row.total = size or row.total
        if ok and row.total:
            row.done = row.total
        self.changed(key)

    def remove_finished(self) -> list[int]:
        """Clear the rows that are over; returns their keys."""
        gone = [key for key, row in self.rows.items() if row.state != "running"]
        for key in gone:
            del self.rows[key]
        return gone


@dataclass
class Server:
    ip: str
    port: int
    name: str
    version: str

    @property
    def address(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


class ServerList:
    """Servers that answered, one per address, sorted by name."""

    def __init__(self, default_port: int):
        self.default_port = default_port
        self.servers: dict[str, Server] = {}

    def heard(self, ip: str, info: dict) -> Server:
        port = info.get("chat_port")
        if not isinstance(port, int) or not 0 < port < 65536:
            port = self.default_port
        name = str(info.get("server") or "?")[:64]
        server = Server(ip, port, name, str(info.get("version") or "?")[:16])
        self.servers[server.address] = server
        return server

    def sorted(self) -> list[Server]:
        return sorted(self.servers.values(), key=lambda s: (s.name.casefold(), s.address))
