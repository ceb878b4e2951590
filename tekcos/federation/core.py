"""Several servers, one hub: what the nodes tell each other (sans-IO).

Every node publishes on one Redis channel and hears every other node there
(the Socket.IO Redis adapter's shape).  A :class:`Federation` is the plain
half: it turns the hub's events into messages for the channel, checks every
message it hears as strictly as a client's input, applies it to the local
hub, and keeps the table of who is on the other nodes.  The Twisted half
(:mod:`tekcos.federation.link`) moves the bytes and runs the clock.

Messages are JSON objects with ``v`` (1), ``node`` (the sender's name) and
``t``:

* ``line``: ``room``, ``text``, ``rec`` (kept in history): a room line said
  on that node (a message, an action, a join, a part, a topic...);
* ``msg``: ``to``, ``frm``, ``text``: a private message to a user there;
* ``topic``: ``room``, ``topic``: a room's topic was set there;
* ``nick``: ``nick``, ``old`` (or null), ``rooms`` (a new user's first
  rooms, where given): a user took a nick there, at once (so that the
  same or a look-alike nick is refused here before the next presence);
* ``rooms``: ``nick``, ``rooms``: a user there joined or left a room
  (the rooms it is in now);
* ``presence``: ``members``, a list of ``[nick, [rooms], idle seconds,
  away]``: the node's users, sent every :data:`HEARTBEAT` seconds, in
  ``parts`` messages of at most :data:`PRESENCE_BYTES` (``part``, ``parts``
  and ``round`` say which: a node with tens of thousands of users does not
  fit one message); the table is replaced once a round's parts are all in.
  A node not heard of for :data:`NODE_TIMEOUT` seconds is lost, and its
  users leave every room here with ``-- N left (node X lost)``;
* ``file``: ``at`` (the node it is for), ``about`` (``offer``, ``ready`` or
  ``gone``), ``to`` (a user there), ``num``, ``frm``, ``name``, and by kind
  ``size``, ``room``, ``code``, ``where``: a file pushed here for a user
  there (see :mod:`tekcos.delivery`); or ``about`` ``fetched`` (``to`` its
  sender, ``frm`` its recipient, ``name``, ``code``): a file of that node,
  brought here, was fetched here;
* ``answer``: ``at``, ``num``, ``nick``, ``accept``: that user's answer;
* ``hood?``: ``id``: a user there asked ``/neighbors``; ``hood``: ``at``,
  ``id``, ``lines``: a node's answer, the table of its last scan;
* ``bye``: the node stops (its users left one by one already).

Time is passed in (``now``); :meth:`Federation.tick` is called every
:data:`HEARTBEAT` seconds and returns what to publish.
"""
from __future__ import annotations

import json

from tekcos.chat.names import look_keys, name_key
from tekcos.federation.checks import (MAX_TEXT, Malformed, answer_fields, checked_nick as _nick,
                                      checked_room as _room, checked_text as _text,
                                      file_fields)
from tekcos.federation.url import node_error

VERSION = 1
HEARTBEAT = 5.0            # seconds between presence messages
NODE_TIMEOUT = 15.0        # a node silent this long is lost
MAX_MESSAGE = 256 * 1024   # bytes: a presence of 1,000s of users fits
MAX_MEMBERS = 50_000       # users one node may announce
MAX_ROOMS = 64             # rooms one remote user may be listed in
PRESENCE_BYTES = 192 * 1024   # one presence part's members, encoded, at most
MAX_PARTS = 256            # parts of one presence round
MAX_TABLE_LINES = 1100     # of a node's neighbour table (a /22's hosts)
MAX_ADOPTED_ROOMS = 1000   # rooms whose earlier lines are taken from Redis
MAX_ADOPTED_LINES = 1000   # lines of one room


def _rooms(value) -> list[str]:
    """A user's rooms as a ``nick`` or ``rooms`` message lists them, checked."""
    if not isinstance(value, list) or len(value) > MAX_ROOMS:
        raise Malformed("rooms")
    return [_room(r) for r in value]


