"""Files from inside ``tekcos chat``: ``/send NICK FILE`` and fetching what
you ``/accept``.

The chat client (a feature of its own) knows nothing of pushes; ``tekcos``
(cli.py) hands it a :class:`FileActions`, whose two methods start a push
``--for`` NICK or a ``tekcos get`` in the same process and report in the
chat window, one line at a time, through ``say``.
"""
from __future__ import annotations

import getpass
import os

from twisted.internet import defer, threads

from tekcos import exits
from tekcos.address import resolve_server
from tekcos.identity import client_id
from tekcos.push import get
from tekcos.push.command import Job, push_one, readable, sha256_of
from tekcos.push.sender import DELIVERED


class FileActions:
    """``say(text)`` shows a line; ``server`` is the chat's HOST[:PORT]
    (pushes go to the same port over UDP); ``downloads`` is where fetched
    files go."""

    def __init__(self, reactor, server: str, say, downloads: str = "."):
        self.reactor = reactor
        self.server = server
        self.say = say
        self.downloads = downloads
        self.running: list[defer.Deferred] = []

    def send_file(self, nick: str | None, recipient: str, path: str) -> defer.Deferred:
        d = self._send(nick, recipient, os.path.expanduser(path))
        return self._track(d)

    def fetch(self, code: str, where: str) -> defer.Deferred:
        d = self._fetch(code, where)
        return self._track(d)

    def _track(self, d: defer.Deferred) -> defer.Deferred:
        self.running.append(d)
        d.addBoth(lambda result: (self.running.remove(d), result)[1])
        return d

    @defer.inlineCallbacks
    def _send(self, nick, recipient: str, path: str):
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
        sha = yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                              sha256_of, path)
        job = Job(path, "file", name, path, os.path.getsize(path), sha)
        with readable(job) as read:   # memory-mapped, as tekcos push reads it
            sender, seconds = yield push_one(
                self.reactor, family, ip, port, label=name, kind="file", name=name,
                size=job.size, sha=sha, read=read, sender_name=nick or getpass.getuser(),
                timeout=10.0, window=8192, payload=1400, client=client_id(),
                recipient=recipient)
        if sender.status == DELIVERED:
            self.say(f"*** {name}: on the server for {recipient}, who is told how to fetch it "
                     f"({job.size / 1e6:.1f} MB in {seconds:.1f} s)")
            return exits.OK
        self.say(f"*** {name} was not sent: {sender.error}")
        return exits.REFUSED

    @defer.inlineCallbacks
    def _fetch(self, code: str, where: str):
        self.say(f"*** fetching into {os.path.abspath(self.downloads)} …")
        status, error, record = yield get.fetch(self.reactor, code, where, self.downloads)
        if status == exits.OK:
            self.say(f"*** {get.describe(record)}")
        else:
            self.say(f"*** could not fetch it: {error}; try: tekcos get {code} --from {where}")
        return status
