"""Congestion control and pacing for one push (sans-IO: time is passed in).

A :class:`Controller` keeps a congestion window in packets, in the manner of
NewReno with SACK (RFC 6675) and QUIC (RFC 9002):

* slow start doubles the window each round trip until the first congestion
  event or until the round trip grows (the queue at a bottleneck is filling:
  HyStart's delay signal);
* after that the window grows by about one packet per round trip;
* a loss reduces the window by ``BETA`` (0.7, CUBIC's factor), at most once
  per round trip: losses of packets sent before the reduction belong to the
  same event (QUIC's recovery period);
* a loss while the round trip shows no queueing delay, and while under 10% of
  recent packets are lost (measured over at least 1,000 packets, and only
  once 200 have been seen), is not taken as congestion (BBR's view: isolated
  random loss on a LAN is not a full queue), so a lossy but idle link is
  still used at full speed; a cut made on the loss share alone starts the
  share's measurement afresh.  "Queueing delay" is judged on the smallest of
  the last few round-trip samples, as HyStart++ and BBR filter theirs: a
  standing queue raises them all, while a busy host that answers late once
  (a scheduler hiccup on a loaded machine) raises only one;
* persistent congestion (the same packet timing out again after its backed-off
  timeout) resets the window to the minimum.

:meth:`Controller.send_budget` paces new packets at 1.25 times the window
per smoothed round trip (2 times in slow start), in bursts of at most
``BURST`` packets, so a window never leaves as one burst into a queue.
"""
from __future__ import annotations

from collections import deque

INITIAL_WINDOW = 16        # packets: a first round trip on a LAN may carry this much
MINIMUM_WINDOW = 4
BETA = 0.7
# Packets that may leave back to back.  Each burst costs the sender a timer
# and a pass through the reactor, so fewer, larger bursts go faster, up to
# what queues on the way hold (docs/performance.md).
BURST = 24
RANDOM_LOSS = 0.1          # above this share of packets lost, loss is congestion anyway
LOSS_SAMPLE = 1000         # packets the loss share is measured over, at least
SHARE_EVIDENCE = 200       # packets seen before the share alone may mean congestion
QUEUE_DELAY = 0.002        # seconds of round trip above the minimum that mean a queue
RECENT_SAMPLES = 8         # round-trip samples whose minimum tells whether a queue stands


