"""What one push has in flight, and which of it is lost (sans-IO).

A :class:`Flight` is the sender's scoreboard (RFC 6675's word): the packets
sent and not yet acknowledged with their send times, the selective
acknowledgements, the packets to send again, and one logical timer per packet
(a heap entry) whose timeout is the RFC 6298 RTO backed off by that packet's
own retransmission count.

A packet is lost, and resent at once, when three packets sent after it are
acknowledged (fast retransmit), or when one sent a reordering window after it
is (RACK's time threshold, RFC 8985; a resent packet counts by its first send
time there, as an ACK for it may be for that copy).  When packets sent once
time out, one probe goes (RFC 9002's probe timeout): a new packet if the
receiver's window has room, else the oldest resent; what may have been lost
is the acknowledgement, and the probe's answer tells which of the others are
missing.  Once everything has been sent, two round trips without news send a
probe too (RFC 8985's tail loss probe).  A resent packet that times out again
is lost.  Losses are reported to the congestion controller; probes are not.
"""
from __future__ import annotations

import heapq
from collections import deque
from itertools import compress, repeat

DUP_THRESHOLD = 3
TAIL_PROBE_MIN = 0.002   # a tail probe waits at least this long (a busy host answers late)

_DIGITS = bytes.maketrans(b"01", b"\x00\x01")


def _ones(mask: int, offset: int):
    """``offset + i`` for every bit i set in ``mask`` (a non-negative
    int), in increasing order; done in C, as a bitmap can hold thousands."""
    if not mask:
        return ()
    low = (mask & -mask).bit_length() - 1     # skip the zeros below (often thousands)
    digits = bin(mask >> low)[:1:-1].encode().translate(_DIGITS)   # least significant first
    return compress(range(offset + low, offset + low + len(digits)), digits)


class Flight:
    def __init__(self, rtt, cc):
        self.rtt = rtt                # tekcos.push.rtt.RttEstimator
        self.cc = cc                  # tekcos.push.congestion.Controller
        self.probes = 0               # timeouts answered with a probe
        self.reset(0, 0)

    def reset(self, total: int, start: int) -> None:
        """Nothing in flight; packets below ``start`` (of ``total``) are
        already with the receiver."""
        self.total = total
        self.base = start             # lowest packet not yet acknowledged
        self.next_seq = start         # next packet never sent
        self.fast_mark = start        # packets below it were looked at for loss
        self.sacked = 0               # bit i: packet base + i acknowledged selectively
        self.sent_at: dict[int, float] = {}   # unacknowledged packets: first send time
        self.retries: dict[int, int] = {}     # times resent (read only while in sent_at)
        # A resent packet keeps its first send time in sent_at: an ACK for it
        # may be for the first copy, so only that time is sure to be before
        # what the ACK saw (RACK's time threshold uses it).  Its last send
        # time is here.
        self.resent_at: dict[int, float] = {}
        self.resent: deque[tuple[float, int]] = deque()   # (when, seq), in resend order
        self.timers: list[tuple[float, int, int]] = []    # (deadline, seq, retries)
        self.resend: list[int] = []   # lost or probed: to send again
        self.probe_new = False        # a probe timeout lets one new packet out
        self.tail_probe_at: float | None = None

    @property
    def in_flight(self) -> int:
        return len(self.sent_at)

    # -- sending ----------------------------------------------------------------------
    def take_resends(self, now: float) -> list[int]:
        """The packets to send again now, each recorded as resent."""
        sent_at, retries, resent_at = self.sent_at, self.retries, self.resent_at
        due = []
        for seq in dict.fromkeys(self.resend):  # a timer and a fast resend may coincide
            if seq in sent_at:
                count = retries.get(seq, 0) + 1
                retries[seq] = count
                resent_at[seq] = now
                self.resent.append((now, seq))
                heapq.heappush(self.timers, (now + self.rtt.backoff(count), seq, count))
                due.append(seq)
        self.resend = []
        return due

    def sent(self, first: int, limit: int, now: float) -> None:
        """New packets ``first`` .. ``limit - 1`` went out at ``now``."""
        self.sent_at.update(dict.fromkeys(range(first, limit), now))
        deadline, push, timers = now + self.rtt.rto, heapq.heappush, self.timers
        for seq in range(first, limit):
            push(timers, (deadline, seq, 0))
        self.next_seq = limit

    def after_send(self, now: float) -> None:
        """Something went out: once that is the last of it, the tail probe
        starts counting."""
        if self.next_seq >= self.total:
            self._arm_tail_probe(now)

    # -- acknowledgements -----------------------------------------------------------------
    def rtt_sample(self, trigger: int, now: float) -> float | None:
        """The round trip of the packet that triggered an ACK, if it was
        sent once (Karn's rule)."""
        if trigger in self.sent_at and trigger not in self.retries:
            return now - self.sent_at[trigger]
        return None

    def on_ack(self, cumulative: int, bits: int, now: float) -> bool:
        """Retire what an ACK covers, tell the controller, look for losses.
        True if anything was newly acknowledged."""
        in_flight = len(self.sent_at)
        latest = self._retire(cumulative, bits)
        if latest:
            self.cc.on_ack(in_flight - len(self.sent_at))
        self._mark_holes_lost(now)
        self._mark_late_lost(latest, now)
        self._mark_retransmissions_lost(latest, now)
        if latest:
            self._arm_tail_probe(now)
        return bool(latest)

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
        if len(self.retries) > 2 * len(sent_at) + 1024:
            self.retries = {seq: n for seq, n in self.retries.items() if seq in sent_at}
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

    # -- timers -----------------------------------------------------------------------
    def deadline(self) -> float | None:
        """The earliest packet timer or tail probe, if any."""
        timers, sent_at, retries = self.timers, self.sent_at, self.retries
        deadline = self.tail_probe_at
        while timers:
            when, seq, count = timers[0]
            if seq in sent_at and retries.get(seq, 0) == count:
                return when if deadline is None else min(deadline, when)
            heapq.heappop(timers)   # stale: acknowledged or resent since
        return deadline

    def on_timer(self, now: float, room: bool, silent_for: float) -> None:
        """Handle what is due at ``now``.  ``room``: the receiver's window
        lets a new packet out; ``silent_for``: seconds since anything was
        acknowledged."""
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
                if silent_for > 3 * rtt.rto:
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
                if room:
                    self.probe_new = True
                    heapq.heappush(timers, (now + rtt.rto, seq, 0))
                else:
                    self.resend.append(seq)
            else:
                heapq.heappush(timers, (now + rtt.rto, seq, 0))
