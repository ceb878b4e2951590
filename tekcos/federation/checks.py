"""What a node takes from the channel, checked as strictly as a client's
input (sans-IO): a value of the wrong type, too long, a nick or room name
a client could not have, a file message with a field out of range, all
raise :class:`Malformed`; text comes out with its control characters (and
so any telnet IAC, CR or LF) removed."""
from __future__ import annotations

from tekcos.chat.names import nick_error, room_error
from tekcos.delivery import is_code
from tekcos.hosts import is_host_port
from tekcos.text import clean_text

MAX_TEXT = 8192            # characters of a relayed line
MAX_FILE_NAME = 255


class Malformed(ValueError):
    """A message from the channel that is not one of ours."""


def checked_text(value, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise Malformed("text")
    # No control characters (and so no telnet IAC or CR/LF) reach a member.
    return clean_text(value)


def checked_nick(value) -> str:
    if not isinstance(value, str) or nick_error(value):
        raise Malformed("nick")
    return value


def checked_room(value) -> str:
    if not isinstance(value, str) or room_error(value):
        raise Malformed("room")
    return value


def _number(message: dict) -> int:
    number = message.get("num")
    if type(number) is not int or not 0 < number < 1 << 31:
        raise Malformed("num")
    return number


def answer_fields(message: dict) -> tuple[int, str, bool]:
    """An ``answer`` message: (offer number, nick, accepted)."""
    accept = message.get("accept")
    if not isinstance(accept, bool):
        raise Malformed("accept")
    return _number(message), checked_nick(message.get("nick")), accept


def file_fields(message: dict) -> tuple[str, str, dict]:
    """A ``file`` message: (about, the nick it is for, its fields: ``num``
    (0 for ``fetched``), ``frm``, ``name``, and ``size``, ``room``,
    ``code``, ``where`` by kind)."""
    about = message.get("about")
    if about not in ("offer", "ready", "gone", "fetched"):
        raise Malformed("about")
    fields = {"num": _number(message) if about != "fetched" else 0,
              "frm": checked_text(message.get("frm"), 64) or "someone",
              "name": checked_text(message.get("name"), MAX_FILE_NAME)}
    if about in ("offer", "ready"):
        size = message.get("size")
        if type(size) is not int or not 0 <= size < 1 << 63:
            raise Malformed("size")
        fields["size"] = size
    if about == "offer":
        room = message.get("room", "")
        if not isinstance(room, str) or room and not room.startswith("#"):
            raise Malformed("room")
        fields["room"] = "#" + checked_room(room[1:]) if room else ""
    if about in ("ready", "fetched"):
        code = message.get("code")
        if not is_code(code):
            raise Malformed("code")
        fields["code"] = code
    if about == "ready":
        where = message.get("where")
        if not is_host_port(where):
            raise Malformed("where")
        fields["where"] = where
    return about, checked_nick(message.get("to")), fields
