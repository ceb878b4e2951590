"""Retransmission timeout from RFC 6298 (SRTT/RTTVAR), for a LAN.

The RFC's 1 s floor is meant for the Internet; on a LAN the RTT is well under
a millisecond, so the floor here is configurable (default 20 ms).  Samples
must come only from packets sent once (Karn's rule): the caller ensures it.
"""
from __future__ import annotations

ALPHA, BETA, K = 1 / 8, 1 / 4, 4
GRANULARITY = 0.001


class RttEstimator:
    def __init__(self, initial_rto: float = 1.0, min_rto: float = 0.02, max_rto: float = 10.0):
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.rto = initial_rto
        self.latest: float | None = None

    def sample(self, rtt: float) -> None:
        if rtt < 0:
            return
        self.latest = rtt
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        rto = self.srtt + max(GRANULARITY, K * self.rttvar)
        self.rto = min(self.max_rto, max(self.min_rto, rto))

    def backoff(self, retries: int) -> float:
        """The timeout for a packet already retransmitted ``retries`` times."""
        return min(self.max_rto, self.rto * (2 ** min(retries, 32)))   # 2**1024 is no float
