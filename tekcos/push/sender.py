"""Sans-IO Selective Repeat sender: one file or message to one receiver.

Drive it like aioquic's connection::

    sender.start(now)
    for datagram in sender.datagrams_to_send(now): send it
    sender.receive_datagram(data, now)      # every datagram from the receiver
    deadline = sender.get_timer()           # call handle_timer(now) then
    sender.handle_timer(now)

Each in-flight packet has its own logical timer (a heap entry); its timeout
is the RFC 6298 RTO backed off by that packet's own retransmission count.
A packet is lost, and resent at once, when three packets sent after it are
acknowledged (fast retransmit), or when one sent a reordering window after it
is (RACK's time threshold, RFC 8985; a resent packet counts by its first send
time there, as an ACK for it may be for that copy).  When packets sent once
time out, one probe goes (RFC 9002's probe timeout): a new packet if the
receiver's window has room, else the oldest resent; what may have been lost
is the acknowledgement, and the probe's answer tells which of the others are
missing.  Once everything has been sent, two round trips without news send a
probe too (RFC 8985's tail loss probe).  A resent packet that times out again
is lost.  The sender never has a packet in flight at or beyond ``cumulative
ack + the receiver's advertised window``.
"""
from __future__ import annotations

import heapq
from collections import deque
from itertools import compress, repeat
from typing import Callable

from tekcos.push import wire
from tekcos.push.congestion import BackgroundController, Controller
# The states and the offer's constants live with the offer's side
# (push/offering.py); they are named here too, where callers look for them.
from tekcos.push.offering import (  # noqa: F401
    CONFIRMING, DELIVERED, FAILED, FINISHED, HANDSHAKE_RTO, JUMBO_PATIENCE, OFFERING, REJECTED,
    SENDING, WAITING, Offering)
from tekcos.push.rtt import RttEstimator

DUP_THRESHOLD = 3
# Until a round trip is measured.  An answer on a LAN takes milliseconds, and
# a lost OFFER or ACCEPT must not cost a large share of a push that takes
# under a second.
INITIAL_RTO = 0.2
TAIL_PROBE_MIN = 0.002   # a tail probe waits at least this long (a busy host answers late)


_DIGITS = bytes.maketrans(b"01", b"\x00\x01")


def _ones(mask: int, offset: int):
    """``offset + i`` for every bit i set in ``mask`` (a non-negative
    int), in increasing order; done in C, as a bitmap can hold thousands."""
    if not mask:
        return ()
    low = (mask & -mask).bit_length() - 1     # skip the zeros below (often thousands)
    run = mask >> low
    if not run & (run + 1):
        # One run of ones, the usual case: a burst that arrived above a hole.
        return range(offset + low, offset + low + run.bit_length())
    digits = bin(mask >> low)[:1:-1].encode().translate(_DIGITS)   # least significant first
    return compress(range(offset + low, offset + low + len(digits)), digits)


