"""What the desktop window shows, without Tk: tabs, unread counts, offers.

:class:`ChatModel` reads the server's lines as a telnet user gets them
(one stream, lines of the user's other rooms tagged ``#room``, private
messages as ``*nick*``) and files each under a tab: one per room the user
is in, one per private conversation, and the server's own tab for what
comes before a room.  It keeps unread and mention counts for the tabs not
looked at, the member list of the current room and the file offers waiting
for an answer.  What the user types in a tab becomes the lines to send:
``/switch`` first when the tab is not the server's current room, ``/msg``
in a private tab.

:class:`InputLine` is the input's history (Up/Down) and nick completion
(Tab).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tekcos.chat.terminal import Members

SERVER = ""              # the key of the server's tab
MAX_LINES = 2000         # lines kept per tab; older ones go
MAX_HISTORY = 200        # typed lines remembered

_STAMP = r"^\[\d\d:\d\d\] "
_TAGGED = re.compile(_STAMP + r"(#\S+) ")
_PRIVATE_IN = re.compile(_STAMP + r"\*([^\s*]+)\* ")
_PRIVATE_OUT = re.compile(_STAMP + r"-> \*([^\s*]+)\* ")
_SAID = re.compile(_STAMP + r"(?:#\S+ )?<([^>\s]+)> (.*)$")
_ENTERED = re.compile(r"^\*\*\* You are in (\S+) \(")
_TALKING = re.compile(r"^\*\*\* Now talking in (\S+) \(")
_LEFT = re.compile(r"^\*\*\* You left (\S+?)(?:; now talking in (\S+?))?\.$")
_WHO = re.compile(r"^\*\*\* \S+ \(\d+\): ")
_HISTORY = re.compile(r"^\*\*\* Last \d+ lines of (\S+):$")
_OFFER = re.compile(r"^\*\*\* (\S+) offers (?:(#\S+) )?(?:you )?(.+) \(([^)]*)\)\. "
                    r"/accept (\d+) or /decline \d+$")
_LINK = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def room_key(name: str) -> str:
    """A room's tab key: its tag, as the server puts it in front of lines."""
    return name if name.startswith("#") else "#" + name


