"""Files kept on another node, brought to this one for its users.

With several nodes (``--redis``), a file pushed ``--for bob`` to node A
while bob is on node B is kept by A.  B then fetches it from A, with the
same protocol as ``tekcos get``, into its own downloads directory and
keeps it under the same CODE: bob fetches it from his own node, by
``tekcos get`` or from the page, like any file kept for him there, and
never needs a route to A (store and forward, as a mail relay does).

Each relay fetches into a staging directory of its own
(``DOWNLOADS/.relay/CODE``); the verified file then moves to
``DOWNLOADS/.for`` (numbered if the name is taken) and the staging
directory, with any part file, goes.  At most ``limit`` relays run at
once: beyond that, or where the fetch fails, the user is sent to the node
that keeps the file, as without a relay.
"""
from __future__ import annotations

import os
import shutil
from typing import Callable

from tekcos import exits
from tekcos.push.storage import numbered

MAX_RELAYS = 4
STAGING = ".relay"


class Relays:
    """``fetch_file(code, where, output)`` fetches a CODE from HOST:PORT
    ``where`` into the directory ``output`` and returns a Deferred firing
    ``(status, error, record)`` as :func:`tekcos.push.get.fetch` does
    (``record["file"]`` the verified file, ``record["sha256"]`` its hash);
    ``done(code, stored, sha256)`` is told of a file now kept here (stored
    relative to ``downloads``) and says whether it is still wanted (if not,
    it is removed), ``failed(code, reason)`` of one that could not be
    brought."""

    def __init__(self, downloads: str, fetch_file: Callable, done: Callable, failed: Callable,
                 log: Callable[[str], None] = lambda text: None, limit: int = MAX_RELAYS,
                 subdir: str = ".for"):
        self.downloads = downloads
        self.fetch_file = fetch_file
        self.done = done
        self.failed = failed
        self.log = log
        self.limit = limit
        self.subdir = subdir
        self.running: dict[str, object] = {}     # CODE -> its Deferred
        self.stats = {"relayed": 0, "failed": 0, "refused": 0}
        # No relay outlives the process that ran it: what one left is gone.
        shutil.rmtree(os.path.join(downloads, STAGING), ignore_errors=True)

    def bring(self, code: str, where: str) -> bool:
        """Start bringing ``code``'s file from ``where``; False when this
        node cannot (too many at once): the caller sends the user there."""
        if code in self.running:
            return True
        if len(self.running) >= self.limit:
            self.stats["refused"] += 1
            return False
        staging = self._staging(code)
        try:
            shutil.rmtree(staging, ignore_errors=True)    # a relay cut short before
            os.makedirs(staging)
        except OSError as e:
            self.log(f"cannot relay {code}: {e.strerror}")
            self.stats["refused"] += 1
            return False
        fetching = self.fetch_file(code, where, staging)
        self.running[code] = fetching
        fetching.addCallbacks(self._fetched, self._broken, callbackArgs=(code,),
                              errbackArgs=(code,))
        return True

    def coming(self, code) -> bool:
        """Whether ``code``'s file is on its way here."""
        return isinstance(code, str) and code in self.running

    def _staging(self, code: str) -> str:
        return os.path.join(self.downloads, STAGING, code)

    def _fetched(self, result, code: str) -> None:
        status, error, record = result
        staging = self._staging(code)
        try:
            if status == exits.INTERRUPTED:      # (its words are for a person at a shell)
                self._fail(code, "this server is stopping")
                return
            if status != exits.OK or not record or not record.get("file"):
                self._fail(code, error or "the fetch failed")
                return
            try:
                stored = self._keep(record["file"])
            except OSError as e:
                self._fail(code, f"cannot keep it here: {e.strerror}")
                return
            self.running.pop(code, None)
            self.stats["relayed"] += 1
            if not self.done(code, stored, record.get("sha256") or ""):
                os.unlink(os.path.join(self.downloads, stored))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _broken(self, failure, code: str) -> None:
        self._fetched((None, failure.getErrorMessage(), None), code)

    def _fail(self, code: str, reason: str) -> None:
        self.running.pop(code, None)
        self.stats["failed"] += 1
        self.log(f"could not relay {code}: {reason}")
        self.failed(code, reason)

    def _keep(self, path: str) -> str:
        """Move the verified file into the kept files' directory, never over
        another; its name there, relative to the downloads directory."""
        directory = os.path.join(self.downloads, self.subdir)
        os.makedirs(directory, exist_ok=True)
        name = os.path.basename(path)
        for n in range(10000):
            candidate = name if n == 0 else numbered(name, n)
            try:
                os.link(path, os.path.join(directory, candidate))
            except FileExistsError:
                continue
            os.unlink(path)
            return os.path.join(self.subdir, candidate)
        raise OSError(0, "no free name")
