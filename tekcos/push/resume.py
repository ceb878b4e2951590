"""What the server keeps of an interrupted push, so that it can continue.

A file push that is cut off (the sender killed, the network gone, the server
stopped) leaves its part file in the downloads directory together with a
small checkpoint beside it::

    .<key>.part      the bytes received in order, at least ``have`` of them
    .<key>.resume    JSON: the offer (sha256, size, name, payload), ``have``
                     and the SHA-256 of the first ``have`` bytes

``key`` is derived from the file's SHA-256, its size and the sender's IP
address: the same ``tekcos push`` run again from the same host finds it,
nobody else does.  A checkpoint is written (after an fsync of the part file)
when a transfer stops and every :data:`CHECKPOINT_EVERY` bytes while it runs,
so a server that is killed loses at most that much.  Nothing here is
trusted on reading: the part file is cut back to ``have`` bytes and those
bytes are hashed again before anything is added to them
(:meth:`tekcos.push.storage.PartFile`).  Checkpoints older than the resume
period are swept with their part files.

Plain file I/O, no Twisted.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict

from tekcos.push.policy import Checkpoint, key_for  # noqa: F401

CHECKPOINT_EVERY = 64 << 20
MAX_STATE = 4096            # a checkpoint file larger than this is not ours
_KEY = re.compile(r"^[0-9a-f]{16}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
PART = re.compile(r"^\.([0-9a-f]{16})\.part$")
STATE = re.compile(r"^\.([0-9a-f]{16})\.resume$")


def part_path(directory: str, key: str) -> str:
    return os.path.join(directory, f".{key}.part")


def state_path(directory: str, key: str) -> str:
    return os.path.join(directory, f".{key}.resume")


def read(directory: str, key: str) -> Checkpoint | None:
    """The checkpoint for ``key``, or None if there is none, it is not
    well-formed, or its part file holds fewer than ``have`` bytes."""
    if not _KEY.match(key):
        return None
    try:
        with open(state_path(directory, key), "rb") as f:
            raw = f.read(MAX_STATE + 1)
        part_size = os.stat(part_path(directory, key)).st_size
    except OSError:
        return None
    if len(raw) > MAX_STATE:
        return None
    try:
        obj = json.loads(raw)
        checkpoint = Checkpoint(**{k: obj[k] for k in Checkpoint.__dataclass_fields__})
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    types_ok = all(isinstance(getattr(checkpoint, k), t) and not isinstance(getattr(checkpoint, k), bool)
                   for k, t in (("sha256", str), ("size", int), ("name", str),
                                ("payload", int), ("have", int), ("prefix_sha256", str)))
    if not types_ok or not checkpoint.valid() or part_size < checkpoint.have:
        return None
    return checkpoint


def write(directory: str, key: str, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically (the part file is already synced)."""
    final = state_path(directory, key)
    temporary = final + ".tmp"
    data = json.dumps(asdict(checkpoint), separators=(",", ":"), ensure_ascii=False).encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                 | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)


def forget(directory: str, key: str) -> None:
    """Remove the checkpoint and its part file, whichever exist."""
    for path in (state_path(directory, key), state_path(directory, key) + ".tmp",
                 part_path(directory, key)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def sweep(directory: str, max_age: float, in_use: frozenset = frozenset(),
          at_start: bool = False, now: float | None = None) -> int:
    """Remove what can no longer be resumed; returns how many pushes' files went.

    Always: checkpoints (and their part files) not touched for ``max_age``
    seconds.  At start-up also: part files without a checkpoint (a server
    killed before its first checkpoint: nothing in them is known to be
    good) and checkpoints without a part file.  Keys in ``in_use`` (live
    transfers) are left alone.  Only names of the server's own patterns are
    ever touched.
    """
    now = time.time() if now is None else now
    parts, states = set(), {}
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False):
            continue
        if m := PART.match(entry.name):
            parts.add(m.group(1))
        elif m := STATE.match(entry.name):
            states[m.group(1)] = entry.stat(follow_symlinks=False).st_mtime
    doomed = {key for key, mtime in states.items() if now - mtime > max_age}
    if at_start:
        doomed |= parts - states.keys()
        doomed |= states.keys() - parts
    doomed -= in_use
    for key in doomed:
        forget(directory, key)
    return len(doomed)
