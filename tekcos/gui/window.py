"""The Tk window of ``tekcos gui``: a thin view over the models.

Everything here runs on Tk's thread.  What the user does goes to the
:class:`~tekcos.gui.link.Link` through ``call`` (the reactor's
``callFromThread``); what the server says arrives as calls of the
methods under "from the link" (already on this thread).  What is shown is
decided by :class:`~tekcos.gui.model.ChatModel` and
:class:`~tekcos.gui.transfers.Transfers`; this module only draws it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tkinter as tk
import webbrowser
from tkinter import filedialog, messagebox, simpledialog, ttk

from tekcos.gui.dialogs import NeighboursWindow, ServerFinder
from tekcos.gui.model import ChatModel, InputLine, links
from tekcos.gui.neighbours import TableReader
from tekcos.gui.transfers import ServerList, Transfers, human_bytes
from tekcos.hosts import DEFAULT_PORT

COLUMNS = ("file", "way", "peer", "progress", "rate", "left", "outcome")


class Window:
    def __init__(self, root: tk.Tk, call, link, address: str | None, nick: str,
                 downloads: str, clock, probe: str | None = None):
        self.root = root
        self.call = call            # call(function, *args) on the reactor's thread
        self.link = link
        self.nick = nick
        self.downloads = downloads
        self.probe = probe          # a file to describe the window in (tests, bug reports)
        self.model = ChatModel(nick)
        self.input_line = InputLine(self.model.members)
        self.transfers = Transfers(clock, self._transfer_changed)
        self.servers = ServerList(DEFAULT_PORT)
        self.texts: dict[str, tk.Text] = {}
        self.frames: dict[str, ttk.Frame] = {}
        self.offer_rows: dict[int, ttk.Frame] = {}
        self._probe_due = None
        self.table_reader = TableReader()
        self.neighbour_rows: list = []
        self.neighbours: NeighboursWindow | None = None
        self.finder: ServerFinder | None = None
        self._build(address or "")
        self._render_tabs()

    # -- building ----------------------------------------------------------------------
    def _build(self, address: str) -> None:
        root = self.root
        root.title("tekcos")
        root.geometry("980x640")
        root.minsize(560, 360)
        top = ttk.Frame(root, padding=(6, 6, 6, 0))
        top.pack(fill="x")
        ttk.Label(top, text="Server").pack(side="left")
        self.host = ttk.Entry(top, width=28)
        self.host.insert(0, address)
        self.host.pack(side="left", padx=4)
        self.host.bind("<Return>", lambda e: self.connect())
        ttk.Button(top, text="Connect", command=self.connect).pack(side="left")
        ttk.Button(top, text="Find servers…", command=self.find_servers).pack(side="left", padx=4)
        ttk.Button(top, text="Neighbours", command=self.show_neighbours).pack(side="right")
        self.offers = ttk.Frame(root, padding=(6, 4))
        self.body = ttk.Panedwindow(root, orient="horizontal")
        self.body.pack(fill="both", expand=True, padx=6, pady=6)
        self.notebook = ttk.Notebook(self.body)
        self.notebook.bind("<<NotebookTabChanged>>", self._tab_changed)
        self.body.add(self.notebook, weight=4)
        side = ttk.Frame(self.body)
        ttk.Label(side, text="Members").pack(anchor="w")
        self.member_list = tk.Listbox(side, width=18, activestyle="none")
        self.member_list.pack(fill="both", expand=True)
        self.member_list.bind("<Double-Button-1>", self._member_chosen)
        self.body.add(side, weight=1)
        bottom = ttk.Frame(root, padding=(6, 0, 6, 6))
        bottom.pack(fill="x")
        self.entry = ttk.Entry(bottom)
        self.entry.pack(side="left", fill="x", expand=True)
        self.entry.bind("<Return>", self._entered)
        self.entry.bind("<Up>", lambda e: self._replace_input(self.input_line.up(self.entry.get())))
        self.entry.bind("<Down>",
                        lambda e: self._replace_input(self.input_line.down(self.entry.get())))
        self.entry.bind("<Tab>",
                        lambda e: self._replace_input(self.input_line.complete(self.entry.get())))
        ttk.Button(bottom, text="Send file…", command=self.send_file).pack(side="left", padx=4)
        root.bind("<Control-o>", lambda e: self.send_file())
        root.bind("<Control-n>", lambda e: self.show_neighbours())
        self.panel = ttk.Frame(root, padding=(6, 0, 6, 6))
        self.table = ttk.Treeview(self.panel, columns=COLUMNS, show="headings", height=4)
        for column, width in zip(COLUMNS, (220, 50, 110, 130, 90, 70, 260)):
            self.table.heading(column, text=column.capitalize())
            self.table.column(column, width=width, stretch=column in ("file", "outcome"))
        buttons = ttk.Frame(self.panel)
        buttons.pack(side="right", padx=(4, 0))
        for text, command in (("Cancel", self._cancel), ("Retry", self._retry),
                              ("Clear", self._clear), ("Open folder", self._open_folder)):
            ttk.Button(buttons, text=text, width=11, command=command).pack(fill="x")
        self.table.pack(side="left", fill="x", expand=True)
        self.status_text = ttk.Label(root, text="", anchor="w", padding=(6, 2), relief="sunken")
        self.status_text.pack(fill="x", side="bottom")
        self.entry.focus_set()

    def _text_for(self, key: str) -> tk.Text:
        text = self.texts.get(key)
        if text is not None:
            return text
        frame = ttk.Frame(self.notebook)
        text = tk.Text(frame, wrap="word", state="disabled", height=10, padx=6, pady=4,
                       font="TkDefaultFont", relief="flat", borderwidth=0)
        bar = ttk.Scrollbar(frame, orient="vertical", command=text.yview)
        text.configure(yscrollcommand=bar.set)
        bar.pack(side="right", fill="y")
        text.pack(side="left", fill="both", expand=True)
        text.tag_configure("notice", foreground="#666666")
        text.tag_configure("history", foreground="#8a8a8a")
        text.tag_configure("mine", foreground="#1f4e99")
        text.tag_configure("private", foreground="#7a2a9a")
        text.tag_configure("mention", background="#fff1a8")
        text.tag_configure("link", foreground="#1565c0", underline=True)
        text.tag_bind("link", "<Button-1>", lambda e, t=text: self._open_link(t, e))
        text.tag_bind("link", "<Enter>", lambda e, t=text: t.configure(cursor="hand2"))
        text.tag_bind("link", "<Leave>", lambda e, t=text: t.configure(cursor=""))
        text.shown = 0   # lines of the tab drawn so far (counting the dropped ones)
        self.texts[key] = text
        self.frames[key] = frame
        return text

    # -- from the link -----------------------------------------------------------------
    def server_line(self, line: str) -> None:
        table = self.table_reader.feed(line)
        if table is not None:
            self.neighbours_found(*table)
        self.model.feed(line)
        asked = self.model.ask_who()
        if asked:
            self.call(self.link.user_line, asked)
        self._render_tabs()
        self._render_offers()
        self._render_members()

    def status(self, text: str) -> None:
        self.status_text.configure(text=text)
        self._probe_soon()

    def connected(self, address: str, nick: str) -> None:
        self.root.title(f"tekcos — {nick} on {address}")

    def refused(self, reason: str) -> None:
        nick = simpledialog.askstring("Choose another nick",
                                      f"The server refused the nick {self.nick!r}:\n{reason}\n\n"
                                      "Nick:", parent=self.root)
        if nick:
            self.nick = self.model.nick = nick.strip()
            self.connect()

    def servers_found(self, found: list, how: str) -> None:
        for ip, info in found:
            self.servers.heard(ip, info)
        if self.finder is not None:
            self.finder.show(self.servers, how)

    def neighbours_found(self, rows, summary: str) -> None:
        if rows is not None:
            self.neighbour_rows = rows
        if self.neighbours is not None:
            self.neighbours.show(self.neighbour_rows, summary)

    # -- drawing -----------------------------------------------------------------------
    def _render_tabs(self) -> None:
        model = self.model
        present = set(model.tabs)
        for key in list(self.frames):
            if key not in present:
                self.notebook.forget(self.frames.pop(key))
                del self.texts[key]
        for key, tab in model.tabs.items():
            text = self._text_for(key)
            frame = self.frames[key]
            if str(frame) not in self.notebook.tabs():
                self.notebook.add(frame, text=tab.title)
            elif self.notebook.tab(frame, "text") != tab.title:
                self.notebook.tab(frame, text=tab.title)
            self._draw_lines(text, tab)
        selected = self.frames.get(model.selected)
        if selected is not None and self.notebook.select() != str(selected):
            self.notebook.select(selected)
        self._probe_soon()

    def _draw_lines(self, text: tk.Text, tab) -> None:
        total = tab.dropped + len(tab.lines)
        if text.shown == total:
            return
        at_end = text.yview()[1] >= 0.999
        text.configure(state="normal")
        if text.shown < tab.dropped:       # lines were let go: draw the tab again
            text.delete("1.0", "end")
            text.shown = tab.dropped
        for line in tab.lines[text.shown - tab.dropped:]:
            start = text.index("end-1c")
            text.insert("end", line.text + "\n", (line.kind,))
            for a, b in links(line.text):
                text.tag_add("link", f"{start}+{a}c", f"{start}+{b}c")
        text.shown = total
        text.configure(state="disabled")
        if at_end:
            text.see("end")

    def _render_offers(self) -> None:
        offers = self.model.offers
        for number in [n for n in self.offer_rows if n not in offers]:
            self.offer_rows.pop(number).destroy()
        for number, offer in offers.items():
            if number in self.offer_rows:
                continue
            row = ttk.Frame(self.offers)
            row.pack(fill="x", pady=1)
            ttk.Label(row, text="📄 " + offer.text).pack(side="left")
            row.decline = ttk.Button(row, text="Decline", command=lambda n=number: self._answer(
                n, "decline"))
            row.decline.pack(side="right")
            row.accept = ttk.Button(row, text="Accept", command=lambda n=number: self._answer(
                n, "accept"))
            row.accept.pack(side="right", padx=4)
            self.offer_rows[number] = row
        if offers and not self.offers.winfo_manager():
            self.offers.pack(fill="x", after=self.host.master)
        elif not offers and self.offers.winfo_manager():
            self.offers.pack_forget()

    def _render_members(self) -> None:
        nicks = sorted(self.model.members.nicks, key=str.casefold)
        if list(self.member_list.get(0, "end")) != nicks:
            self.member_list.delete(0, "end")
            for nick in nicks:
                self.member_list.insert("end", nick)

    def _transfer_changed(self, key: int) -> None:
        row = self.transfers.rows.get(key)
        if row is None:
            return
        values = (row.name, "↑" if row.direction == "send" else "↓", row.peer, row.progress,
                  f"{human_bytes(row.rate)}/s" if row.rate else "", row.eta, row.outcome)
        iid = str(key)
        if self.table.exists(iid):
            self.table.item(iid, values=values)
        else:
            self.table.insert("", "end", iid=iid, values=values)
        if not self.panel.winfo_manager():
            self.panel.pack(fill="x", before=self.status_text)
        self._probe_soon()

    # -- the user ----------------------------------------------------------------------
    def connect(self) -> None:
        address = self.host.get().strip()
        if not address:
            self.find_servers()
            return
        self.model = ChatModel(self.nick)
        self.input_line.members = self.model.members
        self._render_tabs()
        self.call(self.link.connect, address, self.nick)

    def _send(self, text: str) -> None:
        for line in self.model.typed(text):
            self.call(self.link.user_line, line)

    def _entered(self, event=None) -> str:
        text = self.entry.get()
        self.entry.delete(0, "end")
        self.input_line.entered(text)
        self._send(text)
        return "break"

    def _replace_input(self, text: str) -> str:
        self.entry.delete(0, "end")
        self.entry.insert(0, text)
        return "break"

    def _tab_changed(self, event=None) -> None:
        chosen = self.notebook.select()
        for key, frame in self.frames.items():
            if str(frame) == chosen and key != self.model.selected:
                self.model.select(key)
                self._render_tabs()
                break

    def _member_chosen(self, event=None) -> None:
        chosen = self.member_list.curselection()
        if chosen and self.member_list.get(chosen[0]) != self.nick:
            self.model.open_private(self.member_list.get(chosen[0]))
            self._render_tabs()

    def _answer(self, number: int, verb: str) -> None:
        offer = self.model.answered(number)
        if offer is None:
            return
        if verb == "decline":
            self.call(self.link.user_line, f"/decline {number}")
        else:
            path = filedialog.asksaveasfilename(
                parent=self.root, title=f"Save {offer.name} from {offer.sender}",
                initialdir=self.downloads, initialfile=offer.name)
            if not path:                  # the dialog was closed: the offer waits
                self.model.offers[number] = offer
                return
            self.call(self.link.accept, number, offer.name, offer.sender, path)
        self._render_offers()

    def send_file(self) -> None:
        tab = self.model.tabs.get(self.model.selected)
        if tab is None or tab.kind == "server":
            messagebox.showinfo("Send file", "Join a room or open a conversation first.",
                                parent=self.root)
            return
        path = filedialog.askopenfilename(parent=self.root, title=f"Send a file to {tab.key}")
        if path:
            self.call(self.link.send_file, tab.key, path)

    def _chosen_transfers(self) -> list[int]:
        return [int(iid) for iid in self.table.selection()]

    def _cancel(self) -> None:
        for key in self._chosen_transfers():
            self.call(self.link.cancel, key)

    def _retry(self) -> None:
        for key in self._chosen_transfers():
            if self.transfers.rows[key].state == "failed":
                self.call(self.link.retry, key)

    def _clear(self) -> None:
        for key in self.transfers.remove_finished():
            self.table.delete(str(key))

    def _open_folder(self) -> None:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        try:
            subprocess.Popen([opener, os.path.abspath(self.downloads)])
        except OSError:
            messagebox.showinfo("Downloads", f"Files are saved in {os.path.abspath(self.downloads)}",
                                parent=self.root)

    def _open_link(self, text: tk.Text, event) -> None:
        index = text.index(f"@{event.x},{event.y}")
        for start, end in zip(*[iter(text.tag_ranges("link"))] * 2):
            if text.compare(start, "<=", index) and text.compare(index, "<", end):
                webbrowser.open(text.get(start, end))
                return

    def find_servers(self) -> None:
        if self.finder is None or not self.finder.exists():
            self.finder = ServerFinder(self.root, self._server_chosen)
        self.call(self.link.find_servers)

    def _server_chosen(self, address: str) -> None:
        self.host.delete(0, "end")
        self.host.insert(0, address)
        self.connect()

    def show_neighbours(self) -> None:
        """The Neighbours window: the server's last scan (``/neighbors``),
        or this machine's own LAN (Scan my LAN, where it may scan)."""
        if self.neighbours is None or not self.neighbours.exists():
            self.neighbours = NeighboursWindow(
                self.root, lambda: self.call(self.link.user_line, "/neighbors"),
                lambda: self.call(self.link.scan_local), self._probe_soon)
        self.neighbours.show(self.neighbour_rows)
        self.call(self.link.user_line, "/neighbors")

    # -- a description of the window, for tests and bug reports ------------------------
    def _probe_soon(self) -> None:
        if self.probe and self._probe_due is None:
            self._probe_due = self.root.after(30, self._write_probe)

    def _member_at(self, index: int) -> dict:
        box = self.member_list.bbox(index)
        if not box:
            return {}
        return {"x": self.member_list.winfo_rootx() + box[0] + box[2] // 2,
                "y": self.member_list.winfo_rooty() + box[1] + box[3] // 2}

    def _write_probe(self) -> None:
        self._probe_due = None
        selected = self.notebook.select()
        described = {
            "title": self.root.title(),
            "status": self.status_text.cget("text"),
            "tabs": [{"title": self.notebook.tab(frame, "text"), "key": key,
                      "selected": str(frame) == selected,
                      "text": self.texts[key].get("1.0", "end-1c")}
                     for key, frame in self.frames.items()],
            "members": [{"nick": nick, **self._member_at(i)}
                        for i, nick in enumerate(self.member_list.get(0, "end"))],
            "offers": [_where(row.accept) | {"text": row.winfo_children()[0].cget("text")}
                       for row in self.offer_rows.values()],
            "transfers": [self.table.item(iid, "values") for iid in self.table.get_children()],
            "neighbours": self.neighbours.shown()
            if self.neighbours is not None and self.neighbours.exists() else None,
        }
        partial = self.probe + ".part"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(described, f, ensure_ascii=False)
        os.replace(partial, self.probe)


def _where(widget) -> dict:
    """The middle of ``widget`` on the screen."""
    return {"x": widget.winfo_rootx() + widget.winfo_width() // 2,
            "y": widget.winfo_rooty() + widget.winfo_height() // 2}
