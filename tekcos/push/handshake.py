"""The sender's side of the handshake, as pure functions: what the
receiver's answer to an OFFER says, checked (``read_answer``), as one of
:class:`Accepted`, :class:`Busy`, :class:`Rejected` or :class:`Retry`, or
None for an answer that is not one (malformed, out of range: ignored, as a
stray datagram is).  :class:`tekcos.push.sender.Sender` acts on them."""
from __future__ import annotations

from dataclasses import dataclass

from tekcos.push import wire

MAX_RETRY_AFTER = 60.0
MAX_COOKIE = 64


@dataclass(frozen=True)
class Accepted:
    token: int
    window: int          # packets the receiver takes at once
    payload: int         # bytes per packet (at most what we offered)
    have: int = 0        # bytes the receiver kept of an earlier attempt, to continue from


@dataclass(frozen=True)
class Busy:
    """No slot now, or a person still asked: offer again after ``retry_after``."""
    error: str
    retry_after: float
    waiting: str | None = None     # the person being asked, if that is the wait


@dataclass(frozen=True)
class Rejected:
    error: str


@dataclass(frozen=True)
class Retry:
    """The receiver checks few offers (a flood): offer again with ``cookie``."""
    cookie: str


def read_answer(kind: int, payload: bytes, *, offered_payload: int, window: int, size: int,
                resume: bool) -> Accepted | Busy | Rejected | Retry | None:
    """The answer in an ACCEPT, REJECT or RETRY datagram's body (``window``:
    ours, taken when the receiver names none)."""
    try:
        body = wire.decode_json(payload)
    except wire.Malformed:
        return None
    if kind == wire.RETRY:
        cookie = body.get("cookie")
        return Retry(cookie) if isinstance(cookie, str) and len(cookie) <= MAX_COOKIE else None
    if kind == wire.REJECT:
        error = str(body.get("error", "refused"))
        retry = body.get("retry_after")
        if not isinstance(retry, (int, float)) or isinstance(retry, bool) \
                or not 0 < retry <= MAX_RETRY_AFTER:
            return Rejected(error)
        waiting = body.get("waiting")
        return Busy(error, float(retry), waiting[:64] if isinstance(waiting, str) else None)
    if kind != wire.ACCEPT:
        return None
    try:
        token = int(body["token"])
        window = int(body.get("window", window))
        payload_size = int(body.get("payload", offered_payload))
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < token < 1 << 64) or window < 1 or not (1 <= payload_size <= offered_payload):
        return None
    have = body.get("have", 0)
    if not (isinstance(have, int) and not isinstance(have, bool) and 0 < have < size
            and have % payload_size == 0 and resume):
        have = 0
    return Accepted(token, window, payload_size, have)
