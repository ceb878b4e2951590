"""Slash commands.  Each handler takes the session and the text after the
command name; it answers through ``session.send``/``session.error`` and acts
through ``session.hub``.  :data:`HELP` (one line each) and :data:`DETAILS`
(``/help COMMAND``) are the single source of the help; the IRC users'
commands are in :mod:`tekcos.chat.irc`."""
from __future__ import annotations

import time
from typing import Callable

from tekcos.chat.moderation import oper
from tekcos.text import human_size

HELP = [
    ("/help [COMMAND]", "this list, or what COMMAND does"),
    ("/nick NEW", "change your nick"),
    ("/who", "who is in your room, with idle times"),
    ("/rooms", "rooms with member counts and topics"),
    ("/join ROOM", "join ROOM too (created if new) and talk there"),
    ("/switch ROOM", "talk in ROOM, one of the rooms you are in"),
    ("/part [ROOM]", "leave ROOM (default: the room you talk in)"),
    ("/msg NICK TEXT", "private message"),
    ("/me ACTION", "say what you do: /me waves"),
    ("/topic [TEXT]", "show or set the room topic"),
    ("/history [N]", "the room's last N lines"),
    ("/files", "files pushed to this server, and those kept for you"),
    ("/send NICK FILE", "in tekcos chat: send FILE to NICK (elsewhere: tekcos push FILE --to HOST --for NICK)"),
    ("/accept N", "accept the file offered to you as N"),
    ("/decline N", "decline the file offered to you as N"),
    ("/scan", "list the devices on the server's LAN (ARP scan)"),
    ("/neighbors", "the last scan's result"),
    ("/oper PASSWORD", "become an operator"),
    ("/charset NAME", "your terminal's encoding, e.g. cp949 or latin-1"),
    ("/quit [REASON]", "leave"),
]

# What /help COMMAND adds to the line above (commands without an entry are
# explained by that line alone).
DETAILS: dict[str, str] = {
    "join": "You stay in your other rooms: their lines reach you tagged with the room, "
            "as [14:02] #dev <alice> hi, and yours go to the room you joined last "
            "(/switch ROOM changes that). Rooms other than the lobby are created by the "
            "first /join and go when the last member leaves; whoever creates a room is "
            "its operator (/help kick).",
    "part": "Whoever leaves their only room goes back to the lobby.",
    "msg": "Only NICK sees it, wherever NICK is. If NICK is away you are told.",
    "files": "Lists files pushed to this server and those kept for you, each with the "
             "tekcos get command that fetches it.",
    "charset": "For terminals that do not use UTF-8: what you type is read in NAME and "
               "what you receive is sent in NAME (cp949, euc-kr, latin-1, shift_jis...).",
    "oper": "Server operators may /scan, /kill and /wall, and run every room.",
}

Handler = Callable[[object, str], None]
_HANDLERS: dict[str, Handler] = {}


def command(name: str, registered: bool = True):
    def decorate(fn: Handler) -> Handler:
        fn.needs_nick = registered
        _HANDLERS[name] = fn
        return fn
    return decorate


def dispatch(session, text: str) -> None:
    """Run the command in ``text`` (which starts with "/")."""
    name, _, arg = text[1:].partition(" ")
    handler = _HANDLERS.get(name.lower())
    if handler is None:
        session.error(f"unknown command /{name}. Type /help for the list.")
    elif handler.needs_nick and session.nick is None:
        session.error("choose a nick first (or /quit).")
    else:
        handler(session, arg.strip())


def report(session, error: str | None) -> None:
    if error:
        session.error(error)


@command("help", registered=False)
def do_help(session, arg: str) -> None:
    if arg:
        name = arg.lstrip("/").split(" ")[0].lower()
        name = "neighbors" if name == "neighbours" else name
        found = [(usage, what) for usage, what in HELP if usage[1:].split(" ")[0] == name]
        if not found:
            session.error(f"no command /{name}. /help lists them all.")
            return
        usage, what = found[0]
        lines = [f"*** {usage}: {what}"]
        if name in DETAILS:
            lines.append(f"*** {DETAILS[name]}")
        session.write_lines(lines)
        return
    width = max(len(usage) for usage, _ in HELP)
    lines = ["*** Commands (any other line is said to your room; //text sends /text):"]
    lines += [f"***   {usage.ljust(width)}  {what}" for usage, what in HELP]
    session.write_lines(lines)


@command("nick")
def do_nick(session, arg: str) -> None:
    if not arg:
        session.error("usage: /nick NEW")
        return
    old = session.nick
    error = session.hub.rename(session, arg)
    if error:
        session.error(error)
    else:
        session.peer.log_nick(old, session.nick)


@command("who")
def do_who(session, arg: str) -> None:
    room = session.room
    entries = list(session.hub.who(room))
    session.send(f"*** {room.name} ({len(entries)}): " + ", ".join(entries))


