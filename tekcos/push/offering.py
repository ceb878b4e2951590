"""The sender's control plane: the offer, its answers, and starting again.

Mixed into :class:`tekcos.push.sender.Sender`, whose per-packet data path
it leaves alone.  This side runs a few times per transfer: the OFFER and
its repeats (``HANDSHAKE_RTO`` doubling until a round trip is known), the
receiver's ACCEPT, REJECT or RETRY (read by :mod:`tekcos.push.handshake`),
waiting for a busy receiver or for the person asked, the PROBE of an empty
file, and the fall back to ``DEFAULT_PAYLOAD`` when the path drops larger
packets.  Sans-IO like the sender: ``now`` is passed in, datagrams go to
``self.control``.
"""
from __future__ import annotations

from tekcos.push import handshake, wire

OFFERING, SENDING, CONFIRMING, FINISHED = "offering", "sending", "confirming", "finished"
WAITING = "waiting"          # the receiver is busy: offer again at retry_at
DELIVERED, REJECTED, FAILED = "delivered", "rejected", "failed"
# The OFFER alone is repeated sooner, and doubles from there (50, 100, 200 ms
# ...).  A path slower than that gets one or two spare OFFERs, which the
# receiver answers from memory; no round trip is sampled from a repeated
# OFFER (Karn), so the data starts from INITIAL_RTO.  (Measurements:
# docs/performance.md.)
HANDSHAKE_RTO = 0.05
# DATA packets larger than the usual with no ACK for this long: the path
# does not carry them (see Offering._shrink_payload).
JUMBO_PATIENCE = 1.0


