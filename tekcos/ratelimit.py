"""Per-connection token bucket.  Time is passed in, so tests drive it with
explicit numbers and the chat adapter with ``reactor.seconds()``."""
from __future__ import annotations


class TokenBucket:
    """Allow ``burst`` events at once and ``rate`` events per second after.

    ``rate == 0`` disables limiting: :meth:`allow` is always true.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many; say whether the
        event may pass."""
        if not self.rate:
            return True
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= cost:
            self.tokens = tokens - cost
            return True
        self.tokens = tokens
        return False

    def wait(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``cost`` tokens are there (0 if they
        are now)."""
        if not self.rate:
            return 0.0
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return max(0.0, (cost - tokens) / self.rate)
