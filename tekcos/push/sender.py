"""Sans-IO Selective Repeat sender: one file or message to one receiver.

Drive it like aioquic's connection::

    sender.start(now)
    for datagram in sender.datagrams_to_send(now): send it
    sender.receive_datagram(data, now)      # every datagram from the receiver
    deadline = sender.get_timer()           # call handle_timer(now) then
    sender.handle_timer(now)

What is in flight, and how losses are found and timed, is the
:class:`tekcos.push.flight.Flight`'s; the sender runs the handshake, the
confirmation and the states, and decides what leaves when: never a packet
at or beyond ``cumulative ack + the receiver's advertised window``, nor more
in flight than the congestion window, nor faster than pacing allows.
"""
from __future__ import annotations

from typing import Callable

from tekcos.push import wire
from tekcos.push.congestion import BackgroundController, Controller
from tekcos.push.flight import Flight
from tekcos.push.rtt import RttEstimator

OFFERING, SENDING, CONFIRMING, FINISHED = "offering", "sending", "confirming", "finished"
WAITING = "waiting"          # the receiver is busy: offer again at retry_at
MAX_RETRY_AFTER = 60.0
DELIVERED, REJECTED, FAILED = "delivered", "rejected", "failed"
# Until a round trip is measured.  An answer on a LAN takes milliseconds; at
# 0.5 s a lost OFFER or ACCEPT (5% each way on a lossy link) cost half a
# second, a second loss a second more, on pushes that take under one.
INITIAL_RTO = 0.2


