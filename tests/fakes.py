"""Test doubles shared by the push tests."""
from __future__ import annotations

from tekcos.push.storage import Downloads


class Disk(Downloads):
    """A real downloads directory whose free space is whatever the test says
    (1 TiB unless told otherwise), with no reserve unless given one."""

    def __init__(self, path, free: int = 1 << 40, reserve: int = 0):
        super().__init__(str(path), reserve=reserve)
        self.free = free

    def free_bytes(self) -> int:
        return self.free
