"""Files from inside ``tekcos chat``: ``/send NICK FILE`` and fetching what
you ``/accept``.

The chat client (a feature of its own) knows nothing of pushes; ``tekcos``
(cli.py) hands it a :class:`FileActions`, whose two methods start a push
``--for`` NICK or a ``tekcos get`` in the same process and report in the
chat window, one line at a time, through ``say``.  A front end with a
transfers panel (the desktop window) also gives a ``watcher``, told of each
transfer's start, progress (at most ten times a second) and end, and may
cancel or retry one by its key.
"""
from __future__ import annotations

import getpass
import itertools
import os

from twisted.internet import defer, threads

from tekcos import exits
from tekcos.address import resolve_server
from tekcos.identity import client_id
from tekcos.push import get
from tekcos.push.command import Job, push_one, readable, sha256_of
from tekcos.push.sender import DELIVERED, WAITING

REPORT_EVERY = 0.1     # seconds between progress reports to a watcher


class FileActions:
    """``say(text)`` shows a line; ``server`` is the chat's HOST[:PORT]
    (pushes go to the same port over UDP); ``downloads`` is where fetched
    files go.  ``watcher``, if given, has ``started(key, name, direction,
    peer)``, ``moved(key, done, total, note)`` and ``ended(key, ok,
    note, name, size)`` (the name and size known at the end: a fetch
    starts knowing only its code); ``direction`` is ``"send"`` or
    ``"get"``."""

    def __init__(self, reactor, server: str, say, downloads: str = ".", watcher=None):
        self.reactor = reactor
        self.server = server
        self.say = say
        self.downloads = downloads
        self.watcher = watcher
        self.running: list[defer.Deferred] = []
        self._keys = itertools.count(1)
        self.jobs: dict[int, tuple] = {}     # key -> how to run it again
        self.live: dict[int, dict] = {}      # key -> {"protocol": ...} while it runs
        self._reported: dict[int, float] = {}

    def send_file(self, nick: str | None, recipient: str, path: str,
                  key: int | None = None) -> defer.Deferred:
        key = key or next(self._keys)
        self.jobs[key] = ("send", nick, recipient, path)
        d = self._send(key, nick, recipient, os.path.expanduser(path))
        return self._track(d)

    def fetch(self, code: str, where: str, key: int | None = None,
              save_as: str | None = None) -> defer.Deferred:
        """Fetch the file kept under ``code``; into ``downloads`` under the
        server's name, or as ``save_as`` (a path the user chose; fetched
        beside it, then renamed over it)."""
        key = key or next(self._keys)
        self.jobs[key] = ("get", code, where, save_as)
        d = self._fetch(key, code, where, save_as)
        return self._track(d)

    def cancel(self, key: int) -> None:
        """Stop transfer ``key``; what arrived is kept, so :meth:`retry` resumes."""
        protocol = self.live.get(key, {}).get("protocol")
        if protocol is None:
            return
        if self.jobs[key][0] == "send":
            protocol.cancel("cancelled")
        else:
            protocol.cancel()

    def retry(self, key: int) -> defer.Deferred | None:
        """Run transfer ``key`` again (it resumes where it stopped)."""
        job = self.jobs.get(key)
        if job is None or key in self.live:
            return None
        if job[0] == "send":
            _, nick, recipient, path = job
            return self.send_file(nick, recipient, path, key=key)
        _, code, where, save_as = job
        return self.fetch(code, where, key=key, save_as=save_as)

    def _track(self, d: defer.Deferred) -> defer.Deferred:
        self.running.append(d)
        d.addBoth(lambda result: (self.running.remove(d), result)[1])
        return d

    # -- what the watcher hears ------------------------------------------------------
    def _started(self, key: int, name: str, direction: str, peer: str) -> dict:
        running: dict = {}
        self.live[key] = running
        if self.watcher is not None:
            self.watcher.started(key, name, direction, peer)
        return running

    def _moved(self, key: int, done: int, total: int, note: str = "") -> None:
        now = self.reactor.seconds()
        if self.watcher is None or now - self._reported.get(key, -1.0) < REPORT_EVERY:
            return
        self._reported[key] = now
        self.watcher.moved(key, done, total, note)

    def _ended(self, key: int, ok: bool, note: str, name: str = "", size: int = 0) -> None:
        self.live.pop(key, None)
        self._reported.pop(key, None)
        if self.watcher is not None:
            self.watcher.ended(key, ok, note, name, size)

    @defer.inlineCallbacks
    def _send(self, key: int, nick, recipient: str, path: str):
        name = os.path.basename(path)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            self.say(f"*** /send: {path}: no such readable file")
            return exits.USAGE
        try:
            family, ip, port = resolve_server(self.server)
        except OSError as e:
            self.say(f"*** /send: {e}")
            return exits.UNREACHABLE
        self.say(f"*** sending {name} to {recipient}: waiting for {recipient} to accept")
        running = self._started(key, name, "send", recipient)
        try:
            sha = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                                  sha256_of, path)
            job = Job(path, "file", name, path, os.path.getsize(path), sha)

            def watch(core) -> None:
                note = f"waiting for {recipient} to accept" if core.state == WAITING else ""
                self._moved(key, core.bytes_acked, core.size, note)
            with readable(job) as read:   # memory-mapped, as tekcos push reads it
                sender, seconds = yield push_one(
                    self.reactor, family, ip, port, label=name, kind="file", name=name,
                    size=job.size, sha=sha, read=read, sender_name=nick or getpass.getuser(),
                    timeout=10.0, window=8192, payload=None, client=client_id(),
                    recipient=recipient, watch=watch, running=running)
        except OSError as e:
            self._ended(key, False, f"cannot read it: {e.strerror or e}")
            self.say(f"*** {name} was not sent: {e.strerror or e}")
            return exits.USAGE
        if sender.status == DELIVERED:
            kept = f"; {sender.resumed_bytes / 1e6:.1f} MB were there already" \
                if sender.resumed_bytes else ""
            self._ended(key, True, f"on the server for {recipient}{kept}")
            self.say(f"*** {name}: on the server for {recipient}, who is told how to fetch it "
                     f"({job.size / 1e6:.1f} MB in {seconds:.1f} s)")
            return exits.OK
        self._ended(key, False, str(sender.error))
        self.say(f"*** {name} was not sent: {sender.error}")
        return exits.REFUSED

    @defer.inlineCallbacks
    def _fetch(self, key: int, code: str, where: str, save_as: str | None = None):
        into = os.path.dirname(os.path.abspath(save_as)) if save_as else self.downloads
        self.say(f"*** fetching into {os.path.abspath(into)} …")
        running = self._started(key, code[:12], "get", where)

        def watch(fetching) -> None:
            have, size, kept = fetching.bytes_received()
            self._moved(key, have, size)
        status, error, record = yield get.fetch(self.reactor, code, where, into,
                                                watch=watch, running=running)
        if status == exits.OK:
            where_now, name = f"saved in {os.path.abspath(into)}", record["name"]
            if save_as:
                try:
                    os.replace(record["file"], save_as)   # same directory: atomic
                    where_now, name = f"saved as {save_as}", os.path.basename(save_as)
                except OSError as e:
                    where_now += f" (not renamed to {save_as}: {e.strerror or e})"
            self._ended(key, True, where_now, name, record["bytes"])
            self.say(f"*** {get.describe(record)}; {where_now}")
        else:
            self._ended(key, False, error)
            self.say(f"*** could not fetch it: {error}; try: tekcos get {code} --from {where}")
        return status