class Sender:
    def __init__(self, *, offer_id: int, name: str, size: int, sha256: str, kind: str,
                 read: Callable[[int, int], bytes], sender_name: str = "",
                 payload_size: int = wire.DEFAULT_PAYLOAD, window: int = 1024,
                 timeout: float = 10.0, rtt: RttEstimator | None = None, burst: int = 64,
                 resume: bool = True, background: bool = False):
        self.offer_id = offer_id
        # "resume": the receiver may continue from what an earlier,
        # interrupted push of the same file left there.
        self.offer = {"name": name, "size": size, "sha256": sha256, "kind": kind,
                      "from": sender_name, "payload": payload_size, "window": window,
                      "resume": resume}
        self.size = size
        self.read = read
        self.payload_size = payload_size
        self.window = window
        # New packets per datagrams_to_send() call: between bursts the adapter
        # reads ACKs, so losses are repaired while the window is still open
        # instead of after a whole window has been written out.
        self.burst = burst
        self.timeout = timeout
        self.rtt = rtt or RttEstimator(initial_rto=INITIAL_RTO)
        # --background: yield to other traffic (LEDBAT) instead of sharing.
        self.cc = (BackgroundController if background else Controller)(maximum=window)
        self.state = OFFERING
        self.status: str | None = None
        self.error: str | None = None
        self.failed_by_peer = False   # the receiver sent FAIL (vs. silence or local abort)
        self.stored_name: str | None = None
        self.token = 0
        self.total = 0
        self.peer_window = window
        self.flight = Flight(self.rtt, self.cc)
        self.retransmits = 0
        self.retransmitted_bytes = 0
        self.sent_bytes = 0           # DATA payload sent, retransmissions included
        self.resumed_bytes = 0        # what the receiver already had
        self.control: list[bytes] = []
        self.control_sent = 0.0
        self.control_tries = 0
        self.last_progress = 0.0
        self.retry_at = 0.0
        self.wait_deadline: float | None = None   # set by the first busy answer
        self.pace_at: float | None = None         # when pacing lets the next packet go

    # -- progress for the UI ------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    @property
    def bytes_acked(self) -> int:
        return min(self.size, self.flight.base * self.payload_size) if self.total else 0

    @property
    def probes(self) -> int:
        return self.flight.probes

    def _room(self) -> int:
        """The packet after the last the receiver's window allows now."""
        return min(self.total, self.flight.base + min(self.window, self.peer_window))

    # -- driving ------------------------------------------------------------------
    def start(self, now: float) -> None:
        self.last_progress = now
        self._send_control(now)

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

    def abort(self, reason: str) -> None:
        if self.state in (SENDING, CONFIRMING):
            self.control.append(wire.encode_json(wire.ABORT, self.token, {"error": reason}))
        self._finish(FAILED, reason)

    def _finish(self, status: str, error: str | None = None) -> None:
        self.state = FINISHED
        self.status = status
        self.error = error
        self.flight.reset(self.total, self.flight.base)

    def receive_datagram(self, data: bytes, now: float) -> None:
        try:
            kind, session, seq, payload = wire.decode(data)
        except wire.Malformed:
            return
        if self.state == FINISHED:
            return
        if kind in (wire.ACCEPT, wire.REJECT):
            if session != self.offer_id or self.state == WAITING:
                return
            # A busy answer may also come after ACCEPT, when the receiver had
            # no slot left once our token came back.
            if self.state != OFFERING and (kind == wire.ACCEPT or self.flight.base):
                return
            try:
                body = wire.decode_json(payload)
            except wire.Malformed:
                return
            if self.state == OFFERING and self.control_tries == 1:
                sample = now - self.control_sent          # Karn: an OFFER sent once
                self.rtt.sample(sample)
                self.cc.on_rtt(sample)
            if kind == wire.REJECT:
                self._rejected(body, now)
                return
            self._accepted(body, now)
            return
        if session != self.token or self.state == OFFERING:
            return
        if kind == wire.ACK:
            try:
                self._on_ack(*wire.decode_ack(seq, payload), now)
            except wire.Malformed:
                return
        elif kind == wire.DONE:
            try:
                body = wire.decode_json(payload)
            except wire.Malformed:
                body = {}
            self.flight.reset(self.total, self.total)
            self.stored_name = body.get("name")
            self._finish(DELIVERED)
        elif kind == wire.FAIL:
            try:
                body = wire.decode_json(payload)
            except wire.Malformed:
                body = {}
            error = str(body.get("error", "the receiver failed the transfer"))
            if body.get("restart") is True and self.resumed_bytes and self.offer["resume"]:
                # What it kept from before was unusable and is gone: send it all.
                self.offer["resume"] = False
                self._offer_again(now, now)
                return
            self.failed_by_peer = True
            self._finish(FAILED, error)

    def _rejected(self, body: dict, now: float) -> None:
        error = str(body.get("error", "refused"))
        retry = body.get("retry_after")
        if not isinstance(retry, (int, float)) or isinstance(retry, bool) \
                or not 0 < retry <= MAX_RETRY_AFTER:
            self._finish(REJECTED, error)
            return
        if self.wait_deadline is None:
            self.wait_deadline = now + self.timeout
        if now + retry > self.wait_deadline:
            self._finish(REJECTED, f"{error} (gave up after waiting {self.timeout:g} s "
                                   "for a slot)")
            return
        self._offer_again(now, now + retry)

    def _offer_again(self, now: float, when: float) -> None:
        """Start again from the offer at ``when``, under a new id (the
        receiver remembers its answer to the old one)."""
        self.state = WAITING
        self.retry_at = when
        self.last_progress = now
        self.resumed_bytes = 0
        self.offer_id = self.offer_id % ((1 << 64) - 1) + 1
        self.token = self.total = 0
        self.flight.reset(0, 0)
        self.control.clear()
        self.control_tries = 0

    def _accepted(self, body: dict, now: float) -> None:
        try:
            token = int(body["token"])
            window = int(body.get("window", self.window))
            payload = int(body.get("payload", self.payload_size))
        except (KeyError, TypeError, ValueError):
            return
        if not (0 < token < 1 << 64) or window < 1 or not (1 <= payload <= self.payload_size):
            return
        self.token = token
        self.peer_window = window
        self.payload_size = payload
        self.total = -(-self.size // payload)
        have = body.get("have", 0)
        if isinstance(have, int) and not isinstance(have, bool) and 0 < have < self.size \
                and have % payload == 0 and self.offer["resume"]:
            # The receiver checked what it kept of an earlier attempt.
            self.resumed_bytes = have
        self.flight.reset(self.total, self.resumed_bytes // payload)
        self.last_progress = now
        self.control_tries = 0
        self.state = SENDING if self.total else CONFIRMING
        if self.state == CONFIRMING:
            self._send_control(now)

    def _on_ack(self, cumulative: int, window: int, trigger: int, bits: int,
                now: float) -> None:
        """One ACK: the RTT sample, then what it acknowledges and shows lost."""
        if cumulative > self.total:
            return
        self.peer_window = max(1, window)
        sample = self.flight.rtt_sample(trigger, now)
        if sample is not None:
            self.rtt.sample(sample)
            self.cc.on_rtt(sample, self.rtt.srtt)
        if self.flight.on_ack(cumulative, bits, now):
            self.last_progress = now
        if self.flight.base >= self.total and self.state == SENDING:
            self.state = CONFIRMING
            self.control_tries = 0
            self._send_control(now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out = self.control
        self.control = []
        if self.state != SENDING:
            return out
        psize, token, read, flight = self.payload_size, self.token, self.read, self.flight
        encode, DATA = wire.encode, wire.DATA
        if flight.resend:
            for seq in flight.take_resends(now):
                data = read(seq * psize, psize)
                out.append(encode(DATA, token, seq, data))
                self.retransmits += 1
                self.retransmitted_bytes += len(data)
                self.sent_bytes += len(data)
        first = flight.next_seq
        # New packets: within the receiver's window, the congestion window
        # (packets in flight) and what pacing allows now.
        allowed = min(self.burst, self.cc.window - flight.in_flight,
                      self.cc.send_budget(now, self.rtt.srtt))
        if flight.probe_new:
            allowed = max(allowed, 1)
            flight.probe_new = False
        room = self._room()
        limit = min(room, first + allowed)
        if first < limit:
            self.cc.sent(limit - first)
            out += [encode(DATA, token, seq, read(seq * psize, psize))
                    for seq in range(first, limit)]
            flight.sent(first, limit, now)
            self.sent_bytes += min(self.size, limit * psize) - first * psize
        if out:
            flight.after_send(now)
        # Held back by pacing alone: the timer brings us back in time.
        self.pace_at = None
        if flight.next_seq < room and flight.in_flight < self.cc.window:
            self.pace_at = self.cc.next_send_time(now, self.rtt.srtt)
        return out

    @property
    def can_send(self) -> bool:
        """More datagrams may leave right away (the burst limit held some
        back); when only pacing holds them, :meth:`get_timer` says when."""
        if self.state != SENDING:
            return False
        flight = self.flight
        if flight.resend or flight.probe_new:
            return True
        return (flight.next_seq < self._room() and flight.in_flight < self.cc.window
                and self.cc.next_send_time(0.0, self.rtt.srtt) is None)

    def get_timer(self) -> float | None:
        if self.state == FINISHED:
            return None
        deadline = self.last_progress + self.timeout
        if self.state == WAITING:
            return self.retry_at
        if self.state in (OFFERING, CONFIRMING):
            return min(deadline, self.control_sent + self.rtt.backoff(self.control_tries - 1))
        if self.pace_at is not None:
            deadline = min(deadline, self.pace_at)
        due = self.flight.deadline()
        return deadline if due is None else min(deadline, due)

    def handle_timer(self, now: float) -> None:
        if self.state == FINISHED:
            return
        if self.state == WAITING:
            if now >= self.retry_at:
                self.state = OFFERING
                self.last_progress = now
                self._send_control(now)
            return
        if now >= self.last_progress + self.timeout:
            what = "the receiver stopped answering" if self.state != OFFERING \
                else "no answer from the receiver"
            self._finish(FAILED, f"{what} (timeout {self.timeout:g} s)")
            return
        if self.state in (OFFERING, CONFIRMING):
            if now >= self.control_sent + self.rtt.backoff(self.control_tries - 1):
                self._send_control(now)
            return
        self.flight.on_timer(now, room=self.flight.next_seq < self._room(),
                             silent_for=now - self.last_progress)
