"""The chat hub: who is connected, which rooms exist, and fan-out.

Plain objects only (no Twisted): a :class:`Hub` talks to each connected user
through the narrow member interface that :class:`tekcos.chat.session.ChatSession`
provides:

* ``member.nick`` / ``member.room`` / ``member.last_active``
* ``member.operator`` (a server operator), ``member.away`` (text or ""),
  ``member.ignored`` (look keys of the nicks it ignores), ``member.peer.host``
  for bans (:mod:`tekcos.chat.moderation`)
* ``member.write(data)``: queue one or more CRLF-terminated UTF-8 lines
  (the member transcodes if its connection uses another charset);
* ``member.send(text)``: queue one line of text for this member only.

Every user is in exactly one room at a time; everyone starts in ``lobby``.
Whoever creates a room runs it (kick, ban, invite-only: moderation.py).
Rooms other than the lobby disappear when their last member leaves, so
creating rooms cannot grow the server's memory without bound.
"""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable

from tekcos.chat import moderation
from tekcos.chat.names import look_keys, name_key, nick_error, room_error
from tekcos.ratelimit import TokenBucket
from tekcos.text import clean_text, human_size

LOBBY = "lobby"
MAX_DORMANT = 1000       # empty rooms whose topic and history are kept


class Room:
    __slots__ = ("name", "key", "members", "topic", "history", "history_bytes", "joined", "left",
                 "rules")

    def __init__(self, name: str, history: int):
        self.name = name
        self.key = name_key(name)
        # dict as an insertion-ordered set: join order is the /who order.
        self.members: dict = {}
        self.topic = ""
        self.history: deque[str] | None = deque(maxlen=history) if history else None
        self.history_bytes = 0
        # Arrivals and departures not yet told, in a crowded room.
        self.joined = 0
        self.left = 0
        self.rules = None     # operators, bans, invitations (chat/moderation.py)

    def remember(self, text: str, max_bytes: int) -> None:
        """Keep ``text`` in the history, bounded by lines and by bytes."""
        history = self.history
        if history is None:
            return
        if len(history) == history.maxlen:
            self.history_bytes -= len(history[0])
        history.append(text)
        self.history_bytes += len(text)
        while self.history_bytes > max_bytes and history:
            self.history_bytes -= len(history.popleft())


