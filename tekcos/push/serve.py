"""Sans-IO serving side: files fetched with ``tekcos get CODE``.

The download direction reuses both halves of the push protocol the other
way round.  ``tekcos get`` sends GET (``{code}``, padded like HELLO so that
the answer fits the 3x budget); the server looks the CODE up and, if it
names a file kept for someone, starts a :class:`~tekcos.push.sender.Sender`
towards the asker: OFFER, then the asker's receiving
:class:`~tekcos.push.receiver.Receiver` answers ACCEPT (with ``have`` when
it kept part of the file from an earlier run), DATA and ACK flow with the
same windows, pacing and congestion control, and DONE ends it.  A wrong or
expired CODE gets REJECT ``{"error": "no such file"}``.

:class:`Outgoing` holds the downloads under way; :class:`ServerCores` puts
it beside the receiving endpoint on one UDP port (one adapter, one timer).
Both take ``now`` and return datagrams with their addresses.
"""
from __future__ import annotations

import secrets
from typing import Callable

from tekcos.hosts import host_key
from tekcos.push import wire
from tekcos.push.sender import DELIVERED, Sender
from tekcos.ratelimit import TokenBucket

MIN_GET = 200               # a shorter GET is not answered (anti-amplification)
MAX_DOWNLOADS = 32
PER_HOST = 4
GETS_PER_SECOND = 5.0       # per host: CODEs cannot be guessed at speed
MAX_TRACKED = 4096
RELAY_RETRY = 2.0           # seconds a GET for a file on its way here waits
_REPLIES = (wire.ACCEPT, wire.REJECT, wire.RETRY)
_FOLLOWING = (wire.ACK, wire.DONE, wire.FAIL)