class Sender(Offering):
    def __init__(self, *, offer_id: int, name: str, size: int, sha256: str, kind: str,
                 read: Callable[[int, int], bytes], sender_name: str = "",
                 payload_size: int | None = wire.DEFAULT_PAYLOAD, window: int = 1024,
                 timeout: float = 10.0, rtt: RttEstimator | None = None, burst: int = 64,
                 resume: bool = True, background: bool = False, client: str = "",
                 recipient: str = "", wait_accept: float = 300.0):
        self.offer_id = offer_id
        # None: the adapter sets the size its path carries (use_payload)
        # before the first offer.
        self.payload_from_path = payload_size is None
        if payload_size is None:
            payload_size = wire.DEFAULT_PAYLOAD
        # "resume": the receiver may continue from what an earlier,
        # interrupted push of the same file left there.
        self.offer = {"name": name, "size": size, "sha256": sha256, "kind": kind,
                      "from": sender_name, "payload": payload_size, "window": window,
                      "resume": resume}
        if client:   # names this user's resumable files on the receiver
            self.offer["client"] = client
        if recipient:   # kept by the server for that person (or room), who is asked first
            self.offer["for"] = recipient
        self.wait_accept = wait_accept
        self.waiting_for: str | None = None   # the recipient who has not answered yet
        self.retries_answered = 0     # RETRY answers (the receiver under an offer flood)
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
        self.base = 0            # lowest packet not yet acknowledged
        self.sacked = 0          # bit i: packet base + i acknowledged selectively
        self.next_seq = 0        # next packet never sent
        self.sent_at: dict[int, float] = {}   # unacknowledged packets: last send time
        self.retries: dict[int, int] = {}     # times resent (read only while in sent_at)
        # A resent packet keeps its first send time in sent_at: an ACK for it
        # may be for the first copy, so only that time is sure to be before
        # what the ACK saw (RACK's time threshold uses it).  Its last send
        # time is here.
        self.resent_at: dict[int, float] = {}
        self.resent: deque[tuple[float, int]] = deque()   # (when, seq), in resend order
        self.probe_new = False        # a probe timeout lets one new packet out
        self.timers: list[tuple[float, int, int]] = []  # (deadline, seq, retries)
        self.resend: list[int] = []
        self.fast_mark = 0
        self.retransmits = 0
        self.probes = 0               # timeouts answered with a probe
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
        self.tail_probe_at: float | None = None   # see _arm_tail_probe
        self.accepted_at = 0.0
        self.delivered_at = 0.0       # when DONE came (with accepted_at: the data's time)
        self.acks_heard = 0           # 1 once a full-sized packet of this offer is acknowledged
        self.accepted_base = 0        # where the current offer's DATA started
        self.shrunk_from = 0          # a payload size the path did not carry

    # -- progress for the UI ------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    @property
    def bytes_acked(self) -> int:
        return min(self.size, self.base * self.payload_size) if self.total else 0

    def use_payload(self, size: int) -> None:
        """Offer packets of ``size`` bytes (before the offer, or when
        starting again from it)."""
        self.payload_size = self.offer["payload"] = size

    # -- driving ------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        if self.state in (SENDING, CONFIRMING):
            self.control.append(wire.encode_json(wire.ABORT, self.token, {"error": reason}))
        self._finish(FAILED, reason)

    def _finish(self, status: str, error: str | None = None) -> None:
        self.state = FINISHED
        self.status = status
        self.error = error
        self.timers.clear()
        self.sent_at.clear()
        self.resent_at.clear()
        self.resend.clear()

    def receive_datagram(self, data: bytes, now: float) -> None:
        try:
            kind, session, seq, payload = wire.decode(data)
        except wire.Malformed:
            return
        if self.state == FINISHED:
            return
        if kind in (wire.ACCEPT, wire.REJECT, wire.RETRY):
            self._answer(kind, session, payload, now)
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
            self.base = self.total
            self.stored_name = body.get("name")
            self.delivered_at = now
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

    def _on_ack(self, cumulative: int, window: int, trigger: int, bits: int,
                now: float) -> None:
        """One ACK: take the RTT sample, retire what it covers, then look for
        losses (fast retransmit, lost retransmissions)."""
        if cumulative > self.total:
            return
        if not self.acks_heard:
            # Has a full-sized packet got through?  (The last one may be
            # shorter; an ACK may also only update the window.)
            last = self.total - 2 - cumulative      # the last packet's bit
            if cumulative > self.accepted_base or (bits & ~(1 << last) if last >= 0 else bits):
                self.acks_heard = 1
        self.peer_window = max(1, window)
        # Karn's rule: a packet sent once gives an RTT sample.
        if trigger in self.sent_at and trigger not in self.retries:
            sample = now - self.sent_at[trigger]
            self.rtt.sample(sample)
            self.cc.on_rtt(sample, self.rtt.srtt)
        in_flight = len(self.sent_at)
        latest = self._retire(cumulative, bits)
        if latest:
            self.last_progress = now
            self.cc.on_ack(in_flight - len(self.sent_at))
        self._mark_holes_lost(now)
        self._mark_late_lost(latest, now)
        self._mark_retransmissions_lost(latest, now)
        if self.base >= self.total and self.state == SENDING:
            self.state = CONFIRMING
            self.control_tries = 0
            self._send_control(now)
        elif latest:
            self._arm_tail_probe(now)

    def _arm_tail_probe(self, now: float) -> None:
        """Once everything has been sent, no later packet can reveal a loss
        (three above a hole, or one sent after it): a lost last packet, or a
        lost retransmission, would wait for its timeout (20 ms at least).
        Instead, two round trips without news send a probe (RFC 8985's tail
        loss probe)."""
        if self.next_seq >= self.total and self.sent_at:
            self.tail_probe_at = now + max(2 * (self.rtt.srtt or self.rtt.rto), TAIL_PROBE_MIN)
        else:
            self.tail_probe_at = None

    def _retire(self, cumulative: int, bits: int) -> float:
        """Forget every packet the ACK covers (cumulatively or selectively).
        Returns the send time of the most recently sent one, 0.0 if none was
        newly acknowledged."""
        base = self.base
        sacked = self.sacked
        newly: list = []
        if cumulative > base:
            if sacked:
                # Those acknowledged selectively were forgotten then.
                newly.append(_ones(~sacked & ((1 << (cumulative - base)) - 1), base))
            else:
                newly.append(range(base, cumulative))
            sacked >>= cumulative - base
            self.base = base = cumulative
        # Bitmap relative to our base (bit 0 = base itself).
        shift = cumulative - base + 1
        rel = bits << shift if shift >= 0 else bits >> -shift
        new = rel & ~sacked
        if new:
            sacked |= new
            newly.append(_ones(new, base))
        self.sacked = sacked
        if not newly:
            return 0.0
        sent_at = self.sent_at
        latest = max(max(map(sent_at.pop, seqs, repeat(0.0)), default=0.0) for seqs in newly)
        # The retransmission counts of acknowledged packets are never read
        # again (every reader looks at sent_at first): forgotten in bulk.
        retries = self.retries
        if len(retries) > 2 * len(sent_at) + 1024:
            self.retries = {seq: n for seq, n in retries.items() if seq in sent_at}
            self.resent_at = {seq: t for seq, t in self.resent_at.items() if seq in sent_at}
        # A packet whose send time is unknown still counts as progress.
        return latest or 1e-9

    def _lost(self, seq: int, now: float) -> None:
        self.resend.append(seq)
        self.cc.on_loss(self.resent_at.get(seq) or self.sent_at[seq], now, self.rtt.srtt)

    def _mark_holes_lost(self, now: float) -> None:
        """Fast retransmit (RFC 6675's IsLost): a hole with at least
        DUP_THRESHOLD selectively acknowledged packets above it is lost.
        Holes below the DUP_THRESHOLD-th highest acknowledged packet qualify;
        each packet is considered once (fast_mark), later losses of the
        resent copy are left to its own timer."""
        base = self.base
        marks = self.sacked
        for _ in range(DUP_THRESHOLD - 1):
            if not marks:
                break
            marks &= ~(1 << (marks.bit_length() - 1))
        limit = base + marks.bit_length() - 1 if marks else base
        start = max(self.fast_mark, base)
        if limit <= start:
            return
        holes = ~(self.sacked >> (start - base)) & ((1 << (limit - start)) - 1)
        while holes:
            low = holes & -holes
            seq = start + low.bit_length() - 1
            if seq in self.sent_at:
                self._lost(seq, now)
            holes ^= low
        self.fast_mark = limit

    def _mark_late_lost(self, latest: float, now: float) -> None:
        """RACK's time threshold for packets sent once: one still
        unacknowledged when a packet sent a reordering window after it has
        been acknowledged is lost (on a path that keeps order it cannot
        still be on its way).  Packets sent once went out in sequence order,
        so the look starts where the last one stopped (fast_mark)."""
        if latest <= 0.001:
            return
        horizon = latest - max(0.001, (self.rtt.srtt or 0.0) / 4)
        sent_at, retries = self.sent_at, self.retries
        seq = max(self.fast_mark, self.base)
        end = self.next_seq
        while seq < end:
            t = sent_at.get(seq)
            if t is not None and seq not in retries:
                if t >= horizon:
                    break
                self._lost(seq, now)
            seq += 1
        self.fast_mark = seq

    def _mark_retransmissions_lost(self, latest: float, now: float) -> None:
        """A resent packet can be lost again.  RACK-style: it is, once a
        packet sent a reordering window after it has been acknowledged.
        Resent packets wait in the order they were resent, so only the
        oldest are looked at."""
        resent = self.resent
        if not resent or not latest:
            return
        reo = max(0.001, (self.rtt.srtt or 0.0) / 4)
        sent_at, resent_at = self.sent_at, self.resent_at
        while resent and resent[0][0] + reo < latest:
            when, seq = resent.popleft()
            if seq in sent_at and resent_at.get(seq) == when:   # nor acknowledged nor resent since
                self._lost(seq, now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out = self.control
        self.control = []
        if self.state != SENDING:
            return out
        psize, token, read = self.payload_size, self.token, self.read
        timers, sent_at, retries = self.timers, self.sent_at, self.retries
        encode, DATA, push = wire.encode, wire.DATA, heapq.heappush
        if self.resend:
            resent_at, resent, backoff = self.resent_at, self.resent, self.rtt.backoff
            packets = resent_bytes = 0
            for seq in dict.fromkeys(self.resend):  # a timer and a fast resend may coincide
                if seq in sent_at:
                    count = retries.get(seq, 0) + 1
                    retries[seq] = count
                    resent_at[seq] = now
                    resent.append((now, seq))
                    data = read(seq * psize, psize)
                    out.append(encode(DATA, token, seq, data))
                    push(timers, (now + backoff(count), seq, count))
                    packets += 1
                    resent_bytes += len(data)
            self.retransmits += packets
            self.retransmitted_bytes += resent_bytes
            self.sent_bytes += resent_bytes
            self.resend = []
        seq = self.next_seq
        # New packets: within the receiver's window, the congestion window
        # (packets in flight) and what pacing allows now.
        allowed = min(self.burst, self.cc.window - len(sent_at),
                      self.cc.send_budget(now, self.rtt.srtt))
        if self.probe_new:
            allowed = max(allowed, 1)
            self.probe_new = False
        window_end = self._window_end()
        limit = min(window_end, seq + allowed)
        if seq < limit:
            self.cc.sent(limit - seq)
            deadline = now + self.rtt.rto
            first = seq
            while seq < limit:
                out.append(encode(DATA, token, seq, read(seq * psize, psize)))
                sent_at[seq] = now
                push(timers, (deadline, seq, 0))
                seq += 1
            self.sent_bytes += min(self.size, seq * psize) - first * psize
            self.next_seq = seq
        if out and self.next_seq >= self.total:
            self._arm_tail_probe(now)
        # Held back by pacing alone: the timer brings us back in time.
        self.pace_at = None
        if seq < window_end and len(sent_at) < self.cc.window:
            self.pace_at = self.cc.next_send_time(now, self.rtt.srtt)
        return out

    def _window_end(self) -> int:
        """The first packet that neither window lets out yet (ours and the
        receiver's advertised one, from the cumulative ack)."""
        return min(self.total, self.base + min(self.window, self.peer_window))

    @property
    def can_send(self) -> bool:
        """More datagrams may leave right away (the burst limit held some
        back); when only pacing holds them, :meth:`get_timer` says when."""
        if self.state != SENDING:
            return False
        if self.resend or self.probe_new:
            return True
        return (self.next_seq < self._window_end()
                and len(self.sent_at) < self.cc.window
                and self.cc.next_send_time(0.0, self.rtt.srtt) is None)

    def get_timer(self) -> float | None:
        if self.state == FINISHED:
            return None
        deadline = self.last_progress + self.timeout
        if self.state == WAITING:
            return self.retry_at
        if self.state in (OFFERING, CONFIRMING):
            return min(deadline, self.control_sent + self._control_timeout())
        if self.pace_at is not None:
            deadline = min(deadline, self.pace_at)
        if self.tail_probe_at is not None:
            deadline = min(deadline, self.tail_probe_at)
        shrink_at = self._shrink_at()
        if shrink_at is not None:
            deadline = min(deadline, shrink_at)
        timers, sent_at, retries = self.timers, self.sent_at, self.retries
        while timers:
            when, seq, count = timers[0]
            if seq in sent_at and retries.get(seq, 0) == count:
                return min(deadline, when)
            heapq.heappop(timers)   # stale: acknowledged or resent since
        return deadline

    def handle_timer(self, now: float) -> None:
        if self.state == FINISHED:
            return
        if self._control_timer(now):
            return
        timers, sent_at, retries = self.timers, self.sent_at, self.retries
        # What the round trip is now, not when the timer was set: a queue
        # building up at a bottleneck delays packets without losing them.
        rtt = self.rtt
        patience = max(rtt.srtt or 0.0, rtt.latest or 0.0) * 9 / 8 + 0.001
        probed = False
        if self.tail_probe_at is not None and now >= self.tail_probe_at:
            self.tail_probe_at = None
            if sent_at and not self.resend:
                self.resend.append(min(sent_at))   # the oldest: the likeliest lost
                self.probes += 1
                probed = True
        while timers and timers[0][0] <= now:
            when, seq, count = heapq.heappop(timers)
            if seq not in sent_at or retries.get(seq, 0) != count:
                continue      # stale: acknowledged or resent since
            last = self.resent_at[seq] if count else sent_at[seq]
            if now < last + patience:
                heapq.heappush(timers, (last + patience, seq, count))
            elif count:
                if now - self.last_progress > 3 * rtt.rto:
                    # Its retransmission timed out too and nothing has been
                    # acknowledged for three timeouts: persistent congestion
                    # (RFC 9002), not one more random loss.
                    self.cc.on_persistent_congestion(now)
                self._lost(seq, now)
            elif not probed:
                # A probe, not a loss: a lost ACK for a whole flight (one
                # ACK answers a burst) must not look like a lost flight.
                # New data if the receiver's window has room (RFC 9002
                # 6.2.4): its ACK is not ambiguous, and everything sent
                # before it that it does not cover is lost.
                self.probes += 1
                probed = True
                if self.next_seq < self._window_end():
                    self.probe_new = True
                    heapq.heappush(timers, (now + rtt.rto, seq, 0))
                else:
                    self.resend.append(seq)
            else:
                heapq.heappush(timers, (now + rtt.rto, seq, 0))