def links(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each http(s) link in ``text``."""
    return [m.span() for m in _LINK.finditer(text)]


@dataclass
class Line:
    text: str
    kind: str = "said"        # said | mine | notice | history | private | mention


@dataclass
class Tab:
    key: str
    kind: str                 # room | private | server
    lines: list[Line] = field(default_factory=list)
    unread: int = 0
    mentions: int = 0
    dropped: int = 0          # lines let go from the front (MAX_LINES)

    @property
    def title(self) -> str:
        name = self.key or "server"
        if self.mentions:
            return f"{name} ({self.unread}, @{self.mentions})"
        return f"{name} ({self.unread})" if self.unread else name


@dataclass
class Offer:
    number: int
    sender: str
    name: str
    size: str
    room: str = ""

    @property
    def text(self) -> str:
        where = f" in {self.room}" if self.room else ""
        return f"{self.sender} offers you {self.name} ({self.size}){where}"


class ChatModel:
    """The tabs of one connection.  ``feed(line)`` for each server line;
    ``typed(text)`` for what the user enters in the selected tab (returns
    the lines to send); ``select(key)`` when a tab is looked at."""

    def __init__(self, nick: str | None = None):
        self.nick = nick
        self.tabs: dict[str, Tab] = {SERVER: Tab(SERVER, "server")}
        self.current = SERVER       # the room the server sends our lines to
        self.selected = SERVER      # the tab the user looks at
        self.members = Members()    # of the current room
        self.offers: dict[int, Offer] = {}
        self._history_of: str | None = None   # a replay in progress: its room
        self.wants_who = False      # the current room changed: its members are unknown
        self._quiet_who = 0         # /who answers asked for the member list, not shown

    # -- server lines ----------------------------------------------------------------
    def feed(self, line: str) -> str | None:
        """File ``line``; returns the key of the tab it went to (None: it
        answered :meth:`ask_who` and is not shown)."""
        if not _TAGGED.match(line):     # another room's lines say nothing of this one
            self.members.seen(line)
        if self._quiet_who and _WHO.match(line):
            self._quiet_who -= 1
            return None
        if self._history_of is not None:
            if line.startswith("(history) "):
                return self._add(self._history_of, line[len("(history) "):], "history")
            self._history_of = None
        if (m := _HISTORY.match(line)) is not None:
            self._history_of = self._room(room_key(m.group(1))).key
            return self._history_of
        if (m := _ENTERED.match(line)) is not None or (m := _TALKING.match(line)) is not None:
            self.current = self._room(room_key(m.group(1))).key
            self.selected = self.current
            self.wants_who = True
            return self._add(self.current, line, "notice")
        if (m := _LEFT.match(line)) is not None:
            self._close(room_key(m.group(1)))
            if m.group(2):
                self.current = self._room(room_key(m.group(2))).key
                self.selected = self.current
                self.wants_who = True
            return self._add(self.current, line, "notice")
        if (m := _OFFER.match(line)) is not None:
            sender, room, name, size, number = m.groups()
            self.offers[int(number)] = Offer(int(number), sender, name, size, room or "")
            return self._add(self.selected, line, "notice")
        if (m := _TAGGED.match(line)) is not None:
            return self._add(self._room(m.group(1)).key, line, self._kind(line))
        if (m := _PRIVATE_OUT.match(line)) is not None:
            return self._add(self._private(m.group(1)).key, line, "mine")
        if (m := _PRIVATE_IN.match(line)) is not None:
            return self._add(self._private(m.group(1)).key, line, "private")
        if re.match(_STAMP, line):
            return self._add(self.current, line, self._kind(line))
        # Replies to commands go where the user typed the command.
        return self._add(self.selected if self.selected in self.tabs else SERVER, line, "notice")

    def _kind(self, line: str) -> str:
        said = _SAID.match(line)
        if said is None:
            return "notice" if " -- " in line[:12] else "said"
        if self.nick and said.group(1) == self.nick:
            return "mine"
        if self.nick and re.search(rf"(?<![\w-]){re.escape(self.nick)}(?![\w-])",
                                   said.group(2), re.IGNORECASE):
            return "mention"
        return "said"

    def _room(self, key: str) -> Tab:
        tab = self.tabs.get(key)
        if tab is None:
            tab = self.tabs[key] = Tab(key, "room")
        return tab

    def _private(self, nick: str) -> Tab:
        tab = self.tabs.get(nick)
        if tab is None:
            tab = self.tabs[nick] = Tab(nick, "private")
        return tab

    def _close(self, key: str) -> None:
        if key in self.tabs and key != SERVER:
            del self.tabs[key]
        if self.selected == key:
            self.selected = self.current if self.current in self.tabs else SERVER

    def _add(self, key: str, text: str, kind: str) -> str:
        tab = self.tabs[key]
        tab.lines.append(Line(text, kind))
        if len(tab.lines) > MAX_LINES:
            cut = len(tab.lines) - MAX_LINES
            del tab.lines[:cut]
            tab.dropped += cut
        if key != self.selected and kind not in ("history", "mine"):
            tab.unread += 1
            if kind in ("mention", "private"):
                tab.mentions += 1
        return key

    def ask_who(self) -> str | None:
        """The line that asks for the current room's members, when they are
        not known (its answer fills :attr:`members` and is not shown)."""
        if not self.wants_who:
            return None
        self.wants_who = False
        self._quiet_who += 1
        return "/who"

    # -- the user ----------------------------------------------------------------------
    def select(self, key: str) -> None:
        if key in self.tabs:
            self.selected = key
            self.tabs[key].unread = self.tabs[key].mentions = 0

    def open_private(self, nick: str) -> None:
        self.select(self._private(nick).key)

    def close(self, key: str) -> list[str]:
        """Close tab ``key``: a room is left (the lines to send), a private
        tab just goes."""
        tab = self.tabs.get(key)
        if tab is None or tab.kind == "server":
            return []
        if tab.kind == "room":
            return [f"/part {key}"]
        self._close(key)
        return []

    def typed(self, text: str) -> list[str]:
        """The lines to send for ``text`` entered in the selected tab."""
        if not text.strip():
            return []
        tab = self.tabs.get(self.selected)
        if text.startswith("/") and not text.startswith("//"):
            return [text]
        if tab is not None and tab.kind == "private":
            return [f"/msg {tab.key} {text}"]
        if tab is not None and tab.kind == "room" and tab.key != self.current:
            return [f"/switch {tab.key}", text]
        return [text]

    def answered(self, number: int) -> Offer | None:
        """The user accepted or declined offer ``number``."""
        return self.offers.pop(number, None)


class InputLine:
    """The input's history and nick completion."""

    def __init__(self, members: Members):
        self.members = members
        self.history: list[str] = []
        self._at = 0
        self._draft = ""

    def entered(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-MAX_HISTORY]
        self._at = len(self.history)
        self._draft = ""

    def up(self, current: str) -> str:
        if self._at == len(self.history):
            self._draft = current
        self._at = max(0, self._at - 1)
        return self.history[self._at] if self.history else current

    def down(self, current: str) -> str:
        if self._at >= len(self.history):
            return current
        self._at += 1
        return self.history[self._at] if self._at < len(self.history) else self._draft

    def complete(self, text: str) -> str:
        """``text`` with its last word completed to a nick of the room (the
        longest common start of several; ``nick: `` at the start of a line)."""
        head, _, word = text.rpartition(" ")
        if not word or word.startswith("/"):
            return text
        found = self.members.completing(word)
        if not found:
            return text
        if len(found) == 1:
            done = found[0] + (": " if not head else " ")
        else:
            done = _common_start(found) or word
            if len(done) < len(word):
                return text
        return f"{head} {done}" if head else done


def _common_start(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n].casefold() == last[n].casefold():
        n += 1
    return first[:n]