class Remote:
    """A user on another node, as its presence says."""
    __slots__ = ("nick", "node", "rooms", "idle", "away", "took")

    def __init__(self, nick: str, node: str, rooms: list[str], idle: float, away: str,
                 took: float | None = None):
        self.nick, self.node, self.rooms, self.idle, self.away = nick, node, rooms, idle, away
        self.took = took      # when a ``nick`` message told of it (None: a presence did)


class Node:
    __slots__ = ("name", "seen", "members", "pending", "checked")

    def __init__(self, name: str, seen: float):
        self.name = name
        self.seen = seen
        self.members: dict[str, Remote] = {}     # name_key(nick) -> Remote
        self.pending = None     # (round, parts, {part: table}) of a presence coming in parts
        # (nick, rooms, away) as a presence listed them -> (key, nick, rooms,
        # away) as checked: a round repeats the last one's users nearly all,
        # and checking tens of thousands of nicks again every round stalled
        # the reactor for tens of milliseconds each time.
        self.checked: dict[tuple, tuple] = {}


class Federation:
    """The hub's side of the channel.  ``publish(bytes)`` sends a message
    (it may fail silently: Redis is down); ``log(text)`` tells the operator."""

    def __init__(self, hub, node: str, publish, log=lambda text: None):
        error = node_error(node)
        if error:
            raise ValueError(error)
        self.hub = hub
        self.node = node
        self.publish = publish
        self.log = log
        self.nodes: dict[str, Node] = {}
        self.looks: dict[str, Remote] = {}         # look keys of remote nicks
        self.reachable = True
        # The link's claim of a nick in Redis (atomic across nodes), and its
        # release; see RedisLink.claim.
        self.on_claim = lambda nick: None
        self.on_release = lambda nick: None
        # The link's keeping of a room line in Redis, for later nodes.
        self.on_keep = lambda room_name, text: None
        self.adopted = 0                           # lines taken from Redis's history
        self.relayed_in = 0
        self.relayed_out = 0
        self.dropped = 0                           # malformed messages heard
        self.rounds = 0                            # presence rounds sent
        self.reconnects = 0                        # times Redis came back after a loss
        self.round_trip: float | None = None       # seconds of the last heartbeat's publish

    # -- out ----------------------------------------------------------------------
    def _send(self, kind: str, **fields) -> None:
        fields.update(v=VERSION, node=self.node, t=kind)
        self.relayed_out += 1
        self.publish(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode())

    def line(self, room, text: str, record: bool) -> None:
        """A line said in ``room`` here: every other node's members hear it."""
        self._send("line", room=room.name, text=text, rec=record)
        if record:
            self.on_keep(room.name, text)

    def topic(self, room, topic: str) -> None:
        """``room``'s topic was set here."""
        self._send("topic", room=room.name, topic=topic)

    def nick(self, nick: str, old: str | None, rooms: list[str] | None = None) -> None:
        """A user here took ``nick`` (was ``old``, or new, then in ``rooms``)."""
        given = {} if rooms is None else {"rooms": rooms[:MAX_ROOMS]}
        self._send("nick", nick=nick, old=old, **given)
        if old:
            self.on_release(old)
        self.on_claim(nick)

    def rooms(self, member) -> None:
        """A user here joined or left a room: the others' ``/who`` and room
        counts have it at once, not at the next presence."""
        self._send("rooms", nick=member.nick,
                   rooms=[r.name for r in list(member.rooms)[:MAX_ROOMS]])

    def released(self, nick: str) -> None:
        """A user here is gone: the nick is free on every node."""
        self.on_release(nick)

    def refused(self, nick: str, node: str) -> None:
        """Redis says ``nick`` (or a look-alike) was claimed by ``node`` first."""
        self.log(f"federation: {nick} was claimed by node {node} first")
        self.hub.nick_refused(nick, node)

    def message(self, sender: str, target: Remote, text: str) -> None:
        self._send("msg", to=target.nick, frm=sender, text=text)

    def file(self, node: str, about: str, nick: str, **fields) -> None:
        """Tell ``nick`` on ``node`` of a file kept here for them."""
        self._send("file", at=node, about=about, to=nick, **fields)

    def file_answer(self, node: str, number: int, nick: str, accept: bool) -> None:
        """``nick`` here answered offer ``number`` of ``node``."""
        self._send("answer", at=node, num=number, nick=nick, accept=accept)

    def ask_neighbours(self, request: int) -> None:
        """A user here asked ``/neighbors``: every node with a scan answers."""
        self._send("hood?", id=request)

    def presence(self, now: float) -> list[bytes]:
        """This node's users, as the messages of one presence round."""
        chunks, chunk, size = [], [], 0
        for m in list(self.hub.nicks.values())[:MAX_MEMBERS]:
            if not m.nick:
                continue
            entry = json.dumps([m.nick, [r.name for r in list(m.rooms)[:MAX_ROOMS]],
                                round(now - m.last_active), m.away[:200]],
                               ensure_ascii=False, separators=(",", ":"))
            if chunk and size + len(entry) > PRESENCE_BYTES:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(entry)
            size += len(entry) + 1
        chunks.append(chunk)
        self.rounds += 1
        head = json.dumps({"v": VERSION, "node": self.node, "t": "presence",
                           "round": self.rounds, "parts": len(chunks)},
                          ensure_ascii=False, separators=(",", ":"))[:-1]
        return [f'{head},"part":{i},"members":[{",".join(c)}]}}'.encode()
                for i, c in enumerate(chunks)]

    def tick(self, now: float) -> list[bytes]:
        """Every :data:`HEARTBEAT` s: lost nodes leave; our presence to send."""
        for node in [n for n in self.nodes.values() if now - n.seen > NODE_TIMEOUT]:
            self._lost(node, "lost")
        return self.presence(now)

    def goodbye(self) -> None:
        self._send("bye")

    # -- in ---------------------------------------------------------------------------
    def received(self, raw: bytes, now: float) -> None:
        """One message from the channel.  Ours come back too: ignored.  One
        that is not well formed is counted and logged, never applied."""
        try:
            self._apply(raw, now)
        except Malformed as e:
            self.dropped += 1
            if self.dropped <= 10 or self.dropped % 1000 == 0:
                self.log(f"federation: ignored a malformed message ({e}); {self.dropped} so far")

    def _apply(self, raw: bytes, now: float) -> None:
        if not isinstance(raw, (bytes, str)) or len(raw) > MAX_MESSAGE:
            raise Malformed("size")
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            raise Malformed("not JSON") from None
        if not isinstance(message, dict) or message.get("v") != VERSION:
            raise Malformed("version")
        sender = message.get("node")
        if node_error(sender):
            raise Malformed("node name")
        if sender == self.node:
            return
        kind = message.get("t")
        node = self.nodes.get(sender)
        if node is None and kind != "bye":
            node = self.nodes[sender] = Node(sender, now)
            self.log(f"federation: node {sender} is here")
            # A newcomer missed who took which nick before it subscribed:
            # tell it now, not at the next heartbeat.
            for part in self.presence(now):
                self.publish(part)
        if node is not None:
            node.seen = now
        self.relayed_in += 1
        if kind == "line":
            record = message.get("rec")
            if not isinstance(record, bool):
                raise Malformed("rec")
            self.hub.remote_line(_room(message.get("room")), _text(message.get("text")), record)
        elif kind == "msg":
            self.hub.remote_message(_nick(message.get("frm")), sender,
                                    _nick(message.get("to")), _text(message.get("text")))
        elif kind == "presence":
            self._presence(node, message.get("members"), message.get("round", 0),
                           message.get("part", 0), message.get("parts", 1), now)
        elif kind == "topic":
            self.hub.remote_topic(_room(message.get("room")), _text(message.get("topic"), 300))
        elif kind == "nick":
            old, rooms = message.get("old"), message.get("rooms")
            self._took(node, _nick(message.get("nick")), None if old is None else _nick(old),
                       None if rooms is None else _rooms(rooms))
        elif kind == "hood?":
            request = message.get("id")
            if type(request) is not int or not 0 < request < 1 << 31:
                raise Malformed("id")
            hood = self.hub.neighbourhood
            lines = hood.table_lines() if hood is not None else []
            if lines:
                self._send("hood", at=sender, id=request, lines=lines[:MAX_TABLE_LINES])
        elif kind == "hood":
            if message.get("at") == self.node and self.hub.neighbourhood is not None:
                request, lines = message.get("id"), message.get("lines")
                if type(request) is not int or not isinstance(lines, list) \
                        or len(lines) > MAX_TABLE_LINES:
                    raise Malformed("hood")
                self.hub.neighbourhood.remote_table(sender, request,
                                                    [_text(line, 300) for line in lines])
        elif kind == "rooms":
            nick, rooms = _nick(message.get("nick")), _rooms(message.get("rooms"))
            remote = node.members.get(name_key(nick))
            if remote is not None and remote.nick == nick:   # else the next presence has it
                remote.rooms = rooms
                self.hub.rooms_changed()
        elif kind in ("file", "answer"):
            if message.get("at") == self.node and self.hub.deliveries is not None:
                self._file(kind, sender, message)
        elif kind == "bye":
            if node is not None:
                self._lost(node, "stopped")
        else:
            raise Malformed("type")

    def adopt(self, rooms: list) -> int:
        """The rooms' last lines as Redis kept them (a list per room, each
        entry JSON ``[room, text]``), checked as the channel's messages are;
        the hub keeps those it has not got (:meth:`Hub.adopt_history`).
        Returns how many lines it took."""
        taken = 0
        for entries in rooms[:MAX_ADOPTED_ROOMS]:
            name, texts = None, []
            for raw in list(entries)[-MAX_ADOPTED_LINES:]:
                try:
                    if len(raw) > MAX_TEXT * 4:
                        raise Malformed("size")
                    room, text = json.loads(raw)
                    name, text = _room(room), _text(text)
                except (ValueError, TypeError, RecursionError, Malformed):
                    self.dropped += 1
                    continue
                texts.append(text)
            if name is not None:
                taken += self.hub.adopt_history(name, texts)
        self.adopted += taken
        if taken:
            self.log(f"federation: {taken} earlier room lines taken from Redis")
        return taken

    def _file(self, kind: str, sender: str, message: dict) -> None:
        deliveries = self.hub.deliveries
        if kind == "answer":
            deliveries.remote_answer(sender, *answer_fields(message))
        else:
            deliveries.remote_file(sender, *file_fields(message))

    def _presence(self, node: Node, members, rnd, part, parts, now: float = 0.0) -> None:
        if not all(type(v) is int for v in (rnd, part, parts)) or \
                not 0 <= part < parts <= MAX_PARTS:
            raise Malformed("parts")
        table = self._table(node, members)
        if parts > 1:
            pending = node.pending
            if pending is None or pending[:2] != (rnd, parts):
                pending = node.pending = (rnd, parts, {})
            pending[2][part] = table
            if len(pending[2]) < parts:
                return
            node.pending = None
            table = {}
            for piece in pending[2].values():
                table.update(piece)
            if len(table) > MAX_MEMBERS:
                raise Malformed("members")
        # A round may have been made before a nick it does not list was
        # taken (a busy node's round takes a while to arrive): users told
        # of since the last two heartbeats stay until a round lists them.
        for key, remote in node.members.items():
            if key not in table and remote.took is not None and \
                    now - remote.took < 2 * HEARTBEAT and len(table) < MAX_MEMBERS:
                table[key] = remote
        # Only the users who came or went change the look-alike index (its
        # keys cost a TR39 skeleton each: tens of thousands every round
        # were most of a busy node's time).
        old = node.members
        for key, remote in old.items():
            if table.get(key) is remote:
                continue
            kept = table.get(key)
            if kept is not None and kept.nick == remote.nick:
                remote.rooms, remote.idle, remote.away = kept.rooms, kept.idle, kept.away
                remote.took = None
                table[key] = remote
            else:
                self._unlook(remote)
        node.members = table
        for key, remote in table.items():
            if old.get(key) is not remote:
                self._look(remote)
        self.hub.rooms_changed()

    def _table(self, node: Node, members) -> dict:
        if not isinstance(members, list) or len(members) > MAX_MEMBERS:
            raise Malformed("members")
        table: dict[str, Remote] = {}
        checked = node.checked
        if len(checked) > 2 * MAX_MEMBERS:      # users long gone
            checked.clear()
        for entry in members:
            if not isinstance(entry, list) or len(entry) != 4:
                raise Malformed("member")
            nick, rooms, idle, away = entry
            if not isinstance(rooms, list) or len(rooms) > MAX_ROOMS or \
                    not isinstance(idle, (int, float)) or isinstance(idle, bool):
                raise Malformed("member")
            seen = (nick, tuple(rooms), away) if type(nick) is str and type(away) is str \
                and all(type(r) is str for r in rooms) else None
            known = checked.get(seen) if seen is not None else None
            if known is None:
                known = (name_key(_nick(nick)), nick, [_room(r) for r in rooms], _text(away, 200))
                if seen is not None:
                    checked[seen] = known
            key, nick, rooms, away = known
            table[key] = Remote(nick, node.name, list(rooms), max(0.0, float(idle)), away)
        return table

    def _took(self, node: Node, nick: str, old: str | None, rooms: list | None = None) -> None:
        previous = node.members.pop(name_key(old), None) if old else None
        self._unlook(previous)
        if rooms is None:
            rooms = previous.rooms if previous else []
        remote = Remote(nick, node.name, rooms, 0.0,
                        previous.away if previous else "", took=node.seen)
        node.members[name_key(nick)] = remote
        self._look(remote)

    def _look(self, remote: Remote) -> None:
        for look in look_keys(remote.nick):
            self.looks[look] = remote

    def _unlook(self, remote: Remote | None) -> None:
        if remote is None:
            return
        for look in look_keys(remote.nick):
            if self.looks.get(look) is remote:
                del self.looks[look]

    def _lost(self, node: Node, how: str) -> None:
        """``node`` is gone: its users leave every room here."""
        self.nodes.pop(node.name, None)
        for remote in node.members.values():
            self._unlook(remote)
            for room in remote.rooms:
                self.hub.remote_left(room, f"{remote.nick} left (node {node.name} {how})")
        self.log(f"federation: node {node.name} {how}; {len(node.members)} user(s) gone")
        self.hub.rooms_changed()

    # -- what the hub asks ------------------------------------------------------------
    def holder(self, nick: str) -> Remote | None:
        """The remote user whose nick is ``nick`` or looks like it."""
        key = name_key(nick)
        for node in self.nodes.values():
            if key in node.members:
                return node.members[key]
        for look in look_keys(nick):
            if look in self.looks:
                return self.looks[look]
        return None

    def user(self, nick: str) -> Remote | None:
        """The user of another node with this nick (not a look-alike)."""
        remote = self.holder(nick)
        return remote if remote is not None and name_key(remote.nick) == name_key(nick) \
            else None

    def members_of(self, room_name: str) -> list[Remote]:
        key = name_key(room_name)
        return [m for node in self.nodes.values() for m in node.members.values()
                if any(name_key(r) == key for r in m.rooms)]

    def room_counts(self) -> dict[str, tuple[str, int]]:
        """name key -> (name, remote members) for every room seen remotely."""
        counts: dict[str, tuple[str, int]] = {}
        for node in self.nodes.values():
            for member in node.members.values():
                for room in member.rooms:
                    key = name_key(room)
                    name, count = counts.get(key, (room, 0))
                    counts[key] = (name, count + 1)
        return counts

    def link_state(self, up: bool) -> None:
        """Redis was lost, or is back: tell every room here, once."""
        if up == self.reachable:
            return
        self.reachable = up
        if up:
            self.reconnects += 1
            self.hub.announce_everywhere("the other nodes are reachable again")
        else:
            self.hub.announce_everywhere("the other nodes are unreachable (Redis); "
                                         "chat on this node goes on")