def format_idle(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


class Hub:
    """Rooms, the nick registry and message fan-out.

    ``now`` returns the current time in seconds (inject ``reactor.seconds`` or a
    ``task.Clock().seconds``); ``localtime`` turns it into a struct_time for the
    ``[HH:MM]`` stamps.
    """

    def __init__(self, now: Callable[[], float], history: int = 20,
                 localtime: Callable[[float], time.struct_time] = time.localtime,
                 history_bytes: int = 64 * 1024, crowd: int = 100,
                 push_rate: float = 5.0, push_burst: int = 20):
        self.now = now
        self.history_size = history
        # History is bounded in bytes too: it is replayed to every joiner.
        self.history_bytes = history_bytes
        # Rooms with more members than this summarise joins and quits.
        self.crowd = crowd
        self.push_rate = push_rate
        self.push_burst = push_burst
        self._push_buckets: dict[str, TokenBucket] = {}
        self.pushes_enabled = True
        self._localtime = localtime
        self._stamp_minute = -1
        self._stamp = ""
        self._batch_depth = 0
        self.pending: dict[Room, list[bytes]] = {}
        self.speakers: dict[Room, object] = {}   # who spoke in a pending batch
        self.closing = False  # set on shutdown: no per-user quit notices
        self.nicks: dict[str, object] = {}
        self.looks: dict[str, object] = {}     # TR39 skeleton keys -> member
        self.rooms: dict[str, Room] = {}
        # Rooms nobody is in: their topic and history, until someone joins
        # again (at most MAX_DORMANT, the least recently used go first).
        self.dormant: dict[str, tuple[str, list[str]]] = {}
        # Where topics, history and the file list are kept across restarts
        # (tekcos.store.Store, or None): add_line, set_topic, add_file.
        self.store = None
        # Files addressed to people (tekcos.delivery.Deliveries, or None).
        self.deliveries = None
        self.lobby = self._room(LOBBY)
        self.files: deque = deque(maxlen=100)   # (time, who, name, size)
        self.dropped_push_lines = 0
        # Counters for the operators' metrics (tekcos.web.metrics).
        self.lines_in = 0            # chat lines said (say, /me, /msg)
        self._room_list: list | None = None   # cache of room_list()
        self.lines_out = 0           # lines written to members by room fan-out
        self.dropped_flood = 0       # input lines dropped by flood control
        self.dropped_slow = 0        # clients cut off for not reading
        self.neighbourhood = None               # set when LAN scanning is configured
        self.oper_password = ""                 # for /oper (empty: nobody)
        self.log: Callable[[str], None] = lambda text: None   # the operator's log
        self.ignoring: set = set()              # members with an /ignore list

    def restore(self, snapshot) -> None:
        """Topics, history and the file list as a :class:`tekcos.store.Snapshot`
        left them (at start-up, before anyone connects)."""
        for when, who, name, size in snapshot.files:
            self.files.append((when, who, name, size))
        for key, (name, topic, lines) in snapshot.rooms.items():
            room = self.rooms.get(key)
            if room is None:
                self._keep_dormant(key, topic, lines)
                continue
            room.topic = topic
            for line in lines:
                room.remember(line, self.history_bytes)
        self._room_list = None

    def _keep_dormant(self, key: str, topic: str, lines: list[str]) -> None:
        if not topic and not lines:
            return
        self.dormant.pop(key, None)
        if len(self.dormant) >= MAX_DORMANT:
            self.dormant.pop(next(iter(self.dormant)))
        self.dormant[key] = (topic, lines)

    # -- time stamps --------------------------------------------------------
    def stamp(self) -> str:
        """``[HH:MM]`` for now; cached per minute because fan-out is hot."""
        t = self.now()
        minute = int(t // 60)
        if minute != self._stamp_minute:
            self._stamp_minute = minute
            self._stamp = time.strftime("[%H:%M]", self._localtime(t))
        return self._stamp

    # -- rooms ----------------------------------------------------------------
    def _room(self, name: str) -> Room:
        key = name_key(name)
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(name, self.history_size)
            self._room_list = None
            kept = self.dormant.pop(key, None)
            if kept is not None:   # an empty room's topic and history come back
                room.topic = kept[0]
                for line in kept[1]:
                    room.remember(line, self.history_bytes)
        return room

    def broadcast(self, room: Room, text: str, record: bool = False, speaker=None) -> None:
        """Send one line to every member of ``room``; keep it in history if
        ``record``.  Encoded once: every member gets the same bytes.  Inside
        :meth:`batch` the line is queued and written with the others."""
        if room.joined or room.left:
            self._summarise(room)
        if record:
            room.remember(text, self.history_bytes)
            if self.store is not None:
                self.store.add_line(room.key, room.name, text, self.now())
        self.lines_out += len(room.members)
        data = (text + "\r\n").encode("utf-8", "replace")
        if speaker is not None and self.ignoring:
            deaf = [m for m in self.ignoring
                    if m.room is room and moderation.ignores(m, speaker)]
            if deaf:   # written now, past those who ignore the speaker
                if self.pending:
                    self.flush()
                for member in list(room.members):
                    if member not in deaf:
                        member.write(data)
                return
        if self._batch_depth:
            queued = self.pending.get(room)
            if queued is None:
                self.pending[room] = [data]
            else:
                queued.append(data)
            if speaker is not None:
                self.speakers[room] = speaker
            return
        self._write_room(room, data, speaker)

    @staticmethod
    def _write_room(room: Room, data: bytes, speaker=None) -> None:
        """``data`` to every member; the one who spoke first: in a room of
        thousands the fan-out takes a while, and the person who typed the
        line should see it at once (everyone else gets it in the same pass)."""
        if speaker is not None and speaker in room.members:
            speaker.write(data)
            # A member can drop out while we write (slow consumer).
            for member in list(room.members):
                if member is not speaker:
                    member.write(data)
            return
        for member in list(room.members):
            member.write(data)

    @contextmanager
    def batch(self):
        """Coalesce room output while one chunk of input is handled.

        A sender's read often holds hundreds of lines; writing each of them to
        each member costs a transport write per line per member.  Inside a
        batch each member gets one write per room instead, at the end of the
        same reactor callback, so nothing is delayed.  Order per member is
        kept: anything else that writes (a reply, a join, a part) calls
        :meth:`flush` first.
        """
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self.pending:
                self.flush()

    def flush(self) -> None:
        """Write out every queued room line."""
        while self.pending:
            pending, self.pending = self.pending, {}
            speakers, self.speakers = self.speakers, {}
            for room, chunks in pending.items():
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._write_room(room, data, speakers.get(room))

    def _summarise(self, room: Room) -> None:
        """Tell a crowded room who came and went since its last line."""
        joined, left = room.joined, room.left
        room.joined = room.left = 0
        parts = [f"{joined} joined"] if joined else []
        if left:
            parts.append(f"{left} left")
        self.broadcast(room, f"{self.stamp()} -- {', '.join(parts)} "
                             f"({len(room.members)} here now)")

    def _crowded(self, room: Room) -> bool:
        return self.crowd > 0 and len(room.members) >= self.crowd

    def history_lines(self, room: Room, count: int | None = None) -> list[str]:
        """The room's last ``count`` lines (all it keeps by default), framed."""
        kept = list(room.history or ())
        lines = kept[-count:] if count else kept
        if not lines:
            return []
        return ([f"*** Last {len(lines)} lines of {room.name}:"]
                + [f"(history) {line}" for line in lines]
                + ["*** End of history."])

    def _enter(self, member, room: Room, replay: bool = True) -> None:
        if self.pending:
            self.flush()
        member.room = room
        if self._crowded(room):
            room.joined += 1
        else:
            self.broadcast(room, f"{self.stamp()} -- {member.nick} joined {room.name}")
        if self.pending:  # the notice is for those already there
            self.flush()
        room.members[member] = None
        self._room_list = None
        if replay and room.history:
            member.write_lines(self.history_lines(room))
        count = len(room.members)
        who = "you are alone here" if count == 1 else f"{count} people here"
        member.send(f"*** You are in {room.name} ({who}). /help lists commands.")
        if room.topic:
            member.send(f"*** Topic of {room.name}: {room.topic}")

    def _leave_room(self, member, notice: str) -> None:
        room = member.room
        if room is None:
            return
        if self.pending:
            self.flush()
        room.members.pop(member, None)
        moderation.left(room, member)
        self._room_list = None
        member.room = None
        if not room.members:
            # The last one out: the room goes (the lobby stays).  During
            # shutdown members leave one by one; only the last one removes it.
            if room is not self.lobby:
                key = name_key(room.name)
                self.rooms.pop(key, None)
                self._keep_dormant(key, room.topic, list(room.history or ()))
        elif self.closing:
            pass
        elif self._crowded(room):
            room.left += 1
        else:
            self.broadcast(room, f"{self.stamp()} -- {notice}")

    # -- membership -----------------------------------------------------------
    def register(self, member, nick: str) -> str | None:
        """Give ``member`` its first nick and put it in the lobby.
        Returns the reason for refusal, or None on success."""
        error = self._nick_refusal(nick)
        if error:
            return error
        member.nick = nick
        self._claim(member, nick)
        self._enter(member, self.lobby)
        return None

    def _claim(self, member, nick: str) -> None:
        self.nicks[name_key(nick)] = member
        for key in look_keys(nick):
            self.looks[key] = member

    def _release(self, member, nick: str) -> None:
        if self.nicks.get(name_key(nick)) is member:
            del self.nicks[name_key(nick)]
        for key in look_keys(nick):
            if self.looks.get(key) is member:
                del self.looks[key]

    def _nick_refusal(self, nick: str, current=None) -> str | None:
        error = nick_error(nick)
        if error:
            return f"Invalid nick: {error}."
        holder = self.nicks.get(name_key(nick))
        if holder is not None and holder is not current:
            return f"The nick {nick} is taken; choose another."
        for key in look_keys(nick):
            holder = self.looks.get(key)
            if holder is not None and holder is not current:
                return (f"The nick {nick} looks like {holder.nick}, who is here; "
                        "choose another.")
        return None

    def rename(self, member, nick: str) -> str | None:
        error = self._nick_refusal(nick, current=member)
        if error:
            return error
        old = member.nick
        if old == nick:
            return f"You are already {nick}."
        self._release(member, old)
        self._claim(member, nick)
        member.nick = nick
        self.broadcast(member.room, f"{self.stamp()} -- {old} is now known as {nick}")
        return None

    def join(self, member, name: str) -> str | None:
        error = room_error(name)
        if error:
            return f"Invalid room: {error}."
        key = name_key(name)
        if member.room is not None and name_key(member.room.name) == key:
            return f"You are already in {member.room.name}."
        existing = self.rooms.get(key)
        if existing is not None:
            refusal = moderation.join_refusal(existing, member)
            if refusal:
                return refusal[0].upper() + refusal[1:]
        self._leave_room(member, f"{member.nick} left for {existing.name if existing else name}")
        room = existing or self._room(name)
        if existing is None and room is not self.lobby:
            moderation.created(room, member)
        self._enter(member, room)
        return None

    def move(self, member, room: Room, notice: str) -> None:
        """Take ``member`` out of its room (telling it ``notice``) into ``room``."""
        self._leave_room(member, notice)
        self._enter(member, room)

    def notice(self, room: Room, text: str) -> None:
        """A notice to a room about its members (kept in its history)."""
        self.broadcast(room, f"{self.stamp()} -- {text}", record=True)

    def to_everyone(self, text: str) -> None:
        """One line to every registered user, wherever they are."""
        if self.pending:
            self.flush()
        for member in list(self.nicks.values()):
            member.send(text)

    def part(self, member) -> str | None:
        if member.room is self.lobby:
            return "You are in the lobby already; /join ROOM to go elsewhere."
        return self.join(member, LOBBY)

    def leave(self, member, reason: str) -> None:
        """The member is gone (quit or connection lost)."""
        if member.nick is None:
            return
        self._leave_room(member, f"{member.nick} has quit ({reason})")
        self._release(member, member.nick)
        self.ignoring.discard(member)
        if self.deliveries is not None:
            self.deliveries.session_gone(member)

    def member(self, nick: str | None):
        """The member registered under ``nick`` (any case), or None."""
        return self.nicks.get(name_key(nick)) if nick else None

    def room_members(self, name: str) -> list | None:
        """The members of room ``name``, or None if there is no such room."""
        room = self.rooms.get(name_key(name))
        return None if room is None else list(room.members)

    # -- talking ----------------------------------------------------------------
    def say(self, member, text: str) -> None:
        self.lines_in += 1
        self.broadcast(member.room, f"{self.stamp()} <{member.nick}> {text}", record=True,
                       speaker=member)

    def act(self, member, text: str) -> None:
        self.lines_in += 1
        self.broadcast(member.room, f"{self.stamp()} * {member.nick} {text}", record=True,
                       speaker=member)

    def whisper(self, member, nick: str, text: str) -> str | None:
        if self.pending:
            self.flush()
        target = self.nicks.get(name_key(nick))
        if target is None:
            return f"No such nick: {nick}. /who lists your room."
        stamp = self.stamp()
        # Someone who ignores the sender does not get it (IRC's habit: the
        # sender is not told).
        if not moderation.ignores(target, member):
            target.send(f"{stamp} *{member.nick}* {text}")
        if target is not member:
            member.send(f"{stamp} -> *{target.nick}* {text}")
            if target.away:
                member.send(f"*** {target.nick} is away: {target.away}")
        return None

    def set_topic(self, member, topic: str) -> None:
        room = member.room
        room.topic = topic
        self._room_list = None
        if self.store is not None:
            self.store.set_topic(room.key, room.name, topic, self.now())
        what = f"changed the topic to: {topic}" if topic else "cleared the topic"
        self.broadcast(room, f"{self.stamp()} -- {member.nick} {what}", record=True)

    # -- pushes (files and messages over UDP) -------------------------------------
    def push_received(self, received) -> None:
        """A push completed: announce files in the lobby, say messages there.

        Pushed lines pass a token bucket per sender address, like chat lines
        per connection: a script that pushes in a loop cannot flood the lobby.
        """
        sender = clean_text(received.sender).replace(" ", "_")[:32] or "anonymous"
        address = received.address[0]
        who = f"{sender}@{address}"
        stamp = self.stamp()
        if received.kind == "file":
            entry = (self.now(), who, clean_text(received.name), received.size)
            self.files.append(entry)
            if self.store is not None:
                self.store.add_file(*entry)
            if self._push_allowed(address):
                self.broadcast(self.lobby, f"{stamp} -- {who} pushed {clean_text(received.name)} "
                                           f"({human_size(received.size)})", record=True)
            return
        for line in received.text.splitlines():
            line = clean_text(line).strip()
            if line and self._push_allowed(address):
                self.broadcast(self.lobby, f"{stamp} <{who}> {line}", record=True)

    def _push_allowed(self, address: str) -> bool:
        now = self.now()
        bucket = self._push_buckets.get(address)
        if bucket is None:
            if len(self._push_buckets) >= 4096:   # forget the oldest address
                self._push_buckets.pop(next(iter(self._push_buckets)))
            bucket = self._push_buckets[address] = TokenBucket(self.push_rate,
                                                               self.push_burst, now)
        if bucket.allow(now):
            return True
        self.dropped_push_lines += 1
        return False

    def announce(self, text: str) -> None:
        """A server notice to the lobby (kept in its history)."""
        self.broadcast(self.lobby, f"{self.stamp()} -- {text}", record=True)

    # -- listings ---------------------------------------------------------------
    def who(self, room: Room) -> Iterable[str]:
        now = self.now()
        for m in room.members:
            away = f", away: {m.away}" if m.away else ""
            op = "@" if moderation.is_op(room, m) and room is not self.lobby else ""
            yield f"{op}{m.nick} (idle {format_idle(now - m.last_active)}{away})"

    def room_list(self) -> list[tuple[str, int, str]]:
        """Every room as (name, members, topic), the fullest first.  Sorted
        once per change of rooms, members or topics, not once per asker:
        every browser's state asks for it."""
        if self._room_list is None:
            self._room_list = sorted(((r.name, len(r.members), r.topic)
                                      for r in self.rooms.values()),
                                     key=lambda item: (-item[1], name_key(item[0])))
        return self._room_list
