"""``tekcos get CODE --from HOST[:PORT]``: fetch a file kept for you.

The server is the sender and this command the receiver: it asks with GET,
then runs the same receiving :class:`~tekcos.push.receiver.Receiver` that
the server runs for pushes (windows, selective ACKs, the SHA-256 check, a
hidden part file published under a safe name that never overwrites) in the
output directory.  Interrupted (Ctrl-C, killed, the network gone), it keeps
what arrived as a hidden part file there, and the same command run again
continues from it.  Exit statuses are those of ``tekcos push``.
"""
from __future__ import annotations

import json
import os
import socket
import sys

from twisted.internet import defer

from tekcos import exits
from tekcos.address import resolve_server
from tekcos.hosts import is_host_port, parse_address
from tekcos.push import wire
from tekcos.push.command import Progress
from tekcos.push.gro import listen_udp
from tekcos.push.receiver import Limits, Receiver
from tekcos.push.serve import new_get_id
from tekcos.push.storage import Downloads
from tekcos.push.udp import ServerProtocol, path_payload, size_socket_buffers
from tekcos.push.worker import DiskWorker

GET_RTO = 0.25          # the first GET is repeated after this long, doubling
LINGER = 0.3            # after the last packet: time for the DONE to be taken
CHECKPOINT = 32 << 20


class UsageError(ValueError):
    pass


class FetchProtocol(ServerProtocol):
    """Asks for ``code`` until the server offers the file, then receives it;
    ``done`` fires with (status, record)."""

    def __init__(self, endpoint: Receiver, clock, code: str, timeout: float,
                 on_progress=None, relay: bool = False):
        super().__init__(endpoint, clock, buffer_bytes=32 << 20, on_complete=self.completed)
        self.code = code
        self.relay = relay          # a node fetching for its users (tekcos.push.relay)
        self.timeout = timeout
        self.get_id = new_get_id()
        self.on_progress = on_progress
        self.done: defer.Deferred = defer.Deferred()
        self.started = 0.0
        self.completed_at = None   # when the file was verified and stored
        self.offered = False
        self.received = None          # the Received, once verified
        self.progress = (0, 0, 0)
        self._get_call = None
        self._rto = GET_RTO
        self._heard = 0.0
        self._watch = None
        self.moved = None             # HOST:PORT of the node that keeps the file

    # -- asking -----------------------------------------------------------------------
    def begin(self) -> None:
        self.started = self._heard = self.clock.seconds()
        self._send_get()
        self._watch = self.clock.callLater(1.0, self._check)

    def _send_get(self) -> None:
        self._get_call = None
        if self.offered or self.done.called:
            return
        # The packet size our path carries: the server's packets take it.
        body = {"code": self.code, "payload": path_payload(self.transport)}
        if self.relay:
            body["relay"] = True
        self._write(wire.encode_json(wire.GET, self.get_id, body, pad_to=232), None)
        self._get_call = self.clock.callLater(self._rto, self._send_get)
        self._rto = min(self._rto * 2, 2.0)

    def datagramReceived(self, data: bytes, addr) -> None:
        self._heard = self.clock.seconds()
        if len(data) >= wire.HEADER_SIZE and data[1] == wire.REJECT \
                and int.from_bytes(data[4:12], "big") == self.get_id and not self.offered:
            self._refused(data)
            return
        if len(data) >= wire.HEADER_SIZE and data[1] == wire.OFFER:
            self.offered = True
        super().datagramReceived(data, addr)
        if self.on_progress is not None:
            self.on_progress(self)

    def _refused(self, data: bytes) -> None:
        try:
            body = wire.decode_json(wire.decode(data)[3])
        except wire.Malformed:
            return
        retry = body.get("retry_after")
        if isinstance(retry, (int, float)) and 0 < retry <= 60:
            if self._get_call is not None and self._get_call.active():
                self._get_call.cancel()
            self._get_call = self.clock.callLater(retry, self._send_get)
            return
        moved = body.get("moved")
        if is_host_port(moved):
            self.moved = moved          # kept by another node of the hub: ask it
        self._finish(exits.REFUSED, str(body.get("error", "refused"))[:300])

    # -- what the endpoint reports ------------------------------------------------------
    def completed(self, received) -> None:
        self.received = received
        # The file is here, verified and stored: that ends the transfer's
        # time (as a push's ends with the DONE).  The DONE goes out with
        # this flush; the linger is for answering a lost one.
        self.completed_at = self.clock.seconds()
        self.clock.callLater(LINGER, self._finish, exits.OK, "")

    def failed(self, text: str) -> None:
        """A line the endpoint logged: our own refusal or failure ends the fetch."""
        if text.startswith("refused push from "):
            self._finish(exits.REFUSED, f"cannot take the file here: {text.split(': ', 1)[1]}")
        elif " failed: " in text:
            self._finish(exits.REFUSED, text.split(" failed: ", 1)[1])
        elif " timed out " in text:
            self._finish(exits.UNREACHABLE, "the server stopped sending")

    def _check(self) -> None:
        self._watch = None
        if self.done.called:
            return
        if self.clock.seconds() - self._heard > self.timeout:
            self._finish(exits.UNREACHABLE, "the server did not answer"
                         if not self.offered else "the server stopped sending")
            return
        self._watch = self.clock.callLater(1.0, self._check)

    def cancel(self) -> None:
        """Ctrl-C: keep what arrived for the next run."""
        self._finish(exits.INTERRUPTED, "interrupted; run the same command again to continue "
                                        "where it stopped")

    def _finish(self, status: int, error: str) -> None:
        if self.done.called:
            return
        self.progress = self.bytes_received()   # before the endpoint lets the session go
        for call in (self._get_call, self._watch):
            if call is not None and call.active():
                call.cancel()
        self._get_call = self._watch = None
        self._flush()
        self.done.callback((status, error))

    def elapsed(self) -> float:
        """Seconds from the GET to the verified file (or to now, when it
        did not come): the linger for a lost DONE is not the transfer's."""
        return (self.completed_at or self.clock.seconds()) - self.started

    def bytes_received(self) -> tuple[int, int, int]:
        """(bytes in order, file size, bytes kept from before); once
        finished, as they were then."""
        if self.done.called:
            return self.progress
        for session in self.core.sessions.values():
            return min(session.cum * session.payload, session.size), session.size, session.have
        return 0, 0, 0


