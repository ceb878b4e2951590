"""The chat hub: who is connected, which rooms exist, and fan-out.

Plain objects only (no Twisted): a :class:`Hub` talks to each connected user
through the narrow member interface that :class:`tekcos.chat.session.ChatSession`
provides:

* ``member.nick`` / ``member.last_active``
* ``member.rooms``: the rooms it is in (a dict used as an ordered set, the
  hub keeps it), ``member.room``: the one its lines go to (its current
  room), ``member.tags``: whether it wants every room line tagged with its
  room (the web page sorts lines into views) or only those of its other
  rooms (telnet: one stream, the current room untagged)
* ``member.operator`` (a server operator), ``member.away`` (text or ""),
  ``member.ignored`` (look keys of the nicks it ignores), ``member.peer.host``
  for bans (:mod:`tekcos.chat.moderation`)
* ``member.write(data)``: queue one or more CRLF-terminated UTF-8 lines
  (the member transcodes if its connection uses another charset);
* ``member.send(text)``: queue one line of text for this member only.

Everyone starts in ``lobby`` and may be in up to ``max_rooms`` rooms at once
(IRC's habit): ``/join`` adds one and makes it current, ``/switch`` changes
the current one, ``/part`` leaves one.  Lines of a member's other rooms
arrive tagged with the room, ``[14:02] #dev <alice> hi``; someone who never
joins a second room sees no tag at all.
Whoever creates a room runs it (kick, ban, invite-only: moderation.py).
Rooms other than the lobby disappear when their last member leaves, so
creating rooms cannot grow the server's memory without bound.
"""
from __future__ import annotations

import secrets
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
MAX_ROOMS = 20           # rooms one user may be in at once (--max-rooms-per-user)


def room_tag(name: str) -> str:
    """How a room is named in front of its lines: ``#dev`` (IRC's look)."""
    return name if name.startswith("#") else "#" + name


def tagged(text: str, tag: str) -> str:
    """``text`` as seen from outside its room: the tag after the time stamp
    (``[14:02] #dev <alice> hi``), or in front of a line without one."""
    if text[:1] == "[" and text[6:8] == "] ":
        return f"{text[:8]}{tag} {text[8:]}"
    return f"{tag} {text}"


def id_marker(room: "Room") -> bytes:
    """A line that is not shown: the page's note of the newest kept line
    of ``room`` it has (``\\x1f#room ID``; control characters never come
    from users, so it cannot be forged in a chat line)."""
    return f"\x1f{room.tag} {room.last_id}\r\n".encode("utf-8", "replace")


