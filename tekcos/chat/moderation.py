"""Who may do what in a room, and what people choose not to hear.

Plain functions over the :class:`~tekcos.chat.hub.Hub` and its rooms, as IRC
users expect them:

* **Room operators**: whoever creates a room (the first member of a new
  room) and the server operators (``/oper``), everywhere.  They ``/kick``
  (the member goes back to the lobby), ``/ban`` (by the nick's TR39
  skeleton and by the member's host, until ``/unban`` or until the room
  empties and goes), ``/op`` another member, ``/invite`` someone and make
  the room invite-only (``/mode +i``).  A room operator cannot act on
  another operator or on themselves; nobody is kicked or banned from the
  lobby (server operators ``/kill`` instead).
* **Server operators** (``/oper PASSWORD``): ``/kill NICK`` and ``/wall``.
* **Ignore lists**, per session, by skeleton, so that a look-alike nick
  cannot slip past (at most :data:`MAX_IGNORED`).
* **Away messages**.

Every refusal is returned as a sentence; None means done.
"""
from __future__ import annotations

import hmac

from tekcos.chat.names import look_keys, name_key
from tekcos.hosts import host_key

MAX_IGNORED = 100
MAX_BANS = 100          # per room
MAX_INVITED = 1000      # per room
MAX_AWAY = 200          # characters


class RoomRules:
    """The operators, bans and invitations of one room (gone with it)."""

    __slots__ = ("ops", "bans", "invite_only", "invited")

    def __init__(self):
        self.ops: set = set()                  # members
        self.bans: dict[str, tuple] = {}       # name_key -> (look keys, host key, shown)
        self.invite_only = False
        self.invited: set[str] = set()         # name keys

    def banned(self, member) -> tuple | None:
        keys = set(look_keys(member.nick))
        host = _host(member)
        for ban in self.bans.values():
            if keys & set(ban[0]) or (host is not None and host == ban[1]):
                return ban
        return None


def _host(member) -> str | None:
    address = getattr(member.peer, "host", None)
    return host_key(address) if address else None


def is_op(room, member) -> bool:
    return member.operator or (room.rules is not None and member in room.rules.ops)


def rules(room) -> RoomRules:
    if room.rules is None:
        room.rules = RoomRules()
    return room.rules


# -- joining --------------------------------------------------------------------
def join_refusal(room, member) -> str | None:
    """Why ``member`` may not enter the existing ``room``, or None."""
    kept = room.rules
    if kept is None or member.operator:
        return None
    if kept.banned(member) is not None:
        return f"you are banned from {room.name}."
    if kept.invite_only and name_key(member.nick) not in kept.invited:
        return f"{room.name} is invite-only; ask a member for an /invite."
    return None


def created(room, member) -> None:
    """``member`` made ``room`` by joining it: they run it."""
    rules(room).ops.add(member)


def left(room, member) -> None:
    if room.rules is not None:
        room.rules.ops.discard(member)


# -- room operators ---------------------------------------------------------------
def _target(hub, room, actor, nick: str, verb: str):
    """The member of ``room`` that ``actor`` may ``verb``, or a refusal."""
    if not nick:
        return None, f"usage: /{verb} NICK"
    if not is_op(room, actor):
        return None, f"only the operators of {room.name} may /{verb} (whoever created it)."
    if room is hub.lobby and verb in ("kick", "ban"):
        return None, "nobody can be sent out of the lobby (server operators can /kill)."
    target = hub.member(nick)
    if target is None:
        return None, f"no such nick: {nick}."
    if target is actor:
        return None, f"you cannot /{verb} yourself."
    if room not in target.rooms:
        return None, f"{target.nick} is not in {room.name}."
    if verb != "op" and is_op(room, target) and not actor.operator:
        return None, f"{target.nick} is an operator of {room.name}."
    return target, None


def kick(hub, actor, nick: str, reason: str) -> str | None:
    room = actor.room
    target, refusal = _target(hub, room, actor, nick, "kick")
    if refusal:
        return refusal
    _send_out(hub, room, actor, target, "kicked", reason)
    return None


def ban(hub, actor, nick: str) -> str | None:
    room = actor.room
    target, refusal = _target(hub, room, actor, nick, "ban")
    if refusal:
        return refusal
    kept = rules(room)
    if len(kept.bans) >= MAX_BANS:
        return f"{room.name} has {MAX_BANS} bans already; /unban one first."
    kept.bans[name_key(target.nick)] = (look_keys(target.nick), _host(target), target.nick)
    _send_out(hub, room, actor, target, "banned", "")
    return None


def unban(hub, actor, nick: str) -> str | None:
    room = actor.room
    if not nick:
        return "usage: /unban NICK"
    if not is_op(room, actor):
        return f"only the operators of {room.name} may /unban."
    if room.rules is None or room.rules.bans.pop(name_key(nick), None) is None:
        return f"{nick} is not banned from {room.name}."
    hub.notice(room, f"{actor.nick} lifted the ban on {nick}")
    return None


def _send_out(hub, room, actor, target, what: str, reason: str) -> None:
    why = f" ({reason})" if reason else ""
    target.send(f"*** You were {what} from {room.name} by {actor.nick}{why}.")
    hub.send_out(target, room, f"{target.nick} was {what} by {actor.nick}{why}")