class Outgoing:
    """``lookup(code, now)`` gives the kept file (``path``, ``name``,
    ``size``, ``sha256``) or None; ``open_file(path)`` gives ``(read,
    close)``; ``on_fetched(code)`` is told when a download is verified by
    the receiver."""

    def __init__(self, lookup: Callable, open_file: Callable, on_fetched: Callable[[str], None],
                 log: Callable[[str], None] | None = None, window: int = 8192,
                 payload: int = wire.DEFAULT_PAYLOAD, elsewhere: Callable = lambda code: None,
                 coming: Callable = lambda code: False,
                 on_brought: Callable[[str], None] = lambda code: None):
        self.lookup = lookup
        # The HOST:PORT of the node keeping a CODE this one does not (or None).
        self.elsewhere = elsewhere
        # Whether a CODE's file is on its way here from that node (tekcos.push.relay).
        self.coming = coming
        # A node's relay fetched it (GET with "relay"): not the recipient's fetch.
        self.on_brought = on_brought
        self.open_file = open_file
        self.on_fetched = on_fetched
        self.log = log or (lambda text: None)
        self.window = window
        self.payload = payload
        self.max_payload = max(payload, wire.MAX_PAYLOAD)
        # (addr, get id) -> (sender, code, close, fetched by a node's relay)
        self.by_offer: dict[tuple, tuple] = {}
        self.by_token: dict[tuple, tuple] = {}    # (addr, receiver's token) -> same
        self.outbox: list[tuple[bytes, tuple]] = []
        self._gets: dict[str, TokenBucket] = {}
        self.stats = {"served": 0, "failed": 0, "refused": 0}

    # -- input --------------------------------------------------------------------------
    def claims(self, kind: int, session: int, addr: tuple) -> bool:
        """Whether a datagram belongs to a download (else: the endpoint's)."""
        if kind == wire.GET:
            return True
        if kind in _REPLIES:
            return (addr, session) in self.by_offer
        if kind in _FOLLOWING:
            return (addr, session) in self.by_token
        return False

    def receive_datagram(self, data: bytes, addr: tuple, now: float) -> None:
        try:
            kind, session, seq, payload = wire.decode(data)
        except wire.Malformed:
            return
        if kind == wire.GET:
            self._get(session, payload, len(data), addr, now)
            return
        entry = self.by_offer.get((addr, session)) if kind in _REPLIES \
            else self.by_token.get((addr, session))
        if entry is None:
            return
        sender = entry[0]
        sender.receive_datagram(data, now)
        if sender.token and (addr, sender.token) not in self.by_token:
            self.by_token[(addr, sender.token)] = entry
        self._settle(addr, entry)

    def _get(self, get_id: int, payload: bytes, size: int, addr: tuple, now: float) -> None:
        if size < MIN_GET or not get_id or not self._allowed(addr, now):
            return
        if (addr, get_id) in self.by_offer:
            return                    # a repeat: the OFFER repeats itself
        try:
            request = wire.decode_json(payload)
        except wire.Malformed:
            return
        kept = self.lookup(request.get("code"), now)
        if kept is None:
            self.stats["refused"] += 1
            if self.coming(request.get("code")):
                self.outbox.append((wire.encode_json(wire.REJECT, get_id, {
                    "error": f"on its way to this server; retry in {RELAY_RETRY:g} s",
                    "retry_after": RELAY_RETRY}), addr))
                return
            where = self.elsewhere(request.get("code"))
            if where:       # another node of the hub keeps it: tekcos get asks there
                self.outbox.append((wire.encode_json(wire.REJECT, get_id, {
                    "error": f"kept by another node of this hub, at {where}",
                    "moved": where}), addr))
                return
            self._reject(get_id, addr, "no such file (wrong or expired code)")
            return
        host = host_key(addr[0])
        if len(self.by_offer) >= MAX_DOWNLOADS or \
                sum(1 for (a, _) in self.by_offer if host_key(a[0]) == host) >= PER_HOST:
            self.outbox.append((wire.encode_json(wire.REJECT, get_id, {
                "error": "busy: too many downloads at once; retry in 2 s",
                "retry_after": 2.0}), addr))
            return
        try:
            read, close = self.open_file(kept.path)
        except OSError as e:
            self.stats["failed"] += 1
            self._reject(get_id, addr, f"cannot read the file on the server: {e.strerror}")
            return
        sender = Sender(offer_id=get_id, name=kept.name, size=kept.size, sha256=kept.sha256,
                        kind="file", read=read, sender_name="tekcos", window=self.window,
                        payload_size=self._payload(request), timeout=30.0)
        entry = (sender, request.get("code"), close, request.get("relay") is True)
        self.by_offer[(addr, get_id)] = entry
        sender.start(now)

    def _payload(self, request: dict) -> int:
        """The packet size the fetching client says its path carries (a
        sender that finds the path drops them falls back to the usual), at
        most ours; ours when it does not say."""
        want = request.get("payload")
        if isinstance(want, int) and not isinstance(want, bool) and 16 <= want:
            return min(want, self.max_payload)
        return self.payload

    def _allowed(self, addr: tuple, now: float) -> bool:
        host = host_key(addr[0])
        bucket = self._gets.get(host)
        if bucket is None:
            if len(self._gets) >= MAX_TRACKED:
                self._gets.pop(next(iter(self._gets)))
            bucket = self._gets[host] = TokenBucket(GETS_PER_SECOND, 2 * int(GETS_PER_SECOND),
                                                    now)
        return bucket.allow(now)

    def _reject(self, get_id: int, addr: tuple, reason: str) -> None:
        self.outbox.append((wire.encode_json(wire.REJECT, get_id, {"error": reason}), addr))

    def _settle(self, addr: tuple, entry: tuple) -> None:
        """A finished download goes (the receiver verified it, or it failed)."""
        sender, code, close, relay = entry
        if not sender.finished:
            return
        self.outbox += [(d, addr) for d in sender.datagrams_to_send(0.0)]
        self.by_offer.pop((addr, sender.offer_id), None)
        self.by_token.pop((addr, sender.token), None)
        close()
        if sender.status == DELIVERED:
            self.stats["served"] += 1
            (self.on_brought if relay else self.on_fetched)(code)
        else:
            self.stats["failed"] += 1
            self.log(f"download of {sender.offer['name']!r} by {addr[0]} ended: "
                     f"{sender.status}: {sender.error}")

    # -- output and time --------------------------------------------------------------------
    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        out, self.outbox = self.outbox, []
        for (addr, _), (sender, *_) in list(self.by_offer.items()):
            out += [(d, addr) for d in sender.datagrams_to_send(now)]
        return out

    @property
    def can_send(self) -> bool:
        return any(entry[0].can_send for entry in self.by_offer.values())

    def get_timer(self) -> float | None:
        deadlines = [t for entry in self.by_offer.values()
                     if (t := entry[0].get_timer()) is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for (addr, _), entry in list(self.by_offer.items()):
            sender = entry[0]
            deadline = sender.get_timer()
            if deadline is not None and deadline <= now:
                sender.handle_timer(now)
            self._settle(addr, entry)

    def close(self) -> None:
        for sender, _, close, _ in list(self.by_offer.values()):
            sender.abort("the server is shutting down")
            close()
        self.by_offer.clear()
        self.by_token.clear()


class ServerCores:
    """The receiving endpoint and the downloads on one UDP port: what the
    adapter drives as one core (one timer, one outbox)."""

    def __init__(self, endpoint, outgoing: Outgoing):
        self.endpoint = endpoint
        self.outgoing = outgoing

    def __getattr__(self, name: str):
        # Everything else (server_info, sessions, limits) is the endpoint's.
        return getattr(self.endpoint, name)

    def receive_datagram(self, data: bytes, addr: tuple, now: float) -> None:
        outgoing = self.outgoing
        if len(data) >= wire.HEADER_SIZE and (outgoing.by_offer or data[1] == wire.GET):
            # (No download under way: every datagram is the endpoint's but a GET.)
            kind, session = data[1], int.from_bytes(data[4:12], "big")
            if outgoing.claims(kind, session, addr):
                self.outgoing.receive_datagram(data, addr, now)
                return
        self.endpoint.receive_datagram(data, addr, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple]]:
        return self.endpoint.datagrams_to_send(now) + self.outgoing.datagrams_to_send(now)

    @property
    def can_send(self) -> bool:
        return self.outgoing.can_send

    def get_timer(self) -> float | None:
        timers = [t for t in (self.endpoint.get_timer(), self.outgoing.get_timer())
                  if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        self.endpoint.handle_timer(now)
        self.outgoing.handle_timer(now)

    def log_refusal(self, text: str, now: float) -> None:
        self.endpoint.log_refusal(text, now)

    def keys_in_use(self) -> frozenset:
        return self.endpoint.keys_in_use()

    def close(self) -> None:
        self.outgoing.close()
        self.endpoint.close()


def new_get_id() -> int:
    return secrets.randbits(64) or 1