class Room:
    __slots__ = ("name", "key", "tag", "members", "outside", "topic", "history", "history_bytes",
                 "history_ids", "marked", "joined", "left", "rules")

    def __init__(self, name: str, history: int):
        self.name = name
        self.key = name_key(name)
        self.tag = room_tag(name)
        # dict as an insertion-ordered set: join order is the /who order.
        self.members: dict = {}
        # How many members get this room's lines tagged: it is not their
        # current room, or they tag everything.  0 in the common case, which
        # keeps the fan-out one encoding and one loop.  (A count, not a set:
        # a set that grew stays allocated, and memory freed around it cannot
        # go back to the system.)
        self.outside = 0
        self.topic = ""
        self.history: deque[str] | None = deque(maxlen=history) if history else None
        self.history_bytes = 0
        # Each kept line's id (the hub's line_ids, which a page sends back
        # after a server restart to be replayed only what it missed).
        self.history_ids: deque[int] = deque(maxlen=history or 1)
        self.marked = 0       # the last id told to the members that want ids
        # Arrivals and departures not yet told, in a crowded room.
        self.joined = 0
        self.left = 0
        self.rules = None     # operators, bans, invitations (chat/moderation.py)

    def remember(self, text: str, max_bytes: int, line_id: int) -> None:
        """Keep ``text`` (numbered ``line_id``) in the history, bounded by
        lines and by bytes."""
        history = self.history
        if history is None:
            return
        if len(history) == history.maxlen:
            self.history_bytes -= len(history[0])
        history.append(text)
        self.history_ids.append(line_id)
        self.history_bytes += len(text)
        while self.history_bytes > max_bytes and history:
            self.history_bytes -= len(history.popleft())
            self.history_ids.popleft()

    @property
    def last_id(self) -> int:
        """The id of the newest line kept (0: none)."""
        return self.history_ids[-1] if self.history and self.history_ids else 0

    def kept(self) -> tuple[list[str], list[int]]:
        return list(self.history or ()), list(self.history_ids) if self.history else []


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
                 push_rate: float = 5.0, push_burst: int = 20, max_rooms: int = MAX_ROOMS):
        self.now = now
        self.max_rooms = max_rooms
        # Told when a room comes or goes, or its members or topic change
        # (the web pages redraw their room lists); called often, it must
        # be cheap and coalesce.
        self.on_rooms_changed: Callable[[], None] = lambda: None
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
        self.pending: dict[Room, list[str]] = {}
        self.speakers: dict[Room, object] = {}   # who spoke in a pending batch
        self.closing = False  # set on shutdown: no per-user quit notices
        self.nicks: dict[str, object] = {}
        self.looks: dict[str, object] = {}     # TR39 skeleton keys -> member
        self.rooms: dict[str, Room] = {}
        # Rooms nobody is in: their topic and history, until someone joins
        # again (at most MAX_DORMANT, the least recently used go first).
        self.dormant: dict[str, tuple[str, list[str], list[int]]] = {}
        # History lines are numbered across rooms; ``history_epoch`` names
        # the numbering (kept in the store with the lines; without a store,
        # new with each process), so an id from before a restart is only
        # taken against the same numbering.
        self.next_line_id = 1
        self.history_epoch = secrets.token_hex(8)
        # Where topics, history and the file list are kept across restarts
        # (tekcos.store.Store, or None): add_line, set_topic, add_file.
        self.store = None
        # Files addressed to people (tekcos.delivery.Deliveries, or None).
        self.deliveries = None
        # The other nodes of this hub (tekcos.federation.core.Federation), or None.
        self.federation = None
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
        if snapshot.epoch:
            self.history_epoch = snapshot.epoch
        self.next_line_id = max(self.next_line_id, snapshot.last_id + 1)
        for key, (name, topic, lines) in snapshot.rooms.items():
            ids = snapshot.line_ids.get(key, [])
            room = self.rooms.get(key)
            if room is None:
                self._keep_dormant(key, topic, lines, ids)
                continue
            room.topic = topic
            for line, line_id in zip(lines, ids):
                room.remember(line, self.history_bytes, line_id)
        self._room_list = None

    def _keep_dormant(self, key: str, topic: str, lines: list[str], ids: list[int]) -> None:
        if not topic and not lines:
            return
        self.dormant.pop(key, None)
        if len(self.dormant) >= MAX_DORMANT:
            self.dormant.pop(next(iter(self.dormant)))
        self.dormant[key] = (topic, lines, ids)

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
            self.rooms_changed()
            kept = self.dormant.pop(key, None)
            if kept is not None:   # an empty room's topic and history come back
                room.topic = kept[0]
                for line, line_id in zip(kept[1], kept[2]):
                    room.remember(line, self.history_bytes, line_id)
        return room

    def broadcast(self, room: Room, text: str, record: bool = False, speaker=None,
                  relay: bool = True) -> None:
        """Send one line to every member of ``room``; keep it in history if
        ``record``.  Encoded once (twice where some get it tagged): every
        member gets the same bytes.  Inside :meth:`batch` the line is queued
        and written with the others.  With other nodes (``federation``),
        the line goes to them too unless it is not to be ``relay``-ed (it
        came from them, or it is about this node's crowd only)."""
        if room.joined or room.left:
            self._summarise(room)
        if relay and self.federation is not None:
            self.federation.line(room, text, record)
        if record:
            line_id = self.next_line_id
            self.next_line_id = line_id + 1
            room.remember(text, self.history_bytes, line_id)
            if self.store is not None:
                self.store.add_line(room.key, room.name, text, self.now(), line_id)
        self.lines_out += len(room.members)
        if speaker is not None and self.ignoring:
            deaf = [m for m in self.ignoring
                    if room in m.rooms and moderation.ignores(m, speaker)]
            if deaf:   # written now, past those who ignore the speaker
                if self.pending:
                    self.flush()
                self._write_room(room, [text], None, deaf)
                return
        if self._batch_depth:
            queued = self.pending.get(room)
            if queued is None:
                self.pending[room] = [text]
            else:
                queued.append(text)
            if speaker is not None:
                self.speakers[room] = speaker
            return
        self._write_room(room, [text], speaker)

    @staticmethod
    def _write_room(room: Room, lines: list[str], speaker=None, deaf=()) -> None:
        """``lines`` to every member (but the ``deaf``); the one who spoke
        first: in a room of thousands the fan-out takes a while, and the
        person who typed the line should see it at once (everyone else gets
        it in the same pass)."""
        if len(lines) == 1:
            data = (lines[0] + "\r\n").encode("utf-8", "replace")
        else:
            data = "".join(line + "\r\n" for line in lines).encode("utf-8", "replace")
        outside = room.outside
        if outside or deaf:
            tag = room.tag
            tagged_data = "".join(tagged(line, tag) + "\r\n"
                                  for line in lines).encode("utf-8", "replace")
            # Members that keep ids (the web page) learn the newest kept
            # line's id after the lines: all they need to be replayed only
            # what they missed if the server restarts.
            marked_data = tagged_data
            if room.marked != room.last_id:
                room.marked = room.last_id
                marked_data = tagged_data + id_marker(room)
            members = list(room.members)
            if speaker is not None and speaker in room.members:
                members.remove(speaker)
                members.insert(0, speaker)
            for member in members:
                # A member can drop out while we write (slow consumer).
                if member not in deaf and member in room.members:
                    if member.tags:
                        member.write(marked_data if member.ids else tagged_data)
                    else:
                        member.write(tagged_data if member.room is not room else data)
            return
        if speaker is not None and speaker in room.members:
            speaker.write(data)
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
            for room, lines in pending.items():
                self._write_room(room, lines, speakers.get(room))

    def _summarise(self, room: Room) -> None:
        """Tell a crowded room who came and went since its last line."""
        joined, left = room.joined, room.left
        room.joined = room.left = 0
        parts = [f"{joined} joined"] if joined else []
        if left:
            parts.append(f"{left} left")
        self.broadcast(room, f"{self.stamp()} -- {', '.join(parts)} "
                             f"({len(room.members)} here now)", relay=False)

    def _crowded(self, room: Room) -> bool:
        return self.crowd > 0 and len(room.members) >= self.crowd

    def history_lines(self, room: Room, count: int | None = None,
                      tags: bool = False, after: int | None = None) -> list[str]:
        """The room's last ``count`` lines (all it keeps by default), or
        those numbered past ``after``, framed; each tagged with the room for
        a member that ``tags``."""
        kept, ids = room.kept()
        if after is not None:
            kept = [line for line, line_id in zip(kept, ids) if line_id > after]
        lines = kept[-count:] if count else kept
        if not lines:
            return []
        if tags:
            lines = [tagged(line, room.tag) for line in lines]
        return ([f"*** Last {len(lines)} lines of {room.name}:"]
                + [f"(history) {line}" for line in lines]
                + ["*** End of history."])

    def _current(self, member, room: Room | None) -> None:
        """Make ``room`` (one of ``member``'s) the room its lines go to."""
        old = member.room
        if old is room:
            return
        if old is not None and old in member.rooms and not member.tags:
            old.outside += 1
        member.room = room
        if room is not None and not member.tags:
            room.outside -= 1

    def _enter(self, member, room: Room, replay: bool = True, tell_nodes: bool = True) -> None:
        if self.pending:
            self.flush()
        if self._crowded(room):
            room.joined += 1
        else:
            self.broadcast(room, f"{self.stamp()} -- {member.nick} joined {room.name}")
        if self.pending:  # the notice is for those already there
            self.flush()
        room.members[member] = None
        member.rooms[room] = None
        room.outside += 1          # until it is the member's current room
        self._current(member, room)
        self.rooms_changed()
        if self.federation is not None and member.nick and tell_nodes:
            self.federation.rooms(member)
        if replay and room.history:
            since = member.seen_ids.pop(name_key(room.tag), None) if member.seen_ids else None
            member.write_lines(self.history_lines(room, tags=member.tags, after=since))
            if member.ids and room.last_id:
                member.write(id_marker(room))
        count = len(room.members)
        who = "you are alone here" if count == 1 else f"{count} people here"
        member.send(f"*** You are in {room.name} ({who}). /help lists commands.")
        if room.topic:
            member.send(f"*** Topic of {room.name}: {room.topic}")

    def _leave_room(self, member, room: Room, notice: str, quitting: bool = False) -> None:
        """``member`` leaves ``room`` (others are told ``notice``); its
        current room becomes the one it joined last of those left.  The
        other nodes are told of its rooms, unless it is ``quitting``."""
        if room not in member.rooms:
            return
        if self.pending:
            self.flush()
        room.members.pop(member, None)
        if member.tags or member.room is not room:
            room.outside -= 1
        del member.rooms[room]
        moderation.left(room, member)
        self.rooms_changed()
        if self.federation is not None and member.nick and not quitting:
            self.federation.rooms(member)
        if member.room is room:
            member.room = None
            self._current(member, next(reversed(member.rooms), None))
        if not room.members:
            # The last one out: the room goes (the lobby stays).  During
            # shutdown members leave one by one; only the last one removes it.
            if room is not self.lobby:
                key = name_key(room.name)
                self.rooms.pop(key, None)
                self._keep_dormant(key, room.topic, *room.kept())
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
        if self.federation is not None:
            # Its first room goes with the nick: one message, not two, for
            # each of the thousands who arrive at once after a restart.
            self.federation.nick(nick, None, rooms=[self.lobby.name])
        self._enter(member, self.lobby, tell_nodes=False)
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
        remote = self.federation.holder(nick) if self.federation is not None else None
        if remote is not None:
            return (f"The nick {nick} is taken by {remote.nick} on node {remote.node}; "
                    "choose another.")
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
        if self.federation is not None:
            self.federation.nick(nick, old)
        for room in list(member.rooms):
            self.broadcast(room, f"{self.stamp()} -- {old} is now known as {nick}")
        return None

    def join(self, member, name: str) -> str | None:
        """Add ``member`` to room ``name`` (made if new) and make it current;
        a room it is in already just becomes current."""
        error = room_error(name)
        if error:
            return f"Invalid room: {error}."
        key = name_key(name)
        existing = self.rooms.get(key)
        if existing is not None and existing in member.rooms:
            return self.switch(member, name)
        if len(member.rooms) >= self.max_rooms:
            return (f"You are in {len(member.rooms)} rooms, the most allowed here; "
                    "/part one first.")
        if existing is not None:
            refusal = moderation.join_refusal(existing, member)
            if refusal:
                return refusal[0].upper() + refusal[1:]
        room = existing or self._room(name)
        if existing is None and room is not self.lobby:
            moderation.created(room, member)
        self._enter(member, room)
        return None

    def switch(self, member, name: str) -> str | None:
        """Make ``name``, a room ``member`` is in, the one its lines go to."""
        room = self.rooms.get(name_key(name))
        if room is None or room not in member.rooms:
            return f"You are not in {name}; /join {name} first."
        if member.room is room:
            return f"You are already talking in {room.name}."
        if self.pending:
            self.flush()
        self._current(member, room)
        member.send(f"*** Now talking in {room.name} ({len(room.members)} here).")
        return None

    def send_out(self, member, room: Room, notice: str) -> None:
        """Take ``member`` out of ``room`` (its members are told
        ``notice``); one who is left in no room goes to the lobby."""
        self._leave_room(member, room, notice)
        if not member.rooms:
            self._enter(member, self.lobby)

    def notice(self, room: Room, text: str) -> None:
        """A notice to a room about its members (kept in its history)."""
        self.broadcast(room, f"{self.stamp()} -- {text}", record=True)

    def to_everyone(self, text: str) -> None:
        """One line to every registered user, wherever they are."""
        if self.pending:
            self.flush()
        for member in list(self.nicks.values()):
            member.send(text)

    def part(self, member, name: str | None = None) -> str | None:
        """Leave room ``name`` (the current one by default).  Who leaves
        their only room goes to the lobby, as on a first connection."""
        if name:
            room = self.rooms.get(name_key(name))
            if room is None or room not in member.rooms:
                return f"You are not in {name}."
        else:
            room = member.room
        if len(member.rooms) == 1:
            if room is self.lobby:
                return "You are in the lobby already, and in no other room; /join ROOM to go elsewhere."
            self.send_out(member, room, f"{member.nick} left for {self.lobby.name}")
            return None
        was_current = member.room is room
        self._leave_room(member, room, f"{member.nick} left {room.name}")
        if was_current:
            member.send(f"*** You left {room.name}; now talking in {member.room.name}.")
        else:
            member.send(f"*** You left {room.name}.")
        return None

    def leave(self, member, reason: str) -> None:
        """The member is gone (quit or connection lost)."""
        if member.nick is None:
            return
        for room in list(member.rooms):
            self._leave_room(member, room, f"{member.nick} has quit ({reason})", quitting=True)
        self._release(member, member.nick)
        self.ignoring.discard(member)
        if self.federation is not None:
            self.federation.released(member.nick)
        if self.deliveries is not None:
            self.deliveries.session_gone(member)

    def nick_refused(self, nick: str, node: str) -> None:
        """Another node claimed ``nick`` in the same moment, first: its
        holder here chooses again (leaving its rooms as one who quit)."""
        member = self.nicks.get(name_key(nick))
        if member is None or member.nick != nick:
            return
        member.send(f"*** The nick {nick} was taken on node {node} at the same moment.")
        self.leave(member, "nick taken on another node")
        member.choose_again()

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
        if target is None and self.federation is not None:
            remote = self.federation.holder(nick)
            if remote is not None and name_key(remote.nick) == name_key(nick):
                self.federation.message(member.nick, remote, text)
                member.send(f"{self.stamp()} -> *{remote.nick}* {text}")
                if remote.away:
                    member.send(f"*** {remote.nick} is away: {remote.away}")
                return None
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
        self.rooms_changed()
        if self.store is not None:
            self.store.set_topic(room.key, room.name, topic, self.now())
        if self.federation is not None:
            self.federation.topic(room, topic)
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
        if self.federation is not None:
            for remote in self.federation.members_of(room.name):
                away = f", away: {remote.away}" if remote.away else ""
                yield f"{remote.nick}@{remote.node} (idle {format_idle(remote.idle)}{away})"

    def rooms_changed(self) -> None:
        """Rooms, their members or topics changed: the room list is made
        again when next asked, and the web pages hear of it."""
        self._room_list = None
        self.on_rooms_changed()

    # -- from the other nodes (tekcos.federation) -----------------------------------
    def remote_line(self, room_name: str, text: str, record: bool) -> None:
        """A line said in ``room_name`` on another node: to the members here;
        kept in the room's history even where nobody here is in it, so
        that whoever joins it here later is replayed what the hub said."""
        room = self.rooms.get(name_key(room_name))
        if room is not None:
            self.broadcast(room, text, record=record, relay=False)
        elif record and self.history_size:
            self._remember_dormant(room_name, text)

    def _remember_dormant(self, room_name: str, text: str) -> None:
        key = name_key(room_name)
        topic, lines, ids = self.dormant.pop(key, ("", [], []))
        line_id = self.next_line_id
        self.next_line_id = line_id + 1
        lines.append(text)
        ids.append(line_id)
        del lines[:-self.history_size], ids[:-self.history_size]
        while len(lines) > 1 and sum(map(len, lines)) > self.history_bytes:
            del lines[0], ids[0]
        self._keep_dormant(key, topic, lines, ids)
        if self.store is not None:
            self.store.add_line(key, room_name, text, self.now(), line_id)

    def adopt_history(self, room_name: str, texts: list[str]) -> int:
        """Lines the hub said in ``room_name`` that this node did not hear
        (it started later, or was cut off from the others), oldest first:
        kept as history where nobody here is in the room, after the lines
        it has already.  Returns how many it kept."""
        key = name_key(room_name)
        room = self.rooms.get(key)
        if not self.history_size or (room is not None and room.members):
            return 0
        have = room.kept()[0] if room is not None else self.dormant.get(key, ("", [], []))[1]
        if have and have[-1] in texts:
            # What came after the newest line we have.
            texts = texts[len(texts) - texts[::-1].index(have[-1]):]
        known = set(have)
        new = [text for text in texts if text not in known][-self.history_size:]
        for text in new:
            if room is None:
                self._remember_dormant(room_name, text)
                continue
            line_id = self.next_line_id
            self.next_line_id = line_id + 1
            room.remember(text, self.history_bytes, line_id)
            if self.store is not None:
                self.store.add_line(room.key, room.name, text, self.now(), line_id)
        return len(new)

    def remote_topic(self, room_name: str, topic: str) -> None:
        """The topic of ``room_name`` was set on another node (its notice
        comes as a line); kept for the room where nobody here is in it."""
        room = self.rooms.get(name_key(room_name))
        if room is None:
            key = name_key(room_name)
            _, lines, ids = self.dormant.pop(key, ("", [], []))
            self._keep_dormant(key, topic, lines, ids)
            if self.store is not None:
                self.store.set_topic(key, room_name, topic, self.now())
            return
        room.topic = topic
        if self.store is not None:
            self.store.set_topic(room.key, room.name, topic, self.now())
        self.rooms_changed()

    def remote_left(self, room_name: str, what: str) -> None:
        """Someone of another node is gone from ``room_name`` (their node was lost)."""
        room = self.rooms.get(name_key(room_name))
        if room is not None:
            self.broadcast(room, f"{self.stamp()} -- {what}", relay=False)

    def remote_message(self, sender: str, node: str, nick: str, text: str) -> None:
        """A private message from ``sender`` on ``node`` to ``nick`` here."""
        target = self.nicks.get(name_key(nick))
        if target is None:
            return
        if self.pending:
            self.flush()
        if not moderation.ignores_nick(target, sender):
            target.send(f"{self.stamp()} *{sender}@{node}* {text}")

    def announce_everywhere(self, text: str) -> None:
        """A server notice to every room here (not kept, not relayed)."""
        for room in list(self.rooms.values()):
            if room.members:
                self.broadcast(room, f"{self.stamp()} -- {text}", relay=False)

    def room_list(self) -> list[tuple[str, int, str]]:
        """Every room as (name, members, topic), the fullest first.  Sorted
        once per change of rooms, members or topics, not once per asker:
        every browser's state asks for it."""
        if self._room_list is None:
            counts = {r.key: (r.name, len(r.members), r.topic) for r in self.rooms.values()}
            if self.federation is not None:    # rooms of the other nodes' users too
                for key, (name, remote) in self.federation.room_counts().items():
                    name, count, topic = counts.get(key, (name, 0, ""))
                    counts[key] = (name, count + remote, topic)
            self._room_list = sorted(counts.values(),
                                     key=lambda item: (-item[1], name_key(item[0])))
        return self._room_list
