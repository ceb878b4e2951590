"""The desktop window's two side windows: Find servers and Neighbours.

Each is a ``Toplevel`` that shows what it is given and reports a choice
through a callback; the searching and scanning happen on the reactor's
side (:class:`~tekcos.gui.link.Link`).
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from tekcos.gui import neighbours


class ServerFinder:
    """The servers that answered; a double-click calls ``chosen(address)``."""

    def __init__(self, root, chosen):
        self.top = tk.Toplevel(root)
        self.top.title("Find servers")
        self.tree = ttk.Treeview(self.top, columns=("name", "address", "version"),
                                 show="headings", height=8)
        for column in ("name", "address", "version"):
            self.tree.heading(column, text=column.capitalize())
        self.tree.pack(fill="both", expand=True, padx=6, pady=6)
        self.tree.bind("<Double-Button-1>", lambda e: self._chosen(chosen))
        self.note = ttk.Label(self.top, text="looking…", padding=6)
        self.note.pack(fill="x")
        self.top.bind("<Escape>", lambda e: self.top.destroy())

    def exists(self) -> bool:
        return bool(self.top.winfo_exists())

    def show(self, servers, how: str) -> None:
        if not self.exists():
            return
        self.tree.delete(*self.tree.get_children())
        for server in servers.sorted():
            self.tree.insert("", "end", iid=server.address,
                             values=(server.name, server.address, server.version))
        self.note.configure(text=f"{len(servers.servers)} found ({how})"
                            if servers.servers else f"none answered ({how})")

    def _chosen(self, chosen) -> None:
        selection = self.tree.selection()
        if selection:
            self.top.destroy()
            chosen(selection[0])


class NeighboursWindow:
    """A sortable table of neighbours (click a heading; again to reverse).
    ``ask_server()`` and ``scan_here()`` are its two buttons; ``changed()``
    is called after each redraw."""

    def __init__(self, root, ask_server, scan_here, changed):
        self.changed = changed
        self.rows: list = []
        self.sorted_by, self.descending = "ip", False
        top = self.top = tk.Toplevel(root)
        top.title("Neighbours")
        top.geometry("980x420")
        bar = ttk.Frame(top, padding=6)
        bar.pack(fill="x")
        ttk.Button(bar, text="The server's LAN", command=ask_server).pack(side="left")
        ttk.Button(bar, text="Scan my LAN", command=lambda: (
            self.note.configure(text="scanning…"), scan_here())).pack(side="left", padx=4)
        self.tree = ttk.Treeview(top, columns=neighbours.COLUMNS, show="headings")
        for column, width in zip(neighbours.COLUMNS, (130, 150, 200, 80, 180, 240)):
            title = {"ip": "IP", "mac": "MAC", "rtt": "RTT", "ipv6": "IPv6"}.get(
                column, column.capitalize())
            self.tree.heading(column, text=title, command=lambda c=column: self.sort(c))
            self.tree.column(column, width=width,
                             stretch=column in ("vendor", "flags", "ipv6"))
        self.tree.pack(fill="both", expand=True, padx=6)
        self.note = ttk.Label(top, text="", padding=6)
        self.note.pack(fill="x")
        top.bind("<Escape>", lambda e: (top.destroy(), changed()))
        top.focus_set()

    def exists(self) -> bool:
        return bool(self.top.winfo_exists())

    def show(self, rows, summary: str | None = None) -> None:
        if not self.exists():
            return
        self.rows = rows
        if summary is not None:
            self.note.configure(text=summary)
        self._fill()

    def sort(self, column: str) -> None:
        self.descending = self.sorted_by == column and not self.descending
        self.sorted_by = column
        self._fill()

    def shown(self) -> list:
        return [self.tree.item(iid, "values") for iid in self.tree.get_children()]

    def _fill(self) -> None:
        self.tree.delete(*self.tree.get_children())
        for row in neighbours.sorted_rows(self.rows, self.sorted_by, self.descending):
            self.tree.insert("", "end", values=(row.ip, row.mac, row.vendor, row.rtt, row.flags,
                                                   row.ipv6))
        self.changed()
