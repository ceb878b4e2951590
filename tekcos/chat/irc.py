"""The commands IRC users reach for: /list, /names, /whois, /away, /ignore,
and the room and server operators' /kick, /ban, /op, /invite, /mode, /kill,
/wall.  Handlers parse the text after the command and call
:mod:`tekcos.chat.moderation`; this module only registers them (imported
by the session) and adds their lines to ``/help``."""
from __future__ import annotations

import time

from tekcos.chat import moderation
from tekcos.chat.commands import DETAILS, HELP, command, do_rooms, report
from tekcos.chat.hub import format_idle
from tekcos.chat.names import name_key

HELP += [
    ("/list", "the rooms (as /rooms)"),
    ("/names [ROOM]", "who is in ROOM (yours by default); @ marks its operators"),
    ("/whois NICK", "where NICK is, idle time, connection, away message"),
    ("/away [MESSAGE]", "mark yourself away (no MESSAGE: back)"),
    ("/ignore [NICK]", "hide what NICK says to you (no NICK: the list)"),
    ("/unignore NICK", "see NICK again"),
    ("/kick NICK [REASON]", "room operators: send NICK back to the lobby"),
    ("/ban NICK", "room operators: keep NICK out (until /unban or the room empties)"),
    ("/unban NICK", "room operators: lift a ban"),
    ("/op NICK", "room operators: make NICK an operator of the room"),
    ("/invite NICK", "invite NICK to your room (needed for a +i room)"),
    ("/mode [+i or -i]", "room operators: make the room invite-only, or open"),
    ("/kill NICK [REASON]", "server operators: disconnect NICK"),
    ("/wall TEXT", "server operators: a notice to everyone"),
]

DETAILS.update({
    "kick": "Room operators (whoever created the room, and server operators) send a member "
            "back to the lobby; the room is told why. Another operator, yourself and the "
            "lobby cannot be kicked.",
    "ban": "Room operators keep a member out of the room: by the look of the nick (so a "
           "look-alike is out too) and by the address the member came from. The ban lasts "
           "until /unban or until the room empties.",
    "invite": "Tells NICK how to join your room; in an invite-only room (/mode +i) only "
              "invited nicks may /join, and only its operators may invite.",
    "ignore": "Hides what NICK says in your rooms and what NICK sends you by /msg, for "
              "this connection; look-alike nicks are hidden too. At most "
              f"{moderation.MAX_IGNORED} nicks.",
    "away": "Marks you away: /who and /whois show the message, and whoever sends you "
            "a /msg is told. /away alone brings you back.",
    "whois": "Shows NICK's room, idle time, how NICK is connected (telnet, nc, web, TLS) "
             "and away message; server operators also see the address.",
    "mode": "Without an argument shows the room's modes. +i: only invited nicks may "
            "/join; -i: open again.",
})


@command("list")
def do_list(session, arg: str) -> None:
    do_rooms(session, arg)


@command("names")
def do_names(session, arg: str) -> None:
    hub = session.hub
    room = session.room if not arg else hub.rooms.get(name_key(arg))
    if room is None:
        session.error(f"no room {arg}. /list shows the rooms.")
        return
    names = [("@" if moderation.is_op(room, m) and room is not hub.lobby else "") + m.nick
             for m in room.members]
    session.send(f"*** {room.name} ({len(names)}): " + " ".join(names))


@command("whois")
def do_whois(session, arg: str) -> None:
    hub = session.hub
    target = hub.member(arg) if arg else None
    if target is None and arg and hub.federation is not None:
        remote = hub.federation.holder(arg)
        if remote is not None and name_key(remote.nick) == name_key(arg):
            lines = [f"*** {remote.nick}: on node {remote.node}, in "
                     f"{', '.join(remote.rooms) or 'no room'}, idle {format_idle(remote.idle)}"]
            if remote.away:
                lines.append(f"***   away: {remote.away}")
            session.write_lines(lines)
            return
    if target is None:
        session.error(f"no such nick: {arg}." if arg else "usage: /whois NICK")
        return
    since = time.strftime("%H:%M", time.localtime(target.since))
    lines = [f"*** {target.nick}: in {', '.join(room.name for room in target.rooms)}, idle "
             f"{format_idle(hub.now() - target.last_active)}, connected since {since} "
             f"by {getattr(target.peer, 'kind', 'TCP')}"]
    if target.away:
        lines.append(f"***   away: {target.away}")
    if target.operator:
        lines.append("***   a server operator")
    elif moderation.is_op(target.room, target) and target.room is not hub.lobby:
        lines.append(f"***   an operator of {target.room.name}")
    if session.operator:
        lines.append(f"***   address: {getattr(target.peer, 'host', None) or 'unknown'}")
    session.write_lines(lines)


def _nick_and_reason(arg: str) -> tuple[str, str]:
    nick, _, reason = arg.partition(" ")
    return nick, reason.strip()


def _acting(name: str, action, with_reason: bool = False, own: bool = False) -> None:
    """Register /name: ``action(hub, session, arg)`` (``action(session,
    arg)`` for what only concerns the user: ``own``), its refusal reported."""
    def handler(session, arg: str) -> None:
        args = _nick_and_reason(arg) if with_reason else (arg,)
        report(session, action(session, *args) if own else action(session.hub, session, *args))
    handler.__name__ = f"do_{name}"
    command(name)(handler)


for _name, _action, _with_reason, _own in [
        ("away", moderation.away, False, True),
        ("ignore", moderation.ignore, False, True),
        ("unignore", moderation.unignore, False, True),
        ("kick", moderation.kick, True, False),
        ("ban", moderation.ban, False, False),
        ("unban", moderation.unban, False, False),
        ("op", moderation.give_op, False, False),
        ("invite", moderation.invite, False, False),
        ("mode", moderation.set_mode, False, False),
        ("kill", moderation.kill, True, False),
        ("wall", moderation.wall, False, False)]:
    _acting(_name, _action, _with_reason, _own)
