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
        # Told (from the worker's thread) whenever a job ends: the push
        # receiver's adapter and the web uploads share one worker.
        self._listeners: list[Callable[[], None]] = [wake] if wake else []
        self._closed = False

    def on_wake(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the worker's thread) whenever a job ends."""
        self._listeners.append(listener)

    def wake(self) -> None:
        for listener in self._listeners:
            listener()

    def submit(self, job: Callable, *args) -> Future:
        """Run ``job(*args)`` after everything submitted before it (after
        :meth:`close`: at once, in the caller's thread; a part file removed
        while the server stops)."""
        if self._executor is None or self._closed:
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
        if self._executor is not None and not self._closed:
            self._executor.shutdown(wait=True)
        self._closed = True
