"""An in-memory storage for the receiver (the interface its docstring
names): part files are bytearrays, a kept one is a Checkpoint and its
bytes in a dict, and nothing touches a disk.  Receiver tests with no file
system, and a check that the receiver needs no more than that interface."""
from __future__ import annotations

import hashlib

from tekcos.push.policy import Checkpoint
from tekcos.push.worker import DiskWorker


class MemoryPart:
    def __init__(self, store: "MemoryStorage", name: str, tag: str, template, have: int,
                 subdir: str):
        self.store, self.name, self.tag, self.template, self.subdir = (store, name, tag,
                                                                       template, subdir)
        kept = store.kept.pop(tag, (None, b""))[1] if have else b""
        self.data = bytearray(kept[:have])
        self.result = None
        self.gone = False

    opened = True
    backlog = 0

    def append(self, data: bytes) -> None:
        self.data += data

    def extend(self, chunks: list[bytes], size: int) -> None:
        for chunk in chunks:
            self.data += chunk

    def start_publish(self, sha256: str | None) -> None:
        if sha256 is not None and hashlib.sha256(self.data).hexdigest() != sha256:
            self.result = False
            self.gone = True
            return
        self.result = self.store.publish(self.name, self.subdir, bytes(self.data))

    def publish_result(self):
        return self.result

    def discard(self) -> None:
        self.gone = True

    def suspend(self) -> None:
        if self.template is None:
            self.gone = True
            return
        t = self.template
        self.store.kept[self.tag] = (Checkpoint(t.sha256, t.size, t.name, t.payload,
                                                len(self.data),
                                                hashlib.sha256(self.data).hexdigest()),
                                     bytes(self.data))


class MemoryStorage:
    """What :class:`tekcos.push.receiver.Receiver` asks of its storage."""

    def __init__(self, free: int = 1 << 40, reserve: int = 0):
        self.worker = DiskWorker(threaded=False)
        self.free, self.reserve = free, reserve
        self.files: dict[str, bytes] = {}           # "subdir/name" or "name" -> data
        self.kept: dict[str, tuple] = {}            # tag -> (Checkpoint, bytes)

    def space(self):
        return self.free, self.reserve

    def checkpoint(self, tag: str):
        kept = self.kept.get(tag)
        return kept[0] if kept else None

    def open_part(self, name: str, tag: str, template=None, have: int = 0, subdir: str = ""):
        return MemoryPart(self, name, tag, template, have, subdir)

    def publish(self, name: str, subdir: str, data: bytes) -> str:
        stored, n = name, 0
        while (f"{subdir}/{stored}" if subdir else stored) in self.files:
            n += 1
            stem, dot, ext = name.rpartition(".")
            stored = f"{stem}-{n}.{ext}" if dot else f"{name}-{n}"
        self.files[f"{subdir}/{stored}" if subdir else stored] = data
        return stored
