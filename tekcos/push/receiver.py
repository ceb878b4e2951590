"""Sans-IO receiving side: every push arriving at one UDP port.

:class:`Receiver` demultiplexes datagrams by token, refuses before any data
flows (size, disk space, name, session count), keeps out-of-order packets
inside the window, acknowledges selectively, verifies the SHA-256 and
publishes the file.  It never sends an address that has not echoed a token
more than three times the bytes received from it.  Drive it with
``receive_datagram(data, addr, now)``, ``datagrams_to_send(now)``,
``get_timer()`` and ``handle_timer(now)``.
"""
from __future__ import annotations

import hashlib
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from tekcos.hosts import host_key
from tekcos.push import wire
from tekcos.push.offers import (CHECK, RETRY, AbortHistory, Busy, OfferGate, Refusal,
                                offer_fields, owner_of)
from tekcos.push.policy import (DISK_BACKLOG, Checkpoint, DamagedPartial, Refused,
                                admissible_name, fits, key_for)
from tekcos.ratelimit import TokenBucket

AMPLIFICATION = 3
UNANSWERED_PER_ADDRESS = 4   # accepted offers whose token has not come back yet
MAX_REASON = 300             # a refusal reason sent back or logged, in characters
TAKEOVER_SILENCE = 1.0       # a transfer silent this long may be continued by a new run
RESUMING_PER_HOST = 2        # resumed files being reopened (re-hashed) at once per host
MAX_EXAMINING = 64           # offers whose disk look (free space, checkpoint) is under way
EXAMINING = b""              # in ``offers``: the answer to this one is being worked out


@dataclass
class Limits:
    max_file_size: int = 4 << 30
    max_message: int = 4096
    max_sessions: int = 32        # transfers under way (their sender echoed the token)
    max_per_address: int = 8      # of those, from one address
    max_pending: int = 256        # accepted offers waiting for their token to come back
    retry_after: float = 2.0      # what a busy answer suggests, in seconds
    max_buffered: int = 64 << 20  # out-of-order data held for all transfers, in bytes
    idle_timeout: float = 30.0
    handshake_timeout: float = 5.0   # an accepted offer whose token never comes back
    linger: float = 10.0          # how long a finished session answers duplicates
    window: int = 8192            # packets (about 11 MiB of buffer at most per push)
    payload: int = wire.DEFAULT_PAYLOAD
    resume_seconds: float = 24 * 3600   # how long an interrupted file is kept; 0: not at all


@dataclass
class Received:
    """What the endpoint reports when a push completes (for the chat)."""
    kind: str
    sender: str
    address: tuple
    name: str          # as stored (files) or "" (messages)
    size: int
    text: str = ""
    request: int = 0   # the offer number of a file addressed to someone (tekcos.delivery)
    seconds: float = 0.0   # from the offer to the verified file
    resumed: int = 0       # bytes kept from an earlier attempt


@dataclass(eq=False)
class Incoming:
    token: int
    addr: tuple
    offer_id: int
    host: str                     # what per-address caps count under (address.host_key)
    kind: str
    sender: str
    name: str
    size: int
    sha256: str
    payload: int
    total: int
    part: object = None
    message: bytearray = field(default_factory=bytearray)
    hasher: object = field(default_factory=hashlib.sha256)
    cum: int = 0                  # next packet expected in order
    bits: int = 0                 # bit j: packet cum + j is buffered
    buffer: dict = field(default_factory=dict)
    validated: bool = False
    ack_trigger: int = -1
    result: bytes | None = None   # DONE or FAIL, repeated on duplicates
    deadline: float = 0.0
    key: str = ""                 # names a resumable file's part (tekcos.push.resume)
    last_heard: float = 0.0
    have: int = 0                 # bytes an earlier attempt left, continued from
    limit: int = 0                # the window last advertised, in packets
    request: int = 0              # the accepted offer, for a file addressed to someone
    started: float = 0.0          # when the offer was taken

    @property
    def finished(self) -> bool:
        return self.result is not None