@defer.inlineCallbacks
def fetch(reactor, code: str, source: str, output: str, timeout: float = 10.0,
          progress_stream=None, stopping: defer.Deferred | None = None,
          watch=None, running: dict | None = None, follow: bool = True,
          reserve: int | None = 0, relay: bool = False):
    """Fetch the file kept under ``code`` at ``source`` (HOST[:PORT]) into
    ``output``; returns (Deferred) ``(status, error, record)``.  Ctrl-C or
    SIGTERM put the part file away first; ``stopping``, if given, fires once
    that is done (the reactor waits for it).  ``watch(protocol)``, if
    given, hears of progress; ``running["protocol"]`` is set to the
    :class:`FetchProtocol`, for a caller that may cancel it.  ``reserve``:
    the free space to leave on the disk (None: the server's default);
    ``relay``: a node of the hub fetches for its users (the keeping node
    does not count it as the recipient's fetch)."""
    try:
        family, ip, port = resolve_server(source)
    except OSError as e:
        return exits.UNREACHABLE, str(e), None
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        return exits.REFUSED, f"cannot create {output}: {e.strerror}", None
    worker = DiskWorker(threaded=True)
    # A checkpoint every 32 MiB: a killed `tekcos get` loses at most that much
    # (each costs an fsync; every 8 MiB was measurably slower through veth).
    downloads = Downloads(output, reserve=reserve, worker=worker, checkpoint_every=CHECKPOINT)
    protocol = None

    def log(text: str) -> None:
        protocol.failed(text)

    endpoint = Receiver(downloads, Limits(max_file_size=(1 << 63) - 1, max_sessions=1,
                                          max_pending=1, idle_timeout=timeout,
                                          handshake_timeout=timeout,
                                          resume_seconds=24 * 3600), log=log)
    bar = Progress(progress_stream, code[:12], 0) if progress_stream is not None else None

    def on_progress(fetching: FetchProtocol) -> None:
        if watch is not None:
            watch(fetching)
        if bar is None:
            return
        have, size, kept = fetching.bytes_received()
        if size:
            bar.total = size
            bar.offset = kept
            bar.update(have)

    protocol = FetchProtocol(endpoint, reactor, code, timeout,
                             on_progress=on_progress if bar or watch else None, relay=relay)
    if running is not None:
        running["protocol"] = protocol
    listening = listen_udp(reactor, 0, protocol, interface="::" if family == socket.AF_INET6
                           else "")
    size_socket_buffers(protocol.transport, 32 << 20)
    finished = stopping if stopping is not None else defer.Deferred()

    def interrupt():
        # Ctrl-C or SIGTERM: the part file is put away before the reactor stops.
        protocol.cancel()
        return finished

    trigger = reactor.addSystemEventTrigger("before", "shutdown", interrupt)
    try:
        protocol.transport.connect(ip, port)
        protocol.begin()
        status, error = yield protocol.done
        if bar:
            bar.finish()
        yield listening.stopListening()     # the endpoint keeps an unfinished part file
    finally:
        reactor.removeSystemEventTrigger(trigger)
    seconds = protocol.elapsed()
    if protocol.moved and follow:
        # Another node of the hub keeps it: once, from there.
        return (yield fetch(reactor, code, protocol.moved, output, timeout, progress_stream,
                            stopping, watch, running, follow=False, reserve=reserve))
    return status, error, _record(output, protocol, status, error, seconds)