class Controller:
    def __init__(self, maximum: int, initial: int = INITIAL_WINDOW):
        self.maximum = maximum
        self.cwnd = float(min(initial, maximum))
        self.ssthresh = float("inf")
        self.min_rtt = float("inf")
        self.recovery_start = -1.0    # send time from which losses start a new event
        self.reductions = 0
        self.acked = 0.0               # recent packets acknowledged / lost (decaying)
        self.lost = 0.0
        self._tokens = float(BURST)
        self._stamp: float | None = None
        self._recent: deque[float] = deque(maxlen=RECENT_SAMPLES)

    @property
    def window(self) -> int:
        return max(MINIMUM_WINDOW, int(self.cwnd))

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def _queueing(self) -> bool:
        if not self._recent:
            return True   # nothing known yet: be careful
        return min(self._recent) > self.min_rtt + max(QUEUE_DELAY, self.min_rtt)

    def on_rtt(self, sample: float, srtt: float | None = None) -> None:
        """A round-trip sample (Karn: from a packet sent once)."""
        self._recent.append(sample)
        if sample < self.min_rtt:
            self.min_rtt = sample
        if self.in_slow_start and self._slow_start_done():
            self.ssthresh = self.cwnd     # the queue is filling: stop doubling

    def _slow_start_done(self) -> bool:
        return self._queueing() and self.cwnd > INITIAL_WINDOW

    def on_ack(self, packets: int) -> None:
        """``packets`` newly acknowledged (cumulatively or selectively)."""
        if packets <= 0:
            return
        self._count(acked=packets)
        if self.in_slow_start:
            self.cwnd += packets
        else:
            self.cwnd += packets / self.cwnd
        if self.cwnd > self.maximum:
            self.cwnd = float(self.maximum)

    def on_loss(self, sent_at: float, now: float, srtt: float | None = None) -> None:
        """A packet sent at ``sent_at`` was lost (fast retransmit, RACK or
        its timer).  (``srtt`` is not needed: the recent samples tell.)"""
        self._count(lost=1)
        if sent_at <= self.recovery_start:
            return                        # the same congestion event
        seen = self.lost + self.acked
        if not self._queueing():
            if seen < SHARE_EVIDENCE or self.lost / seen < RANDOM_LOSS:
                return                    # isolated random loss on an idle path
            # Cut on the loss share alone: that evidence is used up.  Kept,
            # it would cut again every round trip until enough new packets
            # dilute it, and a smaller window takes more round trips to do so.
            self.acked = self.lost = 0.0
        self.recovery_start = now
        self.reductions += 1
        self.ssthresh = max(float(MINIMUM_WINDOW), self.cwnd * BETA)
        self.cwnd = self.ssthresh

    def _count(self, acked: int = 0, lost: int = 0) -> None:
        self.acked += acked
        self.lost += lost
        # About the last few round trips, but never fewer than LOSS_SAMPLE
        # packets: in a small window 5% random loss often looks like 10% and
        # each cut would make the window, and the sample, smaller still.
        if self.acked + self.lost > max(4 * self.cwnd, LOSS_SAMPLE):
            self.acked /= 2
            self.lost /= 2

    def on_persistent_congestion(self, now: float) -> None:
        self.recovery_start = now
        self.ssthresh = max(float(MINIMUM_WINDOW), self.cwnd * BETA)
        self.cwnd = float(MINIMUM_WINDOW)

    # -- pacing ---------------------------------------------------------------------
    def rate(self, srtt: float | None) -> float | None:
        """Packets per second, or None while no round trip is known."""
        if not srtt:
            return None
        gain = 2.0 if self.in_slow_start else 1.25
        return gain * self.cwnd / srtt

    def send_budget(self, now: float, srtt: float | None) -> int:
        """How many new packets may leave now."""
        rate = self.rate(srtt)
        if rate is None:
            return BURST
        if self._stamp is not None:
            self._tokens = min(float(BURST), self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        return int(self._tokens + 1e-6)   # rounding must not leave a whole packet waiting

    def sent(self, packets: int) -> None:
        self._tokens -= packets

    def next_send_time(self, now: float, srtt: float | None) -> float | None:
        """When at least one more packet may leave (None: now)."""
        rate = self.rate(srtt)
        if rate is None or self._tokens + 1e-6 >= 1:
            return None
        return now + max(1e-6, (1 - self._tokens) / rate)


# Seconds of queueing a background push allows itself.  LEDBAT's 100 ms is
# for the Internet; on a LAN a queue of a few ms is already someone's wait,
# and a TCP stream that paces itself (BBR) never builds much more, so a
# larger target takes most of such a stream's rate (docs/performance.md).
BACKGROUND_TARGET = 0.0025
BACKGROUND_GAIN = 1.0       # packets per round trip it grows by, at most, with no queue
BACKGROUND_BACKOFF = 0.5    # share of the window given up per round trip over the target


class BackgroundController(Controller):
    """A push that yields to other traffic (``tekcos push --background``),
    after LEDBAT (RFC 6817) and BitTorrent's uTP.

    The queueing delay is the smallest of the recent round trips minus the
    smallest ever seen (the path's own delay).  Below BACKGROUND_TARGET the
    window grows, in proportion to how far below (doubling per round trip at
    first, while the delay stays under half the target); above it the window
    shrinks by up to half per round trip, so a TCP stream that fills a
    bottleneck's queue pushes this one down to the minimum within a few
    round trips, and on an otherwise idle link it still fills the link with
    a standing queue of about the target.  Loss is handled as for a normal
    push.
    """

    def queueing_delay(self) -> float:
        if not self._recent or self.min_rtt == float("inf"):
            return 0.0
        return max(0.0, min(self._recent) - self.min_rtt)

    def _slow_start_done(self) -> bool:
        return self.queueing_delay() > BACKGROUND_TARGET / 2

    def on_ack(self, packets: int) -> None:
        if packets <= 0:
            return
        self._count(acked=packets)
        delay = self.queueing_delay()
        if self.in_slow_start and delay <= BACKGROUND_TARGET / 2:
            self.cwnd += packets
        else:
            off_target = (BACKGROUND_TARGET - delay) / BACKGROUND_TARGET
            if off_target >= 0:
                self.cwnd += BACKGROUND_GAIN * off_target * packets / self.cwnd
            else:
                # Over a whole window's worth of ACKs (one round trip) this
                # comes to a factor of up to BACKGROUND_BACKOFF.
                share = min(1.0, -off_target) * BACKGROUND_BACKOFF * packets / self.cwnd
                self.cwnd *= 1.0 - min(share, BACKGROUND_BACKOFF)
            self.ssthresh = min(self.ssthresh, self.cwnd)   # no slow start again
        self.cwnd = min(float(self.maximum), max(float(MINIMUM_WINDOW), self.cwnd))

    def rate(self, srtt: float | None) -> float | None:
        # No probing above the window (a normal push paces at 1.25 times it).
        if not srtt:
            return None
        return (2.0 if self.in_slow_start else 1.0) * self.cwnd / srtt
