"""What may be stored, and how a kept partial file is named and described:
the pure rules of the receiving side (no disk, no clock).  The storage
(:mod:`tekcos.push.storage`, :mod:`tekcos.push.resume`) applies them to the
file system; the receiver (:mod:`tekcos.push.receiver`) decides with them.
"""
from __future__ import annotations

import errno
import hashlib
import re
import unicodedata
from dataclasses import dataclass

from tekcos.text import strip_bidi

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_NAME_BYTES = 255
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$",
                               re.IGNORECASE)


class BadName(ValueError):
    """The offered name cannot be stored; ``str()`` says why."""


def safe_name(offered: str) -> str:
    """Reduce ``offered`` to a plain file name, or raise BadName.

    Directory parts (``/`` or ``\\``) are dropped; control characters and NUL
    are refused; bidi controls are removed; leading dots (hidden files, ``..``) become ``_``; trailing dots
    and spaces (which Windows drops) are removed; reserved Windows device
    names get a ``_`` prefix; names over 255 bytes are refused.
    """
    if not isinstance(offered, str) or not offered:
        raise BadName("empty name")
    if any(unicodedata.category(c) == "Cc" for c in offered):
        raise BadName("control characters in the name")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in offered):
        raise BadName("invalid characters in the name")
    # Bidi controls would let a name show another extension than it has.
    name = strip_bidi(unicodedata.normalize("NFC", re.split(r"[/\\]", offered)[-1]))
    name = name.rstrip(". ")
    if name.startswith("."):
        name = "_" + name.lstrip(".")
    if not name.strip(" _"):
        raise BadName(f"no usable file name in {offered!r}")
    stem = name.split(".", 1)[0].rstrip(" ")
    if _WINDOWS_RESERVED.match(stem):
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadName(f"name longer than {MAX_NAME_BYTES} bytes")
    return name



class DamagedPartial(OSError):
    """What the server kept of an earlier attempt cannot be continued."""

    def __init__(self, reason: str):
        super().__init__(errno.EIO, reason)


# Bytes of a file received but not yet written, at most: past it a push's
# window shrinks and an upload's socket is read more slowly.
DISK_BACKLOG = 16 << 20


class Refused(ValueError):
    """An offered file cannot be taken; ``str()`` says why (sent back)."""


def admissible_name(offered, size: int, max_file_size: int) -> str:
    """The name to store an offered file under, once its name and size
    allow it; raises Refused.  The one check for pushes and web uploads."""
    try:
        name = safe_name(offered)
    except BadName as e:
        raise Refused(f"invalid name: {e}") from None
    if size > max_file_size:
        raise Refused(f"file too large: {size} bytes, the limit is {max_file_size}")
    return name


def fits(room: tuple[int, int] | OSError, size: int) -> None:
    """Refused unless ``size`` bytes fit in ``room`` (from :func:`disk_room`)."""
    if isinstance(room, OSError):
        raise Refused(f"downloads directory unavailable: {room.strerror}")
    free, reserve = room
    if size + reserve > free:
        raise Refused(f"not enough disk space: {size} bytes offered, "
                      f"{max(0, free - reserve)} available")


# -- kept partial files (tekcos.push.resume) ------------------------------------------
def key_for(sha256: str, size: int, host: str) -> str:
    """The 16 hex digits naming a resumable push's files."""
    return hashlib.sha256(f"{sha256}:{size}:{host}".encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    """What a part file holds: ``have`` bytes of the offered file, whose
    SHA-256 is ``prefix_sha256``; received in packets of ``payload`` bytes."""
    sha256: str
    size: int
    name: str
    payload: int
    have: int
    prefix_sha256: str

    def valid(self) -> bool:
        return (_SHA256.match(self.sha256) is not None
                and _SHA256.match(self.prefix_sha256) is not None
                and self.payload > 0 and 0 < self.have < self.size
                and self.have % self.payload == 0)
