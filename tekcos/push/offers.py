"""The receiving side's control plane: is an offer worth a full check, is
it well formed, and how long must a host whose resumed pushes keep being
cut off wait.  Plain objects, time passed in; the per-datagram data plane
stays in :class:`tekcos.push.receiver.Receiver`.

* :class:`OfferGate`: the prefilter of OFFERs from senders whose address is
  not proven.  Within :data:`OFFERS_PER_SECOND` every offer is checked in
  full (JSON, name, disk space, a checkpoint read); past it, only one that
  carries a cookie made for its address and offer (a stateless HMAC, as
  QUIC's Retry), and the others are answered with a RETRY carrying one: a
  flood from spoofed sources then costs a hash each and leaves no state.
  One host gets at most :data:`OFFERS_PER_HOST` full checks a second.
* :func:`offer_fields`: the offer's fields, type-checked, or :class:`Refusal`.
* :class:`AbortHistory`: resumed pushes cut off again and again (a host
  that reopens a big file and aborts it in a loop) wait longer and longer.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from tekcos.push import wire
from tekcos.ratelimit import TokenBucket

OFFERS_PER_SECOND = 200.0
COOKIE_PERIOD = 10.0         # a cookie is good for one to two periods
OFFERS_PER_HOST = 20.0       # full checks a second for one host, cookie or not
ABORT_WINDOW = 60.0          # aborted resumed pushes are counted over this many seconds
ABORTS_ALLOWED = 4           # before a host's next resumed push is told to wait
MAX_TRACKED = 4096           # hosts remembered by each per-host table
MAX_NAME = 1024              # an offered name longer than this is refused unread
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CLIENT = re.compile(r"^[0-9a-f]{32}$")

CHECK, RETRY, TOO_MANY = "check", "retry", "too many"


class Refusal(Exception):
    """An offer is refused; ``str()`` is the reason sent back in the REJECT."""


class Busy(Refusal):
    """No slot now: the REJECT says when to try again (``retry_after``
    seconds, or the configured default)."""

    def __init__(self, reason: str, retry_after: float | None = None,
                 extra: dict | None = None):
        super().__init__(reason)
        self.retry_after = retry_after
        self.extra = extra   # more for the REJECT's body


class OfferGate:
    """Which new offers get a full check (see the module doc)."""

    def __init__(self, now: float = 0.0, secret: bytes | None = None):
        self.secret = secret or secrets.token_bytes(32)
        self.budget = TokenBucket(rate=OFFERS_PER_SECOND, burst=int(OFFERS_PER_SECOND),
                                  now=now)
        self.hosts: dict[str, TokenBucket] = {}

    def cookie(self, addr: tuple, offer_id: int, now: float) -> str:
        """The cookie a RETRY to ``addr`` carries for this offer now."""
        return self._cookie(addr, offer_id, int(now // COOKIE_PERIOD))

    def _cookie(self, addr: tuple, offer_id: int, period: int) -> str:
        text = f"{addr[0]}|{addr[1]}|{offer_id}|{period}".encode()
        return hmac.new(self.secret, text, hashlib.sha256).hexdigest()[:32]

    def cookie_valid(self, cookie, addr: tuple, offer_id: int, now: float) -> bool:
        if not isinstance(cookie, str) or len(cookie) != 32:
            return False
        period = int(now // COOKIE_PERIOD)
        return any(hmac.compare_digest(cookie, self._cookie(addr, offer_id, p))
                   for p in (period, period - 1))

    def admit(self, offer: dict, offer_id: int, addr: tuple, host: str, now: float) -> str:
        """CHECK (worth a full check), RETRY (answer with a cookie) or
        TOO_MANY (this host is over its own rate: a busy answer)."""
        cookie = offer.get("cookie")
        if cookie is None or not self.cookie_valid(cookie, addr, offer_id, now):
            if not self.budget.allow(now):
                return RETRY
        bucket = self.hosts.get(host)
        if bucket is None:
            if len(self.hosts) >= MAX_TRACKED:
                self.hosts.pop(next(iter(self.hosts)))
            bucket = self.hosts[host] = TokenBucket(OFFERS_PER_HOST, int(2 * OFFERS_PER_HOST),
                                                    now)
        return CHECK if bucket.allow(now) else TOO_MANY

    def malformed_allowed(self, now: float) -> bool:
        """A malformed offer is answered only within the global rate."""
        return self.budget.allow(now)


class AbortHistory:
    """When each host's resumed pushes were cut off."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}

    def count(self, host: str, now: float) -> None:
        times = self.times.get(host)
        if times is None:
            if len(self.times) >= MAX_TRACKED:
                self.times.pop(next(iter(self.times)))
            times = self.times[host] = []
        times.append(now)
        del times[:-2 * ABORTS_ALLOWED]

    def backoff(self, host: str, now: float) -> float:
        """Seconds ``host`` must wait before its next resumed push (0:
        none).  Doubles with every abort past the allowance, up to a
        minute."""
        times = [t for t in self.times.get(host, ()) if now - t < ABORT_WINDOW]
        if len(times) < ABORTS_ALLOWED:
            return 0.0
        wait = min(ABORT_WINDOW, 2.0 ** (len(times) - ABORTS_ALLOWED + 1))
        return max(0.0, times[-1] + wait - now)


def owner_of(offer: dict, addr: tuple) -> str:
    """Whose partial files an offer may continue: its client id (a secret
    only its user's ``tekcos push`` knows, which survives an address
    change), else its IP address."""
    client = offer.get("client")
    return f"client:{client}" if isinstance(client, str) and _CLIENT.match(client) else addr[0]


def offer_fields(offer: dict) -> dict:
    """The offer's fields, type-checked; raises Refusal."""
    kind = offer.get("kind")
    size = offer.get("size")
    sha = offer.get("sha256")
    sender = offer.get("from", "")
    want = offer.get("payload", wire.DEFAULT_PAYLOAD)
    if kind not in ("file", "message"):
        raise Refusal("unknown kind of push")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 63:
        raise Refusal("bad size")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise Refusal("bad sha256")
    if not isinstance(sender, str) or len(sender) > 64:
        raise Refusal("bad sender name")
    if not isinstance(want, int) or isinstance(want, bool) or want < 16:
        raise Refusal("bad payload size")
    name = offer.get("name")
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise Refusal(f"name longer than {MAX_NAME} characters")
    return {"kind": kind, "size": size, "sha": sha, "sender": sender, "want": want}