class Receiver:
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
        self.suspended: dict[str, int] = {}
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
    def _busy(self, offer_id: int, reason: str, wait: float | None = None,
              extra: dict | None = None) -> bytes:
        wait = wait or self.limits.retry_after
        return wire.encode_json(wire.REJECT, offer_id, {
            "error": f"busy: {reason}; retry in {wait:g} s", "retry_after": wait,
            **(extra or {})})

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

    def _retry_evicted(self, addr: tuple, token: int) -> None:
        offer_id = self.evicted.pop((addr, token), None)
        if offer_id is not None:
            self.outbox.append((self._busy(offer_id, "too many offers at once"), addr))

    def _count_in(self, addr: tuple, n: int) -> None:
        entry = self.budget.get(addr)
        if entry is None:
            if len(self.budget) >= 4096:   # forget the oldest address
                self.budget.pop(next(iter(self.budget)))
            entry = self.budget[addr] = [0, 0]
        entry[0] += n

    def _send_unvalidated(self, data: bytes, addr: tuple) -> bool:
        entry = self.budget.get(addr)
        if entry is None or entry[1] + len(data) > AMPLIFICATION * entry[0]:
            return False
        entry[1] += len(data)
        self.outbox.append((data, addr))
        return True

    def _hello(self, addr: tuple) -> None:
        self._send_unvalidated(wire.hello_reply(self.server_info), addr)

    def _offer(self, offer_id: int, payload: bytes, addr: tuple, now: float) -> None:
        known = self.offers.get((addr, offer_id))
        if known is EXAMINING or (addr, offer_id) in self.examining:
            return   # the disk is being looked at for it: the answer follows
        if known is not None:   # our answer was lost: repeat it
            if isinstance(known, Incoming):
                self._send_unvalidated(self._accept(known), addr)
            else:
                self._send_unvalidated(known, addr)
            return
        try:
            offer = wire.decode_json(payload)
        except wire.Malformed as e:
            offer = e
        if isinstance(offer, dict):
            if not self._admit_offer(offer_id, offer, addr, now):
                return
        elif not self.gate.malformed_allowed(now):
            return   # malformed, in a flood: not even a refusal
        try:
            if not isinstance(offer, dict):
                raise offer
            checked = self._check_offer(offer_id, offer, addr, now)
        except (wire.Malformed, Refusal) as e:
            self._refuse(offer_id, addr, e, now)
            return
        if isinstance(checked, Incoming):
            self._accepted(checked)
            return
        if len(self.examining) >= MAX_EXAMINING:
            self._refuse(offer_id, addr, Busy("busy checking other offers", 1.0), now)
            return
        # The rest needs the disk (free space, a kept checkpoint): on the
        # disk thread; :meth:`poll` finishes it.  Inline workers (tests, the
        # simulation) have the answer at once.
        look, finish = checked
        self.offers[(addr, offer_id)] = EXAMINING
        self.examining[(addr, offer_id)] = (self.downloads.worker.submit(look), finish, now)
        self._examined(now)

    def _examined(self, now: float) -> None:
        """Finish the offers whose disk look is done."""
        for (addr, offer_id), (future, finish, _) in list(self.examining.items()):
            if not future.done():
                continue
            del self.examining[(addr, offer_id)]
            self.offers.pop((addr, offer_id), None)
            try:
                session = finish(future.result())
            except (Refusal, OSError) as e:
                self._refuse(offer_id, addr, e if isinstance(e, Refusal) else
                             Refusal(f"cannot check the disk: {e.strerror or e}"), now)
                continue
            self._accepted(session)

    def _accepted(self, session: Incoming) -> None:
        self.sessions[session.token] = session
        self.offers[(session.addr, session.offer_id)] = session
        self._send_unvalidated(self._accept(session), session.addr)

    def _refuse(self, offer_id: int, addr: tuple, e: Exception, now: float) -> None:
        """Answer an offer that is refused (REJECT, remembered) or busy (not
        remembered: the same offer may find a slot later)."""
        reason = str(e)[:MAX_REASON]
        self.stats["rejected"] += 1
        self.log_refusal(f"refused push from {addr[0]}: {reason}", now)
        if isinstance(e, Busy):
            # Not remembered: the same offer may find a slot later.
            self._send_unvalidated(self._busy(offer_id, reason, e.retry_after, e.extra),
                                   addr)
            return
        reply = wire.encode_json(wire.REJECT, offer_id, {"error": reason})
        if len(self.offers) < 4096:
            self.offers[(addr, offer_id)] = reply
        self._send_unvalidated(reply, addr)


    # -- the offer prefilter ------------------------------------------------------------
    def _admit_offer(self, offer_id: int, offer: dict, addr: tuple, now: float) -> bool:
        """Whether a new offer gets a full check; the others are answered
        here (a RETRY with a cookie, or busy)."""
        verdict = self.gate.admit(offer, offer_id, addr, host_key(addr[0]), now)
        if verdict == CHECK:
            return True
        if verdict == RETRY:
            self.stats["retries"] += 1
            self._send_unvalidated(wire.encode_json(wire.RETRY, offer_id, {
                "cookie": self.gate.cookie(addr, offer_id, now)}), addr)
            return False
        self.stats["rejected"] += 1
        self._send_unvalidated(self._busy(offer_id, "too many offers from your address", 1.0),
                               addr)
        return False

    def log_refusal(self, text: str, now: float) -> None:
        if self._refusal_log.allow(now):
            if self._refusals_unlogged:
                text += f" ({self._refusals_unlogged} more refusals not logged)"
                self._refusals_unlogged = 0
            self.log(text)
        else:
            self._refusals_unlogged += 1

    def _accept(self, session: Incoming) -> bytes:
        body = {"token": session.token, "window": self.limits.window,
                "payload": session.payload}
        if session.have:
            body["have"] = session.have
        return wire.encode_json(wire.ACCEPT, session.offer_id, body)

    def _check_offer(self, offer_id: int, offer: dict, addr: tuple, now: float):
        """A new session for a valid offer that fits, or Refusal saying why.
        For a file, what needs the disk is not done here: the answer is a
        pair ``(look, finish)``, where ``look()`` (for the disk thread) reads
        the free space and any kept checkpoint, and ``finish(looked)`` (on
        ours) returns the session or raises Refusal."""
        fields = offer_fields(offer)
        self._make_room(addr, now)
        limits = self.limits
        payload = min(fields["want"], limits.payload)
        token = self.new_token()
        while token in self.sessions:
            token = self.new_token()
        size = fields["size"]
        common = dict(token=token, addr=addr, host=host_key(addr[0]), offer_id=offer_id,
                      kind=fields["kind"],
                      sender=fields["sender"], size=size, sha256=fields["sha"],
                      payload=payload, total=-(-size // payload),
                      deadline=now + min(limits.handshake_timeout, limits.idle_timeout),
                      last_heard=now, limit=limits.window, started=now)
        if fields["kind"] == "message":
            if offer.get("for") is not None:
                raise Refusal("only files can be sent to someone; say it in the chat (/msg)")
            if size > limits.max_message:
                raise Refusal(f"message larger than {limits.max_message} bytes")
            return Incoming(name="", **common)
        name = self._check_file(offer.get("name"), size)
        owner = owner_of(offer, addr)
        key = self._resume_key(fields, now, owner)
        kept = self.suspended.pop(key, None) if key else None
        downloads = self.downloads
        look_for = key if key and kept is None else ""

        def look():     # on the disk thread
            return (downloads.checkpoint(look_for) if look_for else None), downloads.space()

        def finish(looked) -> Incoming:
            checkpoint, room = looked
            have = self._resume_point(key, kept, checkpoint, fields, payload, addr,
                                      offer.get("resume") is not False, now)
            try:
                fits(room, size - have)
            except Refused as e:
                raise Refusal(str(e)) from None
            request = self._addressed(offer.get("for"), fields, name, addr, owner, now)
            # The .part file is created once the sender echoes the token: a
            # flood of offers leaves nothing on disk.
            return Incoming(name=name, key=key, have=have, cum=have // payload,
                            request=request, **common)
        return look, finish

    def _addressed(self, recipient, fields: dict, name: str, addr: tuple, owner: str,
                   now: float) -> int:
        """0 for a file for the server; for one addressed to someone, the
        number of the offer its recipient accepted, or Busy (still asking)
        or Refusal (declined, unknown, over quota)."""
        if recipient is None:
            return 0
        if not isinstance(recipient, str) or not 1 <= len(recipient) <= 64:
            raise Refusal("bad recipient")
        if self.addressing is None:
            raise Refusal("this server does not keep files for people")
        verdict, detail = self.addressing.decide(
            {"for": recipient, "name": name, "size": fields["size"], "sha256": fields["sha"],
             "from": fields["sender"]}, addr[0], owner, now)
        if verdict == "wait":
            raise Busy(detail, retry_after=1.0, extra={"waiting": recipient})
        if verdict == "refused":
            raise Refusal(detail)
        return detail

    def _resume_key(self, fields: dict, now: float, owner: str) -> str:
        """The key naming a file offer's part file when the file is kept
        across interruptions ("" when it is not, or when a transfer of the
        same file runs and this one starts afresh); an unfinished transfer
        of the same file from the same sender that has gone silent (the
        sender killed and run again) is put away first.  The sender is its
        client id where the offer has one (a secret only its user's
        ``tekcos push`` knows, so it survives an address change and nobody
        else at the address can touch the file), else its IP address."""
        if not self.limits.resume_seconds:
            return ""
        key = key_for(fields["sha"], fields["size"], owner)
        live = next((s for s in self.sessions.values() if s.key == key), None)
        if live is not None:
            if live.finished or live.token in self.publishing or not live.cum:
                # All of it is there already, or nothing yet: this one starts afresh.
                return ""
            if now - live.last_heard < TAKEOVER_SILENCE:
                asked = self.takeover_asked.get(key)
                if asked is not None and now - asked < 4 * TAKEOVER_SILENCE:
                    # Heard from since we asked this one to wait: it is alive
                    # (the same file pushed twice at once).  Both go on.
                    del self.takeover_asked[key]
                    return ""
                # Perhaps its sender was just killed: wait and see.
                if len(self.takeover_asked) >= 4096:
                    self.takeover_asked.pop(next(iter(self.takeover_asked)))
                self.takeover_asked[key] = now
                raise Busy("a push of the same file from your host is still running",
                           retry_after=TAKEOVER_SILENCE)
            self.takeover_asked.pop(key, None)
            if live.validated:
                self.outbox.append((wire.encode_json(wire.FAIL, live.token, {
                    "error": "superseded by a newer push of the same file"}), live.addr))
            self._drop(live)
        return key

    def _resume_point(self, key: str, kept: int | None, checkpoint, fields: dict,
                      payload: int, addr: tuple, wanted: bool, now: float) -> int:
        """The bytes a file offer continues from: what this process put away
        (``kept``) or what the part file's ``checkpoint`` says, when the
        sender wants it and its host may reopen one now (else Busy)."""
        if not key:
            return 0
        have = kept
        if have is None and checkpoint is not None and (checkpoint.sha256, checkpoint.size) == \
                (fields["sha"], fields["size"]):
            have = checkpoint.have if checkpoint.payload == payload else 0
        if not wanted or not have or have % payload or have >= fields["size"]:
            return 0
        host = host_key(addr[0])
        wait = self.aborts.backoff(host, now)
        if wait:
            self._remember_suspended(key, have)
            raise Busy("your resumed pushes keep being cut off", retry_after=max(1.0, wait))
        reopening = sum(1 for s in self.sessions.values()
                        if s.have and s.host == host and not s.finished
                        and (s.part is None or not s.part.opened))
        if reopening >= RESUMING_PER_HOST:
            # Reopening one re-reads what it kept on the disk thread.
            self._remember_suspended(key, have)
            raise Busy("other resumed pushes from your address are starting", retry_after=1.0)
        return have

    def _make_room(self, addr: tuple, now: float) -> None:
        """Refuse (busy) when the transfers are at their caps; otherwise make
        room among the accepted offers still waiting for their token.

        Transfers that are under way are never evicted.  Waiting offers
        compete only with each other: a flood of offers from many addresses
        pushes out the oldest waiting offer of the address holding the most,
        and a real sender echoes its token long before its turn comes."""
        limits = self.limits
        active = [s for s in self.sessions.values() if not s.finished]
        waiting = [s for s in active if not s.validated]
        host = host_key(addr[0])
        if sum(1 for s in waiting if s.host == host) >= UNANSWERED_PER_ADDRESS:
            # Busy, not refused: a script that starts many pushes at once
            # is told to offer again once its first ones are under way.
            raise Busy("too many unanswered offers from your address", 1.0)
        running = len(active) - len(waiting)
        if running >= limits.max_sessions:
            raise Busy(f"{limits.max_sessions} transfers in progress")
        if sum(1 for s in active if s.validated and s.host == host) >= limits.max_per_address:
            raise Busy(f"{limits.max_per_address} transfers from your address in progress")
        if len(waiting) < limits.max_pending:
            return
        per_host: dict[str, int] = {}
        for w in waiting:
            per_host[w.host] = per_host.get(w.host, 0) + 1
        victim = min(waiting, key=lambda w: (-per_host[w.host], w.deadline))
        self.log_refusal(f"dropped an unanswered offer from {victim.addr[0]} to make room", now)
        if len(self.evicted) >= 4096:
            self.evicted.pop(next(iter(self.evicted)))
        self.evicted[(victim.addr, victim.token)] = victim.offer_id
        self._drop(victim)

    def _check_file(self, offered_name, size: int) -> str:
        """The name to store a file under, once name and size allow it."""
        try:
            return admissible_name(offered_name, size, self.limits.max_file_size)
        except Refused as e:
            raise Refusal(str(e)) from None

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
                                    now - session.started, session.have))
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
                self._remember_suspended(session.key, session.cum * session.payload)
            else:
                session.part.discard()
        self.sessions.pop(session.token, None)
        self.acks.pop(session.token, None)
        self.offers.pop((session.addr, session.offer_id), None)

    # -- output and time --------------------------------------------------------------
    def window(self, session: Incoming) -> int:
        """Packets the sender may have in flight: the configured window,
        shrunk while the disk lags behind (back-pressure instead of memory)."""
        window = self.limits.window
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

    def _remember_suspended(self, key: str, have: int) -> None:
        if len(self.suspended) >= 4096:
            self.suspended.pop(next(iter(self.suspended)))
        self.suspended[key] = have

    def keys_in_use(self) -> frozenset:
        """Part files that belong to live transfers (for the sweep)."""
        return frozenset(s.key for s in self.sessions.values() if s.key)

    def close(self) -> None:
        """Stop every unfinished transfer (server shutdown); files are kept
        for resumption where that is on."""
        for session in list(self.sessions.values()):
            self._drop(session)