class Offering:
    """The offer's side of a :class:`~tekcos.push.sender.Sender` (which
    holds the state it reads and writes)."""

    def start(self, now: float) -> None:
        self.last_progress = now
        self._send_control(now)

    def _answer(self, kind: int, session: int, payload: bytes, now: float) -> None:
        """ACCEPT, REJECT or RETRY for our offer."""
        if session != self.offer_id or self.state == WAITING:
            return
        # A busy answer may also come after ACCEPT, when the receiver had
        # no slot left once our token came back.
        if self.state != OFFERING and (kind != wire.REJECT or self.base):
            return
        answer = handshake.read_answer(kind, payload, offered_payload=self.payload_size,
                                       window=self.window, size=self.size,
                                       resume=self.offer["resume"])
        if answer is None:
            return
        if isinstance(answer, handshake.Retry):
            self._retry(answer.cookie, now)
            return
        if self.state == OFFERING and self.control_tries == 1:
            sample = now - self.control_sent          # Karn: an OFFER sent once
            self.rtt.sample(sample)
            self.cc.on_rtt(sample)
        if isinstance(answer, handshake.Accepted):
            self._accepted(answer, now)
        elif isinstance(answer, handshake.Busy):
            self._busy(answer, now)
        else:
            self._finish(REJECTED, answer.error)

    def _offer_datagram(self) -> bytes:
        # Padded so that the receiver's answer fits its 3x anti-amplification budget.
        return wire.encode_json(wire.OFFER, self.offer_id, self.offer, pad_to=200)

    def _send_control(self, now: float) -> None:
        if self.state == OFFERING:
            self.control.append(self._offer_datagram())
        elif self.state == CONFIRMING:
            self.control.append(wire.encode(wire.PROBE, self.token, self.total))
        self.control_sent = now
        self.control_tries += 1

    def _retry(self, cookie: str, now: float) -> None:
        """The receiver is checking few offers (a flood): it sent a cookie
        to prove that we receive at this address.  The offer goes again at
        once with it; a few times at most, then only on the usual timer."""
        if self.retries_answered >= 4:
            return
        self.retries_answered += 1
        self.offer["cookie"] = cookie
        if self.control_tries == 1:   # the round trip is measured as for an ACCEPT
            sample = now - self.control_sent
            self.rtt.sample(sample)
            self.cc.on_rtt(sample)
        self.control_tries = 0
        self._send_control(now)

    def _busy(self, answer: handshake.Busy, now: float) -> None:
        error, retry = answer.error, answer.retry_after
        if answer.waiting is not None:
            # Not a slot: a person, who may take minutes to answer.
            if self.waiting_for is None:
                self.wait_deadline = now + self.wait_accept
            self.waiting_for = answer.waiting
        elif self.wait_deadline is None:
            self.wait_deadline = now + self.timeout
        if now + retry > self.wait_deadline:
            what = f"for {self.waiting_for} to accept" if self.waiting_for else "for a slot"
            limit = self.wait_accept if self.waiting_for else self.timeout
            self._finish(REJECTED, f"{error} (gave up after waiting {limit:g} s {what})")
            return
        self._offer_again(now, now + retry)

    def _offer_again(self, now: float, when: float) -> None:
        """Start again from the offer at ``when``, under a new id (the
        receiver remembers its answer to the old one)."""
        self.state = WAITING
        self.retry_at = when
        self.last_progress = now
        self.resumed_bytes = 0
        self.offer.pop("cookie", None)   # made for the old offer id
        self.offer_id = self.offer_id % ((1 << 64) - 1) + 1
        self.token = self.total = self.base = self.sacked = self.next_seq = 0
        self.fast_mark = 0
        self.sent_at.clear()
        self.retries.clear()
        self.resent.clear()
        self.resent_at.clear()
        self.probe_new = False
        self.timers.clear()
        self.resend.clear()
        self.control.clear()
        self.control_tries = 0
        self.tail_probe_at = None
        self.acks_heard = 0

    def _shrink_payload(self, now: float) -> None:
        """Packets larger than the usual 1400 bytes, and not one of them
        acknowledged since the ACCEPT: the path drops them (a jumbo MTU
        here, a switch without jumbo frames on the way).  Tell the receiver
        and offer again with ``DEFAULT_PAYLOAD``."""
        token, size = self.token, self.payload_size
        self._offer_again(now, now)
        self.control.append(wire.encode_json(wire.ABORT, token, {
            "error": f"no packet of {size} bytes got through; offering smaller ones"}))
        self.shrunk_from = size
        self.use_payload(wire.DEFAULT_PAYLOAD)

    def _shrink_at(self) -> float | None:
        """When to give up on packets larger than the usual (None: they
        got through, or they are the usual size)."""
        if self.acks_heard or self.payload_size <= wire.DEFAULT_PAYLOAD:
            return None
        return self.accepted_at + max(JUMBO_PATIENCE, 4 * self.rtt.rto)

    def _accepted(self, answer: handshake.Accepted, now: float) -> None:
        self.token = answer.token
        self.peer_window = answer.window
        self.payload_size = payload = answer.payload
        self.waiting_for = None
        self.total = -(-self.size // payload)
        if answer.have:
            # The receiver checked what it kept of an earlier attempt.
            self.resumed_bytes = answer.have
            self.base = self.next_seq = self.fast_mark = answer.have // payload
        self.accepted_base = self.base
        self.last_progress = self.accepted_at = now
        self.control_tries = 0
        self.state = SENDING if self.total else CONFIRMING
        if self.state == CONFIRMING:
            self._send_control(now)

    def _control_timeout(self) -> float:
        """How long the last OFFER or PROBE waits for its answer."""
        if self.state == OFFERING and self.rtt.srtt is None:
            return min(self.rtt.max_rto, HANDSHAKE_RTO * 2 ** (self.control_tries - 1))
        return self.rtt.backoff(self.control_tries - 1)

    def _control_timer(self, now: float) -> bool:
        """The timer's work outside the data: an offer to repeat or make
        again, the transfer's silence timeout, packets the path does not
        carry.  True when that was all there was to do."""
        if self.state == WAITING:
            if now >= self.retry_at:
                self.state = OFFERING
                self.last_progress = now
                self._send_control(now)
            return True
        if now >= self.last_progress + self.timeout:
            what = "the receiver stopped answering" if self.state != OFFERING \
                else "no answer from the receiver"
            self._finish(FAILED, f"{what} (timeout {self.timeout:g} s)")
            return True
        if self.state in (OFFERING, CONFIRMING):
            if now >= self.control_sent + self._control_timeout():
                self._send_control(now)
            return True
        shrink_at = self._shrink_at()
        if shrink_at is not None and now >= shrink_at:
            self._shrink_payload(now)
            return True
        return False
