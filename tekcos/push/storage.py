"""Where received files go: safe names, ``.part`` files, atomic publication.

Nothing is ever written outside the downloads directory: a name is reduced
to a plain base name or refused, data goes to a hidden ``.part`` file opened
with O_EXCL, and only a verified file is published, with ``link()`` so that
an existing file is never overwritten (a numbered suffix is used instead).
Writes, hashing, fsync and the link run on the download worker's thread.
"""
from __future__ import annotations

import errno
import hashlib
import os
from collections import deque
from concurrent.futures import Future

from tekcos.push import resume
from tekcos.push.policy import (DISK_BACKLOG, MAX_NAME_BYTES, BadName,  # noqa: F401
                                DamagedPartial, Refused, admissible_name, fits, safe_name)
from tekcos.push.worker import DiskWorker

FLUSH_AT = 1 << 20


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
    """An incoming file: append in order, then publish (verified) or discard.

    The data is hashed and written on the download worker's thread
    (:mod:`tekcos.push.worker`); the caller only queues it.  :attr:`backlog`
    is what is queued but not yet written, for back-pressure.  The file is
    opened (or an earlier attempt's file checked and continued) by the worker
    as well.  An open or write that
    failed (a full disk) raises its OSError from the next :meth:`append`,
    :meth:`flush` or :meth:`publish_result`.
    """

    def __init__(self, directory: str, name: str, tag: str, worker: DiskWorker,
                 resumable: resume.Checkpoint | None = None, have: int = 0,
                 verified: "VerifiedPrefixes | None" = None):
        self.directory = directory
        self.name = name
        self.tag = tag
        self.worker = worker
        # The offer (sha256, size, name, payload) when an interruption keeps
        # the file for a later run (see tekcos.push.resume); None: it goes.
        self.resumable = resumable
        self.path = os.path.join(directory, f".{tag}.part")
        self.fd: int | None = None
        self.hasher = hashlib.sha256()
        self.written = 0          # bytes in the part file (the worker's count)
        self.sha256: str | None = None   # of the whole file, once published
        self.checkpointed = 0
        self.pending: list[bytes] = []
        self.pending_len = 0
        self.jobs: deque[tuple[Future, int]] = deque()
        self.closed = False
        self._owned = False       # the part file is ours (created or continued by us)
        self._publishing: Future | None = None
        self._failed: OSError | None = None   # set by the worker, read by the reactor
        # Opened by the worker too: everything done to one name happens in
        # submission order (an earlier push's part file is put away first).
        self.verified = verified
        # A subdirectory of the downloads directory to publish into (files
        # kept for people: tekcos.delivery); publish_result() then names it.
        self.subdir = ""
        self.checkpoint_every = 0     # 0: resume.CHECKPOINT_EVERY
        self._opening = worker.submit(self._open, have)
        self.jobs.append((self._opening, 0))

    # -- the reactor's side ----------------------------------------------------------
    def append(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_len += len(data)
        if self.pending_len >= FLUSH_AT:
            self.flush()

    def extend(self, chunks: list[bytes], size: int) -> None:
        """Several in-order chunks of ``size`` bytes in all, as one append."""
        self.pending += chunks
        self.pending_len += size
        if self.pending_len >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        self._check()
        self._submit_pending()

    def _submit_pending(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending, self.pending_len = [], 0
            self.jobs.append((self.worker.submit(self._write, data), len(data)))

    @property
    def opened(self) -> bool:
        """The worker has opened the file (re-read what an earlier attempt
        kept, where it continues one), or failed to."""
        return self._opening.done()

    @property
    def backlog(self) -> int:
        """Bytes received but not yet on disk."""
        self._forget_done()
        return self.pending_len + sum(n for _, n in self.jobs)

    def start_publish(self, sha256: str | None) -> None:
        """Once the worker has written everything: check the SHA-256 (unless
        None: then :attr:`sha256` says what it was), fsync and link the file
        under its name (numbered if taken)."""
        self.flush()
        self._publishing = self.worker.submit(self._publish, sha256)

    def publish_result(self) -> str | None | bool:
        """None while publishing; then the name as stored, or False if the
        data did not match the SHA-256 (the part file is gone).  Raises the
        OSError of a failed write, fsync or link."""
        future = self._publishing
        if future is None or not future.done():
            return None
        return future.result()

    def discard(self) -> None:
        """Remove the part file (after whatever is still being written)."""
        self.pending, self.pending_len = [], 0
        self.worker.submit(self._discard)

    def suspend(self) -> None:
        """Keep what arrived for a later run: the worker writes what is
        queued, syncs it and records a checkpoint (or removes the file if
        that fails or it is not resumable)."""
        self._submit_pending()
        self.worker.submit(self._suspend)

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _forget_done(self) -> None:
        jobs = self.jobs
        while jobs and jobs[0][0].done():
            jobs.popleft()

    # -- the worker's side --------------------------------------------------------------
    def _open(self, have: int) -> None:
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            if have:
                self.fd = os.open(self.path, flags)
                self._owned = True
                self._check_prefix(have)
            else:
                if self.resumable is not None:   # an old attempt at the same file goes
                    resume.forget(self.directory, self.tag)
                self.fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            self._owned = True
        except OSError as e:
            self._failed = e
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.closed = True
            if have or isinstance(e, DamagedPartial):
                resume.forget(self.directory, self.tag)

    def _check_prefix(self, have: int) -> None:
        """Continue after ``have`` bytes, once they are shown to be the ones
        recorded (hashed again, not taken on trust)."""
        checkpoint = resume.read(self.directory, self.tag)
        template = self.resumable
        if checkpoint is None or template is None or checkpoint.have != have \
                or (checkpoint.sha256, checkpoint.size, checkpoint.payload) != \
                (template.sha256, template.size, template.payload):
            raise DamagedPartial("the partial file on the server is gone or out of date")
        known = self.verified.take(self.tag, have, os.fstat(self.fd)) \
            if self.verified is not None else None
        if known is not None and known.hexdigest() == checkpoint.prefix_sha256:
            # This process put the file away itself and nothing has touched
            # it since: what it hashed then still holds (no re-read).
            self.hasher = known
            os.lseek(self.fd, have, os.SEEK_SET)
            self.written = self.checkpointed = have
            return
        os.ftruncate(self.fd, have)   # a killed server may have written past its checkpoint
        with open(self.path, "rb") as f:
            left = have
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise DamagedPartial("the partial file on the server is shorter than recorded")
                self.hasher.update(chunk)
                left -= len(chunk)
        if self.hasher.hexdigest() != checkpoint.prefix_sha256:
            raise DamagedPartial("the partial file on the server is damaged")
        os.lseek(self.fd, have, os.SEEK_SET)
        self.written = self.checkpointed = have

    def _write(self, data: bytes) -> None:
        if self._failed is not None or self.closed:
            return
        try:
            self.hasher.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            self.written += len(data)
            if self.resumable is not None and \
                    self.written - self.checkpointed >= (self.checkpoint_every
                                                         or resume.CHECKPOINT_EVERY):
                self._checkpoint()
        except OSError as e:   # reported to the reactor by _check / publish
            self._failed = e

    def _checkpoint(self) -> None:
        os.fsync(self.fd)
        template = self.resumable
        resume.write(self.directory, self.tag, resume.Checkpoint(
            template.sha256, template.size, template.name, template.payload,
            self.written, self.hasher.hexdigest()))
        self.checkpointed = self.written

    def _suspend(self) -> None:
        if self.closed:
            return
        keep = self._failed is None and self.resumable is not None \
            and 0 < self.written < self.resumable.size
        if keep and self.written != self.checkpointed:
            # (Nothing new since the last checkpoint: it stands as written.)
            try:
                self._checkpoint()
            except OSError:
                keep = False
        if keep and self.verified is not None:
            try:
                self.verified.put(self.tag, self.written, self.hasher.copy(),
                                  os.fstat(self.fd))
            except OSError:
                pass
        os.close(self.fd)
        self.closed = True
        if not keep:
            self._remove()

    def _publish(self, sha256: str | None) -> str | bool:
        if self._failed is not None:
            raise self._failed
        self.sha256 = self.hasher.hexdigest()
        if sha256 is not None and self.sha256 != sha256:
            self._discard()
            return False
        os.fsync(self.fd)
        os.fchmod(self.fd, 0o644)
        os.close(self.fd)
        self.closed = True
        target = self.directory
        if self.subdir:
            target = os.path.join(self.directory, self.subdir)
            os.makedirs(target, mode=0o700, exist_ok=True)
        n = 0
        while True:
            candidate = self.name if n == 0 else numbered(self.name, n)
            try:
                os.link(self.path, os.path.join(target, candidate))
                break
            except FileExistsError:
                n += 1
        self._remove()
        return os.path.join(self.subdir, candidate) if self.subdir else candidate

    def _discard(self) -> None:
        if not self.closed:
            if self.fd is not None:
                os.close(self.fd)
            self.closed = True
        self._remove()

    def _remove(self) -> None:
        if not self._owned:
            return
        if self.resumable is not None:
            resume.forget(self.directory, self.tag)
        else:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


class VerifiedPrefixes:
    """What this process knows of the part files it put away: their length,
    the hash of their bytes (a live ``hashlib`` object, ready to go on) and
    the file's identity then (inode, size, modification time).  Continuing
    one that no one has touched since takes its hash from here instead of
    re-reading the file: a sender that resumes and aborts in a loop costs
    no disk reads.  Used on the disk worker's thread only."""

    MAX = 1024

    def __init__(self):
        self._known: dict[str, tuple[int, object, tuple]] = {}

    @staticmethod
    def _identity(st) -> tuple:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def put(self, tag: str, have: int, hasher, st) -> None:
        self._known.pop(tag, None)
        if len(self._known) >= self.MAX:
            self._known.pop(next(iter(self._known)))
        self._known[tag] = (have, hasher, self._identity(st))

    def take(self, tag: str, have: int, st):
        """The hash object for ``tag``'s first ``have`` bytes if the file is
        as it was put away, else None; forgotten either way (the caller
        now owns the file)."""
        entry = self._known.pop(tag, None)
        if entry is None or entry[0] != have or entry[2] != self._identity(st):
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._known)


def check_space(downloads: "Downloads", size: int) -> None:
    """Refused unless ``size`` bytes fit with the reserve left free."""
    fits(disk_room(downloads), size)


def disk_room(downloads: "Downloads") -> tuple[int, int] | OSError:
    """(free bytes, reserve) of the downloads' filesystem, or the error
    that says it is unavailable (a statvfs: run it on the disk thread)."""
    try:
        return downloads.free_bytes(), downloads.reserve
    except OSError as e:
        return e


RESERVE_MAX = 64 << 20
RESERVE_SHARE = 20    # at most 1/20 of the filesystem is kept free


class Downloads:
    """The downloads directory.

    ``reserve`` is the free space every accepted file must leave behind; by
    default 64 MiB, or 5% of the filesystem if that is smaller (so that a
    small filesystem still takes small files).
    """

    def __init__(self, directory: str, reserve: int | None = None,
                 worker: DiskWorker | None = None, checkpoint_every: int = 0):
        self.directory = os.path.abspath(directory)
        # Bytes between two checkpoints of a running transfer (0: the
        # default); what a killed receiver loses at most.
        self.checkpoint_every = checkpoint_every
        self._reserve = reserve
        # Inline by default (tests, simulation); the server passes a threaded one.
        self.worker = worker or DiskWorker(threaded=False)
        self.verified = VerifiedPrefixes()

    @property
    def reserve(self) -> int:
        if self._reserve is None:
            import psutil
            total = psutil.disk_usage(self.directory).total
            self._reserve = min(RESERVE_MAX, total // RESERVE_SHARE)
        return self._reserve

    def space(self) -> tuple[int, int] | OSError:
        """(free bytes, reserve), or why they cannot be known (a statvfs:
        for the disk thread)."""
        return disk_room(self)

    def free_bytes(self) -> int:
        import psutil
        return psutil.disk_usage(self.directory).free

    def open_part(self, name: str, tag: str, resumable: resume.Checkpoint | None = None,
                  have: int = 0, subdir: str = "") -> PartFile:
        """A part file named after ``tag`` (16 hex digits): fresh, or
        continuing after the ``have`` bytes an earlier attempt left; once
        verified it is published under ``subdir`` (a plain name) if given."""
        part = PartFile(self.directory, name, tag, self.worker, resumable, have, self.verified)
        part.subdir = subdir
        part.checkpoint_every = self.checkpoint_every
        return part

    def checkpoint(self, tag: str) -> resume.Checkpoint | None:
        return resume.read(self.directory, tag)

    def sweep(self, max_age: float, in_use: frozenset = frozenset(),
              at_start: bool = False) -> int:
        """Remove part files that can no longer be resumed (see
        :func:`tekcos.push.resume.sweep`): only names of the server's own
        patterns, never anyone else's ``.something.part``."""
        return resume.sweep(self.directory, max_age, in_use, at_start)