@command("rooms")
def do_rooms(session, arg: str) -> None:
    lines = ["*** Rooms:"]
    for name, count, topic in session.hub.room_list():
        lines.append(f"***   {name} ({count})" + (f": {topic}" if topic else ""))
    session.write_lines(lines)


@command("join")
def do_join(session, arg: str) -> None:
    if not arg:
        session.error("usage: /join ROOM")
        return
    report(session, session.hub.join(session, arg))


@command("part")
def do_part(session, arg: str) -> None:
    # IRC clients send "/part #room reason": the reason is not kept.
    report(session, session.hub.part(session, arg.split(" ")[0] or None))


@command("switch")
def do_switch(session, arg: str) -> None:
    if not arg:
        session.error("usage: /switch ROOM")
        return
    report(session, session.hub.switch(session, arg))


@command("msg")
def do_msg(session, arg: str) -> None:
    nick, _, text = arg.partition(" ")
    text = text.strip()
    if not nick or not text:
        session.error("usage: /msg NICK TEXT")
        return
    report(session, session.hub.whisper(session, nick, text))


@command("me")
def do_me(session, arg: str) -> None:
    if not arg:
        session.error("usage: /me ACTION")
        return
    session.hub.act(session, arg)


@command("topic")
def do_topic(session, arg: str) -> None:
    room = session.room
    if not arg:
        session.send(f"*** Topic of {room.name}: {room.topic}" if room.topic
                     else f"*** {room.name} has no topic. /topic TEXT sets one.")
        return
    if len(arg) > 300:
        session.error("a topic is at most 300 characters.")
        return
    session.hub.set_topic(session, arg)


@command("history")
def do_history(session, arg: str) -> None:
    if arg and (not arg.isdecimal() or int(arg) < 1):
        session.error("usage: /history [N] with N a positive number")
        return
    lines = session.hub.history_lines(session.room, int(arg) if arg else None)
    if not lines:
        session.send(f"*** No history in {session.room.name}.")
        return
    session.write_lines(lines)


@command("send")
def do_send(session, arg: str) -> None:
    # tekcos chat does /send itself (the file is on the user's machine);
    # anyone else reaching here is told how.
    session.error("/send works in tekcos chat; from a shell: tekcos push FILE --to HOST "
                  "--for NICK")


@command("accept")
def do_accept(session, arg: str) -> None:
    _answer(session, arg, True)


@command("decline")
def do_decline(session, arg: str) -> None:
    _answer(session, arg, False)


def _answer(session, arg: str, accept: bool) -> None:
    deliveries = session.hub.deliveries
    if deliveries is None:
        session.error("this server does not take files for people (UDP is off).")
        return
    report(session, deliveries.answer(session, arg, accept))


@command("files")
def do_files(session, arg: str) -> None:
    deliveries = session.hub.deliveries
    mine = deliveries.files_for(session) if deliveries is not None else []
    if mine:
        lines = [f"*** Kept for you ({len(mine)}):"]
        for ready in mine:
            lines.append(f"***   {ready.name} ({human_size(ready.size)}) from {ready.sender}: "
                         f"tekcos get {ready.code} --from {ready.where or deliveries.where(session)}")
        session.write_lines(lines)
    files = session.hub.files
    if not files:
        if session.hub.pushes_enabled:
            session.send("*** No files received yet. Send one with: tekcos push FILE --to HOST")
        else:
            session.send("*** No files: this server does not receive pushes (UDP is off).")
        return
    lines = [f"*** Files received ({len(files)}):"]
    for when, who, name, size in files:
        stamp = time.strftime("%H:%M", time.localtime(when))
        lines.append(f"***   {name} ({human_size(size)}) from {who} at {stamp}")
    session.write_lines(lines)


def _neighbourhood(session):
    hood = getattr(session.hub, "neighbourhood", None)
    if hood is None:
        session.error("LAN scanning is not available on this server.")
    return hood


@command("oper")
def do_oper(session, arg: str) -> None:
    if not arg:
        session.error("usage: /oper PASSWORD")
        return
    error = oper(session.hub, session, arg)
    if error:
        session.error(error)
    else:
        session.send("*** You are now an operator.")


@command("scan")
def do_scan(session, arg: str) -> None:
    hood = _neighbourhood(session)
    if hood is not None:
        hood.request(session)


@command("neighbors")
def do_neighbors(session, arg: str) -> None:
    hood = _neighbourhood(session)
    if hood is not None:
        hood.neighbors(session)


_HANDLERS["neighbours"] = do_neighbors


@command("charset", registered=False)
def do_charset(session, arg: str) -> None:
    if not arg:
        session.send(f"*** Your charset is {session.charset}. /charset NAME changes it.")
        return
    error = session.set_charset(arg)
    if error:
        session.error(error)
    else:
        session.send(f"*** Charset set to {session.charset} for what you send and receive.")


@command("quit", registered=False)
def do_quit(session, arg: str) -> None:
    session.send("*** Bye.")
    session.quit(f"quit: {arg}" if arg else "quit")
