"""Giving memory back to the system after a burst.

A client that does not read may pin up to ``--max-buffer`` bytes of output
before it is cut off; forty of them pin forty megabytes.  Python frees those
buffers when the connections go, but glibc's allocator keeps freed memory
that is not at the top of its heap, so a server that survived one such burst
would keep its peak size for good (measured: 60 -> 90 MB, back to 62 MB only
once trimmed).  ``malloc_trim`` hands the free pages back.  Other C
libraries (musl, macOS) have no such call and need none: there it is a no-op.
"""
from __future__ import annotations

import ctypes
from typing import Callable

TRIM_DELAY = 1.0      # seconds: one trim after a burst of drops, not one per drop


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` as a function of no arguments, or None
    where the C library has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class Trimmer:
    """Runs ``trim`` once, :data:`TRIM_DELAY` seconds after the first of a
    burst of :meth:`soon` calls, on ``clock`` (a reactor or ``task.Clock``)."""

    def __init__(self, clock, trim: Callable[[], object] | None, delay: float = TRIM_DELAY):
        self.clock = clock
        self.trim = trim
        self.delay = delay
        self.trims = 0
        self._call = None

    def soon(self) -> None:
        if self.trim is not None and self._call is None:
            self._call = self.clock.callLater(self.delay, self._run)

    def _run(self) -> None:
        self._call = None
        self.trims += 1
        self.trim()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
