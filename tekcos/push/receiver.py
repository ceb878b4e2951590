"""Sans-IO receiving side: every push arriving at one UDP port.

:class:`Receiver` demultiplexes datagrams by token, refuses before any data
flows (size, disk space, name, session count), keeps out-of-order packets
inside the window, acknowledges selectively, verifies the SHA-256 and
publishes the file (the offers themselves: :mod:`tekcos.push.offer_desk`).
It never sends an address that has not echoed a token
more than three times the bytes received from it.  Drive it with
``receive_datagram(data, addr, now)``, ``datagrams_to_send(now)``,
``get_timer()`` and ``handle_timer(now)``.
"""
from __future__ import annotations

import secrets
from collections import deque
from typing import Callable

from tekcos.push import wire
from tekcos.push.offer_desk import OfferDesk
from tekcos.push.incoming import Incoming, Limits, Received
from tekcos.push.offers import AbortHistory, OfferGate
from tekcos.push.policy import DISK_BACKLOG, Checkpoint, DamagedPartial
from tekcos.ratelimit import TokenBucket

__all__ = ["Incoming", "Limits", "Received", "Receiver"]


class Receiver(OfferDesk):
    """``downloads`` is the storage (tekcos.push.storage.Downloads, or a
    fake): ``worker.submit(job)`` (a Future), ``checkpoint(key)`` and
    ``space()`` (run as disk jobs), ``open_part(...)`` (a part file that
    appends, publishes and is put away on the disk thread).  ``addressing``
    (tekcos.delivery.Deliveries) decides files sent to people and names
    their ``subdir``."""

    def __init__(self, downloads, limits: Limits | None = None,
                 on_complete: Callable[[Received], None] | None = None,
                 server_info: dict | None = None, token: Callable[[], int] | None = None,
                 log: Callable[[str], None] | None = None, addressing=None):
        self.downloads = downloads
        self.limits = limits or Limits()
        # Completed pushes are events (aioquic's next_event()): the adapter
        # takes them after it has sent what datagrams_to_send() returned,
        # so the chat's fan-out never runs inside the UDP flush.  With
        # ``on_complete`` (tests, the simulation) they are handed to it at
        # the end of each datagrams_to_send().
        self.on_complete = on_complete
        self.events: deque[Received] = deque()
        self.server_info = server_info or {}
        self.new_token = token or (lambda: secrets.randbits(64) or 1)
        self.log = log or (lambda text: None)
        # Decides offers addressed to people (tekcos.delivery.Deliveries):
        # decide(offer, host, owner, now) -> ("wait"|"refused"|"accepted", detail).
        self.addressing = addressing
        self.sessions: dict[int, Incoming] = {}
        self.offers: dict[tuple, Incoming | bytes] = {}   # (addr, offer id) -> session or REJECT
        # Offers whose disk look runs on the disk thread: (addr, offer id) ->
        # (Future, finish, when asked).
        self.examining: dict[tuple, tuple] = {}
        self.budget: dict[tuple, list[int]] = {}          # addr -> [bytes in, bytes out]
        self.outbox: list[tuple[bytes, tuple]] = []
        self.acks: dict[int, Incoming] = {}
        # Accepted offers pushed out of the pending table: if their token
        # comes back after all, the sender is told to retry, not left to time out.
        self.evicted: dict[tuple, int] = {}    # (addr, token) -> offer id
        self.buffered = 0                        # out-of-order bytes held, all sessions
        self.publishing: dict[int, Incoming] = {}   # files the disk worker is finishing
        # Interrupted files put away since start-up: key -> bytes kept.  Read
        # before the disk, whose checkpoint the worker may still be writing.
        self.suspended: dict[str, tuple[int, int]] = {}   # key -> (have, payload)
        self.takeover_asked: dict[str, float] = {}   # key -> when a new run was told to wait
        # For the operators' metrics: pushes by outcome, bytes consumed in
        # order, DATA that arrived again (a retransmission we did not need).
        self.stats = {"delivered": 0, "failed": 0, "rejected": 0, "bytes": 0, "duplicates": 0}
        # Refusals are logged at most about once a second (after a burst of
        # 20): a flood of bad offers must not become a flood of log lines.
        self._refusal_log = TokenBucket(rate=1.0, burst=20, now=0.0)
        self._refusals_unlogged = 0
        self.gate = OfferGate(0.0)       # which offers get a full check (push/offers.py)
        self.aborts = AbortHistory()     # resumed pushes cut off, per host
        self.stats["retries"] = 0

    # -- input ------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: tuple, now: float) -> None:
        try:
            kind, token, seq, payload = wire.decode(data)
        except wire.Malformed:
            self._count_in(addr, len(data))
            return
        if kind == wire.DATA:
            session = self.sessions.get(token)
            if session is None or session.addr != addr:
                self._count_in(addr, len(data))
                self._retry_evicted(addr, token)
                return
            if not session.validated and not self._validate(session):
                return
            self._data(session, seq, payload, now)
            return
        session = self.sessions.get(token) if token else None
        if session is not None and session.addr == addr:
            if kind == wire.ACK:  # never sent to us; ignore
                return
            if not session.validated and not self._validate(session):
                return
            if not session.finished:
                session.deadline = now + self.limits.idle_timeout
                session.last_heard = now
            if kind == wire.PROBE:
                if session.total == 0 and not session.finished and \
                        token not in self.publishing and self._open_part(session):
                    self._complete(session, now)
                    return
                if session.finished:
                    self.outbox.append((session.result, addr))
                else:
                    self.acks[token] = session
            elif kind == wire.ABORT:
                self.log(f"push of {session.name!r} from {addr[0]} aborted by the sender")
                if session.have and not session.finished:
                    self.aborts.count(session.host, now)
                self._drop(session)
            return
        self._count_in(addr, len(data))
        if kind == wire.OFFER:
            self._offer(token, payload, addr, now)
        elif kind == wire.HELLO:
            self._hello(addr)
        elif token:
            self._retry_evicted(addr, token)

    # -- slots ------------------------------------------------------------------
    def _validate(self, session: Incoming) -> bool:
        """The sender echoed its token: the offer becomes a transfer if a slot
        is free; otherwise it is told to retry, and forgotten."""
        limits = self.limits
        running = [s for s in self.sessions.values() if s.validated and not s.finished]
        reason = None
        if len(running) >= limits.max_sessions:
            reason = f"{limits.max_sessions} transfers in progress"
        elif sum(1 for s in running if s.host == session.host) >= limits.max_per_address:
            reason = f"{limits.max_per_address} transfers from your address in progress"
        if reason is None:
            session.validated = True
            return True
        # The sender proved its address by echoing the token: answer in full.
        self.outbox.append((self._busy(session.offer_id, reason), session.addr))
        self._drop(session)
        return False

    # -- data ---------------------------------------------------------------------------
    def _open_part(self, session: Incoming) -> bool:
        if session.part is not None or session.kind != "file":
            return True
        template = None
        if session.key:
            template = Checkpoint(session.sha256, session.size, session.name,
                                         session.payload, 0, "")
        try:
            session.part = self.downloads.open_part(
                session.name, session.key or f"{session.token:016x}", template, session.have,
                self.addressing.subdir if session.request else "")
            return True
        except OSError as e:
            session.result = wire.encode_json(wire.FAIL, session.token, {
                "error": f"cannot store the file: {e.strerror}"})
            self.outbox.append((session.result, session.addr))
            return False

    def _data(self, session: Incoming, seq: int, payload: bytes, now: float) -> None:
        session.validated = True
        if session.finished:
            self.outbox.append((session.result, session.addr))
            return
        session.deadline = now + self.limits.idle_timeout
        session.last_heard = now
        self.acks[session.token] = session
        session.ack_trigger = seq
        cum = session.cum
        if seq < cum or seq >= session.total or seq >= cum + session.limit:
            if seq < cum:
                self.stats["duplicates"] += 1
            return   # duplicate or outside the window: the ACK resynchronises
        expected = session.payload if seq < session.total - 1 \
            else session.size - seq * session.payload
        if len(payload) != expected:
            return
        if session.part is None and not self._open_part(session):
            return
        if seq > cum:
            if seq not in session.buffer:
                if self.buffered + len(payload) > self.limits.max_buffered:
                    return   # memory for reordering is used up: it will be resent
                session.buffer[seq] = payload
                session.bits |= 1 << (seq - cum)
                self.buffered += len(payload)
            return
        # In order: consume it and everything buffered right after it.
        bits = session.bits | 1
        run = (~bits & (bits + 1)).bit_length() - 1   # trailing ones
        try:
            part = session.part
            if run == 1 and part is not None:
                # The common case, inlined: one packet, straight to the file.
                self.stats["bytes"] += len(payload)
                part.append(payload)
            elif part is not None:
                # A hole just filled (after a loss, the usual case): the run
                # behind it goes to the file in one step.
                buffer = session.buffer
                held = [payload]
                held += [buffer.pop(s) for s in range(cum + 1, cum + run)]
                size = sum(map(len, held))
                self.buffered -= size - len(payload)
                self.stats["bytes"] += size
                part.extend(held, size)
            else:
                buffer = session.buffer
                self._consume(session, payload)
                for s in range(cum + 1, cum + run):
                    held = buffer.pop(s)
                    self.buffered -= len(held)
                    self._consume(session, held)
        except OSError as e:   # the disk filled up (ENOSPC), or went away
            self._fail_storing(session, now, e)
            return
        session.cum = cum + run
        session.bits = bits >> run
        if session.cum == session.total:
            self._complete(session, now)

    def _consume(self, session: Incoming, payload: bytes) -> None:
        self.stats["bytes"] += len(payload)
        if session.part is not None:
            session.part.append(payload)    # hashed and written by the disk worker
        else:
            session.hasher.update(payload)
            session.message += payload

    def _complete(self, session: Incoming, now: float) -> None:
        """Every packet arrived.  A message is checked at once; a file once
        the disk worker has written, hashed, fsynced and linked it
        (:meth:`poll`, which runs whenever the worker wakes the adapter).
        Meanwhile the sender gets its last ACK (it has nothing left to
        resend: without it, it would take the wait for a lost ACK)."""
        if session.part is None:
            if session.hasher.hexdigest() != session.sha256:
                self._mismatch(session, now)
            else:
                self._delivered(session, now, "", session.message.decode("utf-8", "replace"))
            return
        try:
            session.part.start_publish(session.sha256)
        except OSError as e:
            self._fail_storing(session, now, e)
            return
        self.publishing[session.token] = session
        self.poll(now)

    def poll(self, now: float) -> None:
        """Finish the offers whose disk look, and the files whose
        publication, the disk worker has done."""
        if self.examining:
            self._examined(now)
        for token, session in list(self.publishing.items()):
            try:
                stored = session.part.publish_result()
            except OSError as e:
                del self.publishing[token]
                self._fail_storing(session, now, e)
                continue
            if stored is None:
                continue
            del self.publishing[token]
            if stored is False:
                self._mismatch(session, now)
            else:
                self._delivered(session, now, stored, "")

    def _mismatch(self, session: Incoming, now: float) -> None:
        if session.have:   # the bytes kept from before were wrong: send it all again
            self._fail(session, now, "SHA-256 mismatch after resuming: the partial file "
                                     "was removed", restart=True)
            return
        self._fail(session, now, "SHA-256 mismatch: the data arrived but does not match "
                                 "the offer")

    def _fail_storing(self, session: Incoming, now: float, error: OSError) -> None:
        if isinstance(error, DamagedPartial):
            self._fail(session, now, f"cannot resume: {error.strerror}", restart=True)
        else:
            self._fail(session, now, f"cannot store the file: {error.strerror or error}")

    def _delivered(self, session: Incoming, now: float, stored: str, text: str) -> None:
        self.stats["delivered"] += 1
        session.deadline = now + self.limits.linger
        session.result = wire.encode_json(wire.DONE, session.token, {
            "name": stored, "sha256": session.sha256})
        self.events.append(Received(session.kind, session.sender, session.addr, stored,
                                    session.size, text, session.request,
                                    now - session.started, session.have,
                                    session.sha256 if session.kind == "file" else ""))
        self._release_buffer(session)
        if session.validated:
            self.outbox.append((session.result, session.addr))

    def _fail(self, session: Incoming, now: float, reason: str, restart: bool = False) -> None:
        """Give up on a transfer at once: the sender is told why (FAIL, and
        again on every duplicate until the session lingers out) and the
        partial file goes.  ``restart``: what was kept from an earlier
        attempt was unusable; offering again sends the whole file."""
        self.stats["failed"] += 1
        if session.part is not None:
            session.part.discard()
        self._release_buffer(session)
        body = {"error": reason}
        if restart:
            body["restart"] = True
        session.result = wire.encode_json(wire.FAIL, session.token, body)
        session.deadline = now + self.limits.linger
        self.acks.pop(session.token, None)
        self.publishing.pop(session.token, None)
        if session.validated:
            self.outbox.append((session.result, session.addr))
        self.log(f"push of {session.name!r} from {session.addr[0]} failed: {reason}")

    def _release_buffer(self, session: Incoming) -> None:
        if session.buffer:
            self.buffered -= sum(len(held) for held in session.buffer.values())
            session.buffer.clear()

    def _drop(self, session: Incoming) -> None:
        self._release_buffer(session)
        self.publishing.pop(session.token, None)
        if session.part is not None and not session.finished:
            if session.key:   # kept for a later run of the same push
                session.part.suspend()
                self._remember_suspended(session.key, session.cum * session.payload,
                                         session.payload)
            else:
                session.part.discard()
        self.sessions.pop(session.token, None)
        self.acks.pop(session.token, None)
        self.offers.pop((session.addr, session.offer_id), None)

    # -- output and time --------------------------------------------------------------
    def window(self, session: Incoming) -> int:
        """Packets the sender may have in flight: the configured window,
        shrunk while the disk lags behind (back-pressure instead of memory)."""
        window = self.limits.window_for(session.payload)
        part = session.part
        if part is not None:
            backlog = part.backlog
            if backlog:
                window = min(window, max(1, (DISK_BACKLOG - backlog) // session.payload))
        return window

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        if self.publishing or self.examining:
            self.poll(now)
        out = self.outbox
        self.outbox = []
        if self.acks:
            for session in self.acks.values():
                if not session.finished:
                    # Worked out once per batch of datagrams, not per packet.
                    session.limit = limit = self.window(session)
                    out.append((wire.encode_ack(session.token, session.cum, limit,
                                                max(0, session.ack_trigger),
                                                session.bits >> 1), session.addr))
            self.acks = {}
        if self.on_complete is not None:
            while self.events:
                self.on_complete(self.events.popleft())
        return out

    def next_event(self) -> Received | None:
        """The next completed push (a file verified and stored, or a
        message), or None."""
        return self.events.popleft() if self.events else None

    def get_timer(self) -> float | None:
        if not self.sessions:
            return None
        return min(s.deadline for s in self.sessions.values())

    def handle_timer(self, now: float) -> None:
        if self.publishing or self.examining:
            self.poll(now)
        for session in list(self.sessions.values()):
            if session.deadline <= now:
                if not session.finished:
                    self.log(f"push of {session.name or 'a message'!r} from {session.addr[0]} "
                             f"timed out after {session.cum} of {session.total} packets")
                    if session.have and session.validated:
                        self.aborts.count(session.host, now)
                self._drop(session)
        if not self.sessions:
            self.offers.clear()

    def keys_in_use(self) -> frozenset:
        """Part files that belong to live transfers (for the sweep)."""
        return frozenset(s.key for s in self.sessions.values() if s.key)

    def close(self) -> None:
        """Stop every unfinished transfer (server shutdown); files are kept
        for resumption where that is on."""
        for session in list(self.sessions.values()):
            self._drop(session)
