"""Sessions whose connection dropped, kept a while so that their user comes back.

A phone that walks out of Wi-Fi range, a laptop lid closed for a minute, a
proxy that recycles its connections: the user did not leave, and should
not come back as a stranger whose nick was taken meanwhile, who missed what
was said, and whose departure and return everyone was told about.

:class:`Detached` gives each registered session a resume token (128 random
bits, told to its own connection only).  When the connection drops, the
session stays in the hub for :data:`HOLD_SECONDS`: still in its rooms, its
nick still its own, what is sent to it kept (up to :data:`MAX_MISSED`
bytes).  A new connection that presents the token takes the session over
and is sent what it missed, in order; nobody else notices.  When the time
is up, or the missed output overflows, the session quits as it would have
("connection lost").  A token presented while the old connection still
looks alive (it died without a word) takes the session over from it.

Plain object: the clock (``callLater``) is injected; what it holds is
bounded (:data:`MAX_HELD` sessions, ``max_per_host`` per address).
"""
from __future__ import annotations

import secrets

HOLD_SECONDS = 120.0      # how long a dropped session waits for its user
MAX_MISSED = 256 * 1024   # bytes of output kept for a held session
MAX_HELD = 1000           # held sessions at once (each keeps a nick)


class _Away:
    """The peer of a held session: keeps what the session is sent."""

    kind = "the web page (reconnecting)"

    def __init__(self, detached: "Detached", session, host: str | None):
        self.detached = detached
        self.session = session
        self.host = host
        self.local_host = None
        self.missed: list[bytes] = []
        self.size = 0
        self.call = None

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.detached.max_missed:
            # Too much to catch up on: this user is gone after all.
            self.detached.expire(self.session, "connection lost (missed too much)")
            return
        self.missed.append(data)
        self.size += len(data)

    def close(self, reason: str) -> None:
        self.detached.gone(self.session)

    def log_nick(self, old, new) -> None:
        pass


class Detached:
    def __init__(self, clock, hold: float = HOLD_SECONDS, max_held: int = MAX_HELD,
                 max_missed: int = MAX_MISSED, max_per_host: int = 32, log=lambda text: None):
        self.clock = clock
        self.hold_seconds = hold
        self.max_held = max_held
        self.max_missed = max_missed
        self.max_per_host = max_per_host
        self.log = log
        self.tokens: dict[str, object] = {}      # token -> session
        self.token_of: dict[object, str] = {}    # session -> token
        self.held: dict[object, _Away] = {}      # held session -> its stand-in peer
        self.per_host: dict[str | None, int] = {}
        self.resumed = 0                          # sessions taken over (metrics, tests)

    def issue(self, session) -> str:
        """A token for ``session`` (one per session)."""
        token = self.token_of.get(session)
        if token is None:
            token = secrets.token_urlsafe(16)
            self.tokens[token] = session
            self.token_of[session] = token
        return token

    def hold(self, session, host: str | None) -> bool:
        """``session``'s connection dropped: keep it for its user.  False
        when it cannot be kept (no token, too many held): the caller ends
        it as before."""
        if session not in self.token_of or session.closed or session.nick is None:
            return False
        if len(self.held) >= self.max_held or \
                (self.max_per_host and self.per_host.get(host, 0) >= self.max_per_host):
            return False
        away = _Away(self, session, host)
        self.held[session] = away
        self.per_host[host] = self.per_host.get(host, 0) + 1
        session.peer = away
        session.set_sink(away.write)
        away.call = self.clock.callLater(self.hold_seconds, self.expire, session,
                                         "connection lost")
        self.log(f"{session.nick} is held for {self.hold_seconds:g} s (connection dropped)")
        return True

    def resume(self, token: str, peer):
        """The session ``token`` names, now talking through ``peer``, and the
        bytes it missed; None for an unknown token.  A session whose old
        connection is still open is taken from it (``old.superseded()``)."""
        session = self.tokens.get(token) if isinstance(token, str) else None
        if session is None or session.closed:
            return None
        away = self.held.pop(session, None)
        missed = b""
        if away is not None:
            self._release(away)
            missed = b"".join(away.missed)
        else:
            session.peer.superseded()
        session.peer = peer
        session.set_sink(peer.write)
        self.resumed += 1
        return session, missed

    def expire(self, session, reason: str) -> None:
        """A held session's time is up (or it missed too much): it quits."""
        if session in self.held:
            session.quit(reason)       # its peer's close() calls gone()

    def gone(self, session) -> None:
        """``session`` ended for good: its token goes with it."""
        away = self.held.pop(session, None)
        if away is not None:
            self._release(away)
            session.set_sink(lambda data: None)
        token = self.token_of.pop(session, None)
        if token is not None:
            self.tokens.pop(token, None)

    def _release(self, away: _Away) -> None:
        if away.call is not None and away.call.active():
            away.call.cancel()
        away.call = None
        left = self.per_host.get(away.host, 1) - 1
        if left:
            self.per_host[away.host] = left
        else:
            self.per_host.pop(away.host, None)

    def stop(self) -> None:
        """Shutdown: held sessions end now (their timers with them)."""
        for session in list(self.held):
            self.expire(session, "server shutting down")
