"""``tekcos push``: send files or a message to a tekcos server over UDP.

Exit status: 0 everything delivered and verified; 1 the server refused or
failed something (reason printed); 2 usage errors; 3 the server cannot be
reached or stops answering; 130 interrupted (run it again to continue).
"""
from __future__ import annotations

import getpass
import hashlib
import json
import mmap
import os
import secrets
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

from twisted.internet import defer

from tekcos import exits
from tekcos.address import resolve_server
from tekcos.hosts import parse_address
from tekcos.identity import client_id
from tekcos.push import wire
from tekcos.push.gro import listen_udp
from tekcos.push.sender import DELIVERED, REJECTED, WAITING, Sender
from tekcos.push.udp import PushProtocol


class UsageError(Exception):
    pass


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Progress:
    """A one-line progress bar with rate and ETA on a terminal (stderr)."""

    def __init__(self, stream, label: str, total: int, clock=time.monotonic):
        self.stream = stream
        self.label = label
        self.total = total
        self.clock = clock
        self.start = clock()
        self.last = 0.0
        self.offset = 0      # bytes the server had already (a resumed push)

    def update(self, done: int, force: bool = False, note: str = "") -> None:
        now = self.clock()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        if note:   # for example "waiting for a slot": no rate to show yet
            self.stream.write(f"\r{self.label[:30]:30} {note}\x1b[K")
            self.stream.flush()
            return
        elapsed = max(now - self.start, 1e-6)
        rate = (done - self.offset) / elapsed
        frac = done / self.total if self.total else 1.0
        eta = (self.total - done) / rate if rate > 0 else 0
        bar = ("#" * int(frac * 24)).ljust(24)
        self.stream.write(f"\r{self.label[:30]:30} {frac * 100:5.1f}% [{bar}] "
                          f"{rate / 1e6:7.1f} MB/s ETA {eta:4.0f}s\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


@defer.inlineCallbacks
def push_one(reactor, family: int, ip: str, port: int, *, label: str, kind: str, name: str,
             size: int, sha: str, read, sender_name: str, timeout: float, window: int,
             payload: int | None, progress_stream=None, resume: bool = True, running=None,
             background: bool = False, client: str = "", recipient: str = "",
             wait_accept: float = 300.0, watch=None):
    sender = Sender(offer_id=secrets.randbits(64) or 1, name=name, size=size, sha256=sha,
                    kind=kind, read=read, sender_name=sender_name, payload_size=payload,
                    window=window, timeout=timeout, resume=resume, background=background,
                    client=client, recipient=recipient, wait_accept=wait_accept)
    bar = Progress(progress_stream, label, size) if progress_stream is not None else None

    def on_progress(core: Sender) -> None:
        if watch is not None:
            watch(core)
        if bar is None:
            return
        bar.offset = core.resumed_bytes
        note = ""
        if core.state == WAITING:
            note = f"waiting for {core.waiting_for} to accept" if core.waiting_for \
                else "waiting for a slot"
        bar.update(core.bytes_acked, note=note)
    protocol = PushProtocol(sender, reactor, on_progress=on_progress if bar or watch else None)
    if running is not None:   # for an interruption to cancel it
        running["protocol"] = protocol
    interface = "::" if family == socket.AF_INET6 else ""
    port_obj = listen_udp(reactor, 0, protocol, interface=interface)
    started = time.monotonic()
    try:
        protocol.transport.connect(ip, port)
        protocol.begin()
        yield protocol.done
    finally:
        if bar:
            bar.finish()
        yield port_obj.stopListening()
    return sender, time.monotonic() - started


def result_record(file: str, sender: Sender, seconds: float, sha: str) -> dict:
    delivered = sender.status == DELIVERED
    moving = sender.delivered_at - sender.accepted_at if delivered and sender.accepted_at \
        else seconds
    return {
        "file": file, "name": sender.stored_name if delivered else None,
        "bytes": sender.size, "seconds": round(seconds, 6),
        # The rate of the data, from the last ACCEPT: not the wait for a
        # slot, or for the person a file is for to accept it.
        "sending_seconds": round(moving, 6),
        "mb_per_s": round((sender.size - sender.resumed_bytes) / moving / 1e6, 3)
        if delivered and moving > 0 else 0.0,
        "sha256": sha, "payload": sender.payload_size, "retransmits": sender.retransmits,
        "retransmitted_bytes": sender.retransmitted_bytes,
        "resumed_bytes": sender.resumed_bytes, "sent_bytes": sender.sent_bytes,
        "status": sender.status,
        "error": sender.error,
        "for": sender.offer.get("for"),
    }


def exit_code_for(sender: Sender) -> int:
    if sender.status == DELIVERED:
        return exits.OK
    if sender.status == REJECTED or sender.failed_by_peer:
        return exits.REFUSED
    return exits.UNREACHABLE


@dataclass
class Job:
    """One thing to push: a file on disk or the message text."""
    label: str        # what the user named (a path, or "(message)")
    kind: str         # "file" or "message"
    name: str         # the name offered to the server
    source: object    # a path (files) or the bytes (messages)
    size: int
    sha256: str


def plan(args) -> list[Job]:
    """The pushes ``args`` asks for, hashed, in order (message first)."""
    jobs = []
    if args.message is not None:
        data = args.message.encode("utf-8")
        jobs.append(Job("(message)", "message", "message", data, len(data),
                        hashlib.sha256(data).hexdigest()))
    for path in args.files:
        jobs.append(Job(path, "file", os.path.basename(path), path, os.path.getsize(path),
                        sha256_of(path)))
    return jobs


@contextmanager
def readable(job: Job):
    """A ``read(offset, n)`` over the job's bytes (files are memory-mapped)."""
    if isinstance(job.source, bytes) or not job.size:
        data = job.source if isinstance(job.source, bytes) else b""
        yield lambda off, n: data[off:off + n]
        return
    with open(job.source, "rb") as handle, \
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapping:
        yield lambda off, n: mapping[off:off + n]


def skipped_record(job: Job, why: int = exits.UNREACHABLE) -> dict:
    return {"file": job.label, "name": None, "bytes": job.size, "seconds": 0.0,
            "sending_seconds": 0.0, "mb_per_s": 0.0, "sha256": job.sha256, "retransmits": 0,
            "retransmitted_bytes": 0, "resumed_bytes": 0, "sent_bytes": 0,
            "status": "interrupted" if why == exits.INTERRUPTED else "failed",
            "error": "skipped: interrupted" if why == exits.INTERRUPTED
            else "skipped: the server did not answer"}


@defer.inlineCallbacks
def run(reactor, args, out=None, err=None):
    """Push everything in ``args``; returns the exit status (:mod:`tekcos.exits`)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        family, ip, port = resolve_server(args.to)
    except OSError as e:
        err.write(f"tekcos push: {e}\n")
        return exits.UNREACHABLE
    sender_name = args.as_name or getpass.getuser()
    client = client_id() if getattr(args, "resume", True) else ""
    show_progress = err.isatty() and not args.quiet
    status = exits.OK
    running: dict = {}
    finished = defer.Deferred()

    def interrupt():
        # Ctrl-C or SIGTERM: the server is told (ABORT) and keeps what it
        # has; the records still get written before the reactor stops.
        running["interrupted"] = True
        protocol = running.get("protocol")
        if protocol is not None:
            protocol.cancel("interrupted")
        return finished

    trigger = reactor.addSystemEventTrigger("before", "shutdown", interrupt)
    try:
        for job in plan(args):
            if status in (exits.UNREACHABLE, exits.INTERRUPTED):
                # No point waiting for a server that is gone, or a user who left.
                _report(out, err, args, skipped_record(job, status))
                continue
            with readable(job) as read:
                sender, seconds = yield push_one(
                    reactor, family, ip, port, label=job.label, kind=job.kind, name=job.name,
                    size=job.size, sha=job.sha256, read=read, sender_name=sender_name,
                    timeout=args.timeout, window=args.window, payload=args.payload,
                    resume=getattr(args, "resume", True), running=running,
                    background=getattr(args, "background", False), client=client,
                    recipient=getattr(args, "recipient", None) or "",
                    wait_accept=getattr(args, "wait_accept", 300.0),
                    progress_stream=err if show_progress else None)
            running.pop("protocol", None)
            record = result_record(job.label, sender, seconds, job.sha256)
            if running.get("interrupted") and sender.status != DELIVERED:
                record["status"] = "interrupted"
                record["error"] = ("interrupted; run the same command again to continue "
                                   "where it stopped" if job.kind == "file" else "interrupted")
                status = exits.INTERRUPTED
            _report(out, err, args, record)
            status = exits.worst(status, exit_code_for(sender))
    finally:
        reactor.removeSystemEventTrigger(trigger)
        finished.callback(None)
    return status


def _report(out, err, args, record: dict) -> None:
    if args.json:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        return
    if record["status"] == "delivered":
        resumed = f", {record['resumed_bytes']} were there already" \
            if record["resumed_bytes"] else ""
        where = f"kept for {record['for']}, who has been told how to fetch it" \
            if record.get("for") else f"delivered as {record['name'] or '(message)'}"
        waited = record["seconds"] - record["sending_seconds"]
        waited = f" after {waited:.1f} s of waiting" if waited >= 0.5 else ""
        out.write(f"{record['file']}: {where}, "
                  f"{record['bytes']} bytes{resumed} in {record['sending_seconds']:.2f} s"
                  f"{waited} ({record['mb_per_s']:.1f} MB/s, {record['retransmits']} "
                  f"retransmits)\n")
        out.flush()
    else:
        err.write(f"tekcos push: {record['file']}: {record['status']}: {record['error']}\n")


def check_args(args) -> None:
    """Raise UsageError for anything wrong before the network is touched."""
    if not args.files and args.message is None:
        raise UsageError("nothing to push: give FILE... or --message TEXT")
    if args.files and args.message is not None:
        raise UsageError("give FILE... or --message TEXT, not both")
    for path in args.files:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a regular file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{path}: not readable")
    if args.message is not None and not args.message:
        raise UsageError("--message: empty message")
    recipient = getattr(args, "recipient", None)
    if recipient is not None:
        if args.message is not None:
            raise UsageError("--for: only files can be sent to someone; say it in the chat")
        if not recipient.strip() or len(recipient) > 64:
            raise UsageError("--for: give a nick, or #ROOM for everyone in a room")
    if getattr(args, "wait_accept", 300.0) <= 0:
        raise UsageError("--wait-accept: must be positive")
    if args.payload is not None and not 16 <= args.payload <= wire.MAX_DATAGRAM - wire.HEADER_SIZE:
        raise UsageError(f"--payload: must be between 16 and {wire.MAX_DATAGRAM - wire.HEADER_SIZE}")
    if args.window < 1:
        raise UsageError("--window: must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    try:
        parse_address(args.to)
    except ValueError as e:
        raise UsageError(f"--to: {e}") from None