def give_op(hub, actor, nick: str) -> str | None:
    room = actor.room
    target, refusal = _target(hub, room, actor, nick, "op")
    if refusal:
        return refusal
    if is_op(room, target):
        return f"{target.nick} is already an operator of {room.name}."
    rules(room).ops.add(target)
    hub.notice(room, f"{actor.nick} made {target.nick} an operator of {room.name}")
    return None


def invite(hub, actor, nick: str) -> str | None:
    room = actor.room
    if not nick:
        return "usage: /invite NICK"
    target = hub.member(nick)
    if target is None:
        return f"no such nick: {nick}."
    if room in target.rooms:
        return f"{target.nick} is already in {room.name}."
    kept = rules(room)
    if kept.invite_only and not is_op(room, actor):
        return f"only the operators of invite-only {room.name} may /invite."
    if len(kept.invited) >= MAX_INVITED:
        kept.invited.clear()
    kept.invited.add(name_key(target.nick))
    if not ignores(target, actor):
        target.send(f"*** {actor.nick} invites you to {room.name}: /join {room.name}")
    actor.send(f"*** {target.nick} is invited to {room.name}.")
    return None


def set_mode(hub, actor, arg: str) -> str | None:
    room = actor.room
    if not arg:
        modes = "+i (invite-only)" if room.rules is not None and room.rules.invite_only \
            else "none"
        actor.send(f"*** Modes of {room.name}: {modes}. /mode +i or -i changes it.")
        return None
    if arg not in ("+i", "-i"):
        return "usage: /mode +i (invite-only) or /mode -i; no other mode exists."
    if not is_op(room, actor):
        return f"only the operators of {room.name} may change its modes."
    if room is hub.lobby:
        return "the lobby is open to everyone."
    rules(room).invite_only = arg == "+i"
    hub.notice(room, f"{actor.nick} made {room.name} "
                     + ("invite-only" if arg == "+i" else "open to everyone"))
    return None


# -- server operators --------------------------------------------------------------
def oper(hub, session, password: str) -> str | None:
    if not hub.oper_password:
        return "no operator password is configured on this server."
    if not hmac.compare_digest(password.encode(), hub.oper_password.encode()):
        hub.log(f"failed /oper from {session.nick}")
        return "wrong password."
    session.operator = True
    hub.log(f"{session.nick} is now an operator")
    return None


def kill(hub, actor, nick: str, reason: str) -> str | None:
    if not actor.operator:
        return "only server operators may /kill (authenticate with /oper PASSWORD)."
    target = hub.member(nick) if nick else None
    if target is None:
        return f"no such nick: {nick}." if nick else "usage: /kill NICK [REASON]"
    if target is actor:
        return "use /quit to leave."
    why = reason or "no reason given"
    hub.log(f"{actor.nick} killed {target.nick} ({why})")
    target.send(f"*** You were disconnected by {actor.nick} ({why}).")
    target.quit(f"killed by {actor.nick}: {why}")
    return None


def wall(hub, actor, text: str) -> str | None:
    if not actor.operator:
        return "only server operators may /wall."
    if not text:
        return "usage: /wall TEXT"
    hub.to_everyone(f"*** Notice from {actor.nick} to everyone: {text}")
    return None


# -- what a person chooses -----------------------------------------------------------
def ignores(member, speaker) -> bool:
    """``member`` ignores ``speaker`` (or someone who looks like them)."""
    return ignores_nick(member, speaker.nick)


def ignores_nick(member, nick: str) -> bool:
    """``member`` ignores ``nick`` (a user here or on another node)."""
    ignored = member.ignored
    return bool(ignored) and not ignored.isdisjoint(look_keys(nick))


def ignore(session, nick: str) -> str | None:
    if not nick:
        shown = sorted(session.ignored_names.values())
        session.send("*** You ignore: " + ", ".join(shown) if shown
                     else "*** You ignore nobody. /ignore NICK hides what NICK says to you.")
        return None
    if name_key(nick) == name_key(session.nick or ""):
        return "you cannot ignore yourself."
    if len(session.ignored_names) >= MAX_IGNORED:
        return f"you ignore {MAX_IGNORED} nicks already; /unignore one first."
    session.ignored_names[name_key(nick)] = nick
    session.ignored.update(look_keys(nick))
    session.hub.ignoring.add(session)
    session.send(f"*** You no longer see what {nick} (or a look-alike) says.")
    return None


def unignore(session, nick: str) -> str | None:
    if not nick:
        return "usage: /unignore NICK"
    if session.ignored_names.pop(name_key(nick), None) is None:
        return f"you do not ignore {nick}."
    session.ignored = {key for name in session.ignored_names.values() for key in look_keys(name)}
    if not session.ignored_names:
        session.hub.ignoring.discard(session)
    session.send(f"*** You see what {nick} says again.")
    return None


def away(session, text: str) -> str | None:
    if len(text) > MAX_AWAY:
        return f"an away message is at most {MAX_AWAY} characters."
    session.away = text
    session.send(f"*** You are marked away: {text}" if text else "*** You are back.")
    return None
