"""Validation and normalisation of nicks and room names.

Both are compared case-insensitively after Unicode NFKC normalisation, so that
look-alike spellings of one name (full-width letters, compatibility forms,
different case) cannot be registered as two different users or rooms.  Nicks
are also compared by their TR39 skeletons (:func:`look_keys`), so that
``аlice`` (Cyrillic ``а``) cannot stand next to ``alice``; invisible and
filler characters (U+3164, zero-width ones) are never part of a name.
"""
from __future__ import annotations

import unicodedata

from tekcos.chat.confusables import is_ignorable, skeleton

NICK_MAX = 24
ROOM_MAX = 32
_NICK_EXTRA = frozenset("_-[]")
_ROOM_EXTRA = frozenset("_-#.")


def name_key(name: str) -> str:
    """The key under which a nick or room name is unique."""
    return unicodedata.normalize("NFKC", name).casefold()


def look_keys(name: str) -> tuple[str, str]:
    """Keys that are equal for names that look alike: the skeleton of the
    name as typed and of its case-folded form."""
    nfkc = unicodedata.normalize("NFKC", name)
    return skeleton(nfkc), skeleton(nfkc.casefold())


def _check(name: str, what: str, max_len: int, extra: frozenset[str]) -> str | None:
    if not name:
        return f"a {what} must not be empty"
    if len(name) > max_len:
        return f"a {what} is at most {max_len} characters (got {len(name)})"
    for ch in name:
        if is_ignorable(ch):
            return (f"a {what} may not contain invisible or filler characters "
                    f"(U+{ord(ch):04X})")
        if not (ch.isalpha() or ch.isdecimal() or ch in extra):
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            allowed = "".join(sorted(extra))
            return (f"a {what} may use letters, digits and {allowed} only, "
                    f"not {shown!r}")
    return None


def nick_error(nick: str) -> str | None:
    """Why ``nick`` is not acceptable, or None when it is."""
    return _check(nick, "nick", NICK_MAX, _NICK_EXTRA)


def room_error(room: str) -> str | None:
    """Why ``room`` is not an acceptable room name, or None when it is."""
    return _check(room, "room name", ROOM_MAX, _ROOM_EXTRA)