@defer.inlineCallbacks
def run(reactor, args, out=None, err=None):
    """``tekcos get``: fetch ``args.code``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    stopping = defer.Deferred()
    try:
        status, error, record = yield fetch(
            reactor, args.code, args.source, args.output, args.timeout,
            err if err.isatty() and not args.quiet else None, stopping)
        if record is not None and args.json:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif status == exits.OK:
            out.write(describe(record) + "\n")
        else:
            err.write(f"tekcos get: {error}\n")
        out.flush()
    finally:
        stopping.callback(None)    # the record is written: the reactor may stop
    return status


def describe(record: dict) -> str:
    resumed = f", {record['resumed_bytes']} were here already" if record["resumed_bytes"] \
        else ""
    return (f"{record['file']}: received, {record['bytes']} bytes{resumed} in "
            f"{record['seconds']:.2f} s ({record['mb_per_s']:.1f} MB/s), SHA-256 verified")


def _record(output: str, protocol: FetchProtocol, status: int, error: str,
            seconds: float) -> dict:
    received = protocol.received
    have, size, kept = protocol.bytes_received()
    if received is not None:
        size = received.size
    delivered = status == exits.OK and received is not None
    moved = size - kept if delivered else have - kept
    return {
        "file": os.path.join(output, received.name) if delivered else None,
        "name": received.name if delivered else None,
        "bytes": size, "seconds": round(seconds, 6),
        "mb_per_s": round(moved / seconds / 1e6, 3) if delivered and seconds > 0 else 0.0,
        "resumed_bytes": kept,
        "sha256": received.sha256 if delivered else None,
        "status": {exits.OK: "delivered", exits.REFUSED: "refused",
                   exits.UNREACHABLE: "failed", exits.INTERRUPTED: "interrupted"}[status],
        "error": error or None,
    }


def check_args(args) -> None:
    if not args.code or len(args.code) > 64:
        raise UsageError("CODE: give the code from the line that said the file is ready")
    try:
        parse_address(args.source)
    except ValueError as e:
        raise UsageError(f"--from: {e}") from None
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    try:
        os.makedirs(args.output, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o: cannot create {args.output}: {e.strerror}") from None
    if not os.access(args.output, os.W_OK | os.X_OK):
        raise UsageError(f"-o: {args.output} is not writable")
