"""Disk work off the reactor thread: writes, hashing, fsync and the final link.

A :class:`DiskWorker` runs jobs one after another, in the order they were
submitted, on one background thread, so a slow disk never stalls the chat
or the UDP socket.  When a job finishes it calls ``wake()`` from that thread
(the UDP adapter sets it to ``reactor.callFromThread(...)``), so the receiver
looks at the result promptly.  ``DiskWorker(threaded=False)`` runs each job
at once in the caller's thread: the sans-IO tests and the simulation use it,
and then everything happens in a fixed order.

Nothing here imports Twisted.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class DiskWorker:
    def __init__(self, threaded: bool = True, wake: Callable[[], None] | None = None):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tekcos-disk") \
            if threaded else None
        self.wake = wake or (lambda: None)

    def submit(self, job: Callable, *args) -> Future:
        """Run ``job(*args)`` after everything submitted before it."""
        if self._executor is None:
            done: Future = Future()
            try:
                done.set_result(job(*args))
            except Exception as e:   # kept in the Future, like the threaded case
                done.set_exception(e)
            return done
        future = self._executor.submit(job, *args)
        future.add_done_callback(lambda f: self.wake())
        return future

    def close(self) -> None:
        """Wait for what was submitted (part files being removed) and stop."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
