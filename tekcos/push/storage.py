"""Where received files go: safe names, ``.part`` files, atomic publication.

Nothing is ever written outside the downloads directory: a name is reduced
to a plain base name or refused, data goes to a hidden ``.part`` file opened
with O_EXCL, and only a verified file is published, with ``link()`` so that
an existing file is never overwritten (a numbered suffix is used instead).
"""
from __future__ import annotations

import os
import re
import unicodedata

from tekcos.text import strip_bidi

MAX_NAME_BYTES = 255
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$",
                               re.IGNORECASE)
FLUSH_AT = 1 << 20


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


def numbered(name: str, n: int) -> str:
    """``report.pdf`` -> ``report-1.pdf`` (n = 1), keeping the extension."""
    stem, dot, ext = name.rpartition(".")
    if not stem:           # no extension
        stem, dot, ext = name, "", ""
    candidate = f"{stem}-{n}{dot}{ext}"
    while len(candidate.encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
        candidate = f"{stem}-{n}{dot}{ext}"
    return candidate


class PartFile:
    """An incoming file: append in order, then publish or discard."""

    def __init__(self, directory: str, name: str, tag: str):
        self.directory = directory
        self.name = name
        self.path = os.path.join(directory, f".{tag}.part")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        self.pending: list[bytes] = []
        self.pending_len = 0
        self.closed = False

    def append(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_len += len(data)
        if self.pending_len >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending, self.pending_len = [], 0
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]

    def publish(self) -> str:
        """fsync, then link under the final name (numbered if taken);
        returns the name as stored."""
        self.flush()
        os.fsync(self.fd)
        os.fchmod(self.fd, 0o644)
        os.close(self.fd)
        self.closed = True
        n = 0
        while True:
            candidate = self.name if n == 0 else numbered(self.name, n)
            try:
                os.link(self.path, os.path.join(self.directory, candidate))
                break
            except FileExistsError:
                n += 1
        os.unlink(self.path)
        return candidate

    def discard(self) -> None:
        if not self.closed:
            os.close(self.fd)
            self.closed = True
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# The name of a part file the server itself made: a hidden file named after
# the session's 64-bit token (see PartFile and Endpoint._open_part).
_OUR_PART = re.compile(r"^\.[0-9a-f]{16}\.part$")
RESERVE_MAX = 64 << 20
RESERVE_SHARE = 20    # at most 1/20 of the filesystem is kept free


class Downloads:
    """The downloads directory.

    ``reserve`` is the free space every accepted file must leave behind; by
    default 64 MiB, or 5% of the filesystem if that is smaller (so that a
    small filesystem still takes small files).
    """

    def __init__(self, directory: str, reserve: int | None = None):
        self.directory = os.path.abspath(directory)
        self._reserve = reserve

    @property
    def reserve(self) -> int:
        if self._reserve is None:
            import psutil
            total = psutil.disk_usage(self.directory).total
            self._reserve = min(RESERVE_MAX, total // RESERVE_SHARE)
        return self._reserve

    def free_bytes(self) -> int:
        import psutil
        return psutil.disk_usage(self.directory).free

    def open_part(self, name: str, tag: str) -> PartFile:
        return PartFile(self.directory, name, tag)

    def clean_stale_parts(self) -> int:
        """Remove the part files a killed server left behind: only names of
        the server's own pattern, never anyone else's ``.something.part``."""
        removed = 0
        for entry in os.scandir(self.directory):
            if _OUR_PART.match(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        return removed
