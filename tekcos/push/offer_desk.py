"""The receiving side's control plane: what happens to an OFFER before any
data flows.

An offer is prefiltered (:class:`tekcos.push.offers.OfferGate`: cookies and
rates), checked (name, size, session caps, the resume point), looked up on
the disk thread (free space, a kept checkpoint) and answered ACCEPT, busy or
REJECT.  Until a sender has echoed its token, nothing is sent to its address
beyond three times the bytes received from it (the amplification budget).
"""
from __future__ import annotations

from tekcos.hosts import host_key
from tekcos.push import wire
from tekcos.push.incoming import Incoming
from tekcos.push.offers import CHECK, RETRY, Busy, Refusal, offer_fields, owner_of
from tekcos.push.policy import Refused, admissible_name, fits, key_for

AMPLIFICATION = 3
UNANSWERED_PER_ADDRESS = 4   # accepted offers whose token has not come back yet
MAX_REASON = 300             # a refusal reason sent back or logged, in characters
TAKEOVER_SILENCE = 1.0       # a transfer silent this long may be continued by a new run
RESUMING_PER_HOST = 2        # resumed files being reopened (re-hashed) at once per host
MAX_EXAMINING = 64           # offers whose disk look (free space, checkpoint) is under way
EXAMINING = b""              # in ``offers``: the answer to this one is being worked out

# While a person is asked, the offer is repeated this often: the push starts
# within this long of the answer.  (At most 8 offers of a host wait, so its
# repeats stay under offers.OFFERS_PER_HOST.)
ASKING_RETRY = 0.5


class OfferDesk:
    """The offer half of :class:`tekcos.push.receiver.Receiver`, which
    inherits it.  It reads and writes the receiver's tables (``sessions``,
    ``offers``, ``examining``, ``budget``, ``evicted``, ``suspended``,
    ``takeover_asked``, ``outbox``) and calls back only ``_drop`` (a session
    ends).  Nothing here runs per DATA datagram."""

    def _busy(self, offer_id: int, reason: str, wait: float | None = None,
              extra: dict | None = None) -> bytes:
        wait = wait or self.limits.retry_after
        return wire.encode_json(wire.REJECT, offer_id, {
            "error": f"busy: {reason}; retry in {wait:g} s", "retry_after": wait,
            **(extra or {})})

    def _retry_evicted(self, addr: tuple, token: int) -> None:
        offer_id = self.evicted.pop((addr, token), None)
        if offer_id is not None:
            self.outbox.append((self._busy(offer_id, "too many offers at once"), addr))

    def _count_in(self, addr: tuple, n: int) -> None:
        entry = self.budget.get(addr)
        if entry is None:
            if len(self.budget) >= 4096:   # forget the oldest address
                self.budget.pop(next(iter(self.budget)))
            entry = self.budget[addr] = [0, 0]
        entry[0] += n

    def _send_unvalidated(self, data: bytes, addr: tuple) -> bool:
        entry = self.budget.get(addr)
        if entry is None or entry[1] + len(data) > AMPLIFICATION * entry[0]:
            return False
        entry[1] += len(data)
        self.outbox.append((data, addr))
        return True

    def _hello(self, addr: tuple) -> None:
        self._send_unvalidated(wire.hello_reply(self.server_info), addr)

    def _offer(self, offer_id: int, payload: bytes, addr: tuple, now: float) -> None:
        known = self.offers.get((addr, offer_id))
        if known is EXAMINING or (addr, offer_id) in self.examining:
            return   # the disk is being looked at for it: the answer follows
        if known is not None:   # our answer was lost: repeat it
            if isinstance(known, Incoming):
                self._send_unvalidated(self._accept(known), addr)
            else:
                self._send_unvalidated(known, addr)
            return
        try:
            offer = wire.decode_json(payload)
        except wire.Malformed as e:
            offer = e
        if isinstance(offer, dict):
            if not self._admit_offer(offer_id, offer, addr, now):
                return
        elif not self.gate.malformed_allowed(now):
            return   # malformed, in a flood: not even a refusal
        try:
            if not isinstance(offer, dict):
                raise offer
            checked = self._check_offer(offer_id, offer, addr, now)
        except (wire.Malformed, Refusal) as e:
            self._refuse(offer_id, addr, e, now)
            return
        if isinstance(checked, Incoming):
            self._accepted(checked)
            return
        if len(self.examining) >= MAX_EXAMINING:
            self._refuse(offer_id, addr, Busy("busy checking other offers", 1.0), now)
            return
        # The rest needs the disk (free space, a kept checkpoint): on the
        # disk thread; :meth:`poll` finishes it.  Inline workers (tests, the
        # simulation) have the answer at once.
        look, finish = checked
        self.offers[(addr, offer_id)] = EXAMINING
        self.examining[(addr, offer_id)] = (self.downloads.worker.submit(look), finish, now)
        self._examined(now)

    def _examined(self, now: float) -> None:
        """Finish the offers whose disk look is done."""
        for (addr, offer_id), (future, finish, _) in list(self.examining.items()):
            if not future.done():
                continue
            del self.examining[(addr, offer_id)]
            self.offers.pop((addr, offer_id), None)
            try:
                session = finish(future.result())
            except (Refusal, OSError) as e:
                self._refuse(offer_id, addr, e if isinstance(e, Refusal) else
                             Refusal(f"cannot check the disk: {e.strerror or e}"), now)
                continue
            self._accepted(session)

    def _accepted(self, session: Incoming) -> None:
        self.sessions[session.token] = session
        self.offers[(session.addr, session.offer_id)] = session
        self._send_unvalidated(self._accept(session), session.addr)

    def _refuse(self, offer_id: int, addr: tuple, e: Exception, now: float) -> None:
        """Answer an offer that is refused (REJECT, remembered) or busy (not
        remembered: the same offer may find a slot later)."""
        reason = str(e)[:MAX_REASON]
        self.stats["rejected"] += 1
        self.log_refusal(f"refused push from {addr[0]}: {reason}", now)
        if isinstance(e, Busy):
            # Not remembered: the same offer may find a slot later.
            self._send_unvalidated(self._busy(offer_id, reason, e.retry_after, e.extra),
                                   addr)
            return
        reply = wire.encode_json(wire.REJECT, offer_id, {"error": reason})
        if len(self.offers) < 4096:
            self.offers[(addr, offer_id)] = reply
        self._send_unvalidated(reply, addr)

    def _admit_offer(self, offer_id: int, offer: dict, addr: tuple, now: float) -> bool:
        """Whether a new offer gets a full check; the others are answered
        here (a RETRY with a cookie, or busy)."""
        verdict = self.gate.admit(offer, offer_id, addr, host_key(addr[0]), now)
        if verdict == CHECK:
            return True
        if verdict == RETRY:
            self.stats["retries"] += 1
            self._send_unvalidated(wire.encode_json(wire.RETRY, offer_id, {
                "cookie": self.gate.cookie(addr, offer_id, now)}), addr)
            return False
        self.stats["rejected"] += 1
        self._send_unvalidated(self._busy(offer_id, "too many offers from your address", 1.0),
                               addr)
        return False

    def log_refusal(self, text: str, now: float) -> None:
        if self._refusal_log.allow(now):
            if self._refusals_unlogged:
                text += f" ({self._refusals_unlogged} more refusals not logged)"
                self._refusals_unlogged = 0
            self.log(text)
        else:
            self._refusals_unlogged += 1

    def _accept(self, session: Incoming) -> bytes:
        body = {"token": session.token, "window": self.limits.window_for(session.payload),
                "payload": session.payload}
        if session.have:
            body["have"] = session.have
        return wire.encode_json(wire.ACCEPT, session.offer_id, body)

    def _check_offer(self, offer_id: int, offer: dict, addr: tuple, now: float):
        """A new session for a valid offer that fits, or Refusal saying why.
        For a file, what needs the disk is not done here: the answer is a
        pair ``(look, finish)``, where ``look()`` (for the disk thread) reads
        the free space and any kept checkpoint, and ``finish(looked)`` (on
        ours) returns the session or raises Refusal."""
        fields = offer_fields(offer)
        self._make_room(addr, now)
        limits = self.limits
        payload = min(fields["want"], limits.payload)
        token = self.new_token()
        while token in self.sessions:
            token = self.new_token()
        size = fields["size"]
        common = dict(token=token, addr=addr, host=host_key(addr[0]), offer_id=offer_id,
                      kind=fields["kind"],
                      sender=fields["sender"], size=size, sha256=fields["sha"],
                      payload=payload, total=-(-size // payload),
                      deadline=now + min(limits.handshake_timeout, limits.idle_timeout),
                      last_heard=now, limit=limits.window_for(payload), started=now)
        if fields["kind"] == "message":
            if offer.get("for") is not None:
                raise Refusal("only files can be sent to someone; say it in the chat (/msg)")
            if size > limits.max_message:
                raise Refusal(f"message larger than {limits.max_message} bytes")
            return Incoming(name="", **common)
        name = self._check_file(offer.get("name"), size)
        owner = owner_of(offer, addr)
        key = self._resume_key(fields, now, owner)
        kept = self.suspended.pop(key, None) if key else None
        downloads = self.downloads
        look_for = key if key and kept is None else ""

        def look():     # on the disk thread
            return (downloads.checkpoint(look_for) if look_for else None), downloads.space()

        def finish(looked) -> Incoming:
            checkpoint, room = looked
            wanted = offer.get("resume") is not False
            # What was kept goes on in the packet size it was received in,
            # if the sender can send that (a path that dropped larger ones).
            earlier = kept[1] if kept else checkpoint.payload \
                if checkpoint is not None and (checkpoint.sha256, checkpoint.size) == \
                (fields["sha"], fields["size"]) else 0
            if wanted and earlier != payload and 16 <= earlier <= min(fields["want"],
                                                                       limits.payload):
                common.update(payload=earlier, total=-(-size // earlier),
                              limit=limits.window_for(earlier))
            have = self._resume_point(key, kept[0] if kept else None, checkpoint, fields,
                                      common["payload"], addr, wanted, now)
            try:
                fits(room, size - have)
            except Refused as e:
                raise Refusal(str(e)) from None
            request = self._addressed(offer.get("for"), fields, name, addr, owner, now)
            # The .part file is created once the sender echoes the token: a
            # flood of offers leaves nothing on disk.
            return Incoming(name=name, key=key, have=have, cum=have // common["payload"],
                            request=request, **common)
        return look, finish

    def _addressed(self, recipient, fields: dict, name: str, addr: tuple, owner: str,
                   now: float) -> int:
        """0 for a file for the server; for one addressed to someone, the
        number of the offer its recipient accepted, or Busy (still asking)
        or Refusal (declined, unknown, over quota)."""
        if recipient is None:
            return 0
        if not isinstance(recipient, str) or not 1 <= len(recipient) <= 64:
            raise Refusal("bad recipient")
        if self.addressing is None:
            raise Refusal("this server does not keep files for people")
        verdict, detail = self.addressing.decide(
            {"for": recipient, "name": name, "size": fields["size"], "sha256": fields["sha"],
             "from": fields["sender"]}, addr[0], owner, now)
        if verdict == "wait":
            raise Busy(detail, retry_after=ASKING_RETRY, extra={"waiting": recipient})
        if verdict == "refused":
            raise Refusal(detail)
        return detail

    def _resume_key(self, fields: dict, now: float, owner: str) -> str:
        """The key naming a file offer's part file when the file is kept
        across interruptions ("" when it is not, or when a transfer of the
        same file runs and this one starts afresh); an unfinished transfer
        of the same file from the same sender that has gone silent (the
        sender killed and run again) is put away first.  The sender is its
        client id where the offer has one (a secret only its user's
        ``tekcos push`` knows, so it survives an address change and nobody
        else at the address can touch the file), else its IP address."""
        if not self.limits.resume_seconds:
            return ""
        key = key_for(fields["sha"], fields["size"], owner)
        live = next((s for s in self.sessions.values() if s.key == key), None)
        if live is not None:
            if live.finished or live.token in self.publishing or not live.cum:
                # All of it is there already, or nothing yet: this one starts afresh.
                return ""
            if now - live.last_heard < TAKEOVER_SILENCE:
                asked = self.takeover_asked.get(key)
                if asked is not None and now - asked < 4 * TAKEOVER_SILENCE:
                    # Heard from since we asked this one to wait: it is alive
                    # (the same file pushed twice at once).  Both go on.
                    del self.takeover_asked[key]
                    return ""
                # Perhaps its sender was just killed: wait and see.
                if len(self.takeover_asked) >= 4096:
                    self.takeover_asked.pop(next(iter(self.takeover_asked)))
                self.takeover_asked[key] = now
                raise Busy("a push of the same file from your host is still running",
                           retry_after=TAKEOVER_SILENCE)
            self.takeover_asked.pop(key, None)
            if live.validated:
                self.outbox.append((wire.encode_json(wire.FAIL, live.token, {
                    "error": "superseded by a newer push of the same file"}), live.addr))
            self._drop(live)
        return key

    def _resume_point(self, key: str, kept: int | None, checkpoint, fields: dict,
                      payload: int, addr: tuple, wanted: bool, now: float) -> int:
        """The bytes a file offer continues from: what this process put away
        (``kept``) or what the part file's ``checkpoint`` says, when the
        sender wants it and its host may reopen one now (else Busy)."""
        if not key:
            return 0
        have = kept
        if have is None and checkpoint is not None and (checkpoint.sha256, checkpoint.size) == \
                (fields["sha"], fields["size"]):
            have = checkpoint.have if checkpoint.payload == payload else 0
        if not wanted or not have or have % payload or have >= fields["size"]:
            return 0
        host = host_key(addr[0])
        wait = self.aborts.backoff(host, now)
        if wait:
            self._remember_suspended(key, have, payload)
            raise Busy("your resumed pushes keep being cut off", retry_after=max(1.0, wait))
        reopening = sum(1 for s in self.sessions.values()
                        if s.have and s.host == host and not s.finished
                        and (s.part is None or not s.part.opened))
        if reopening >= RESUMING_PER_HOST:
            # Reopening one re-reads what it kept on the disk thread.
            self._remember_suspended(key, have, payload)
            raise Busy("other resumed pushes from your address are starting", retry_after=1.0)
        return have

    def _make_room(self, addr: tuple, now: float) -> None:
        """Refuse (busy) when the transfers are at their caps; otherwise make
        room among the accepted offers still waiting for their token.

        Transfers that are under way are never evicted.  Waiting offers
        compete only with each other: a flood of offers from many addresses
        pushes out the oldest waiting offer of the address holding the most,
        and a real sender echoes its token long before its turn comes."""
        limits = self.limits
        active = [s for s in self.sessions.values() if not s.finished]
        waiting = [s for s in active if not s.validated]
        host = host_key(addr[0])
        if sum(1 for s in waiting if s.host == host) >= UNANSWERED_PER_ADDRESS:
            # Busy, not refused: a script that starts many pushes at once
            # is told to offer again once its first ones are under way.
            raise Busy("too many unanswered offers from your address", 1.0)
        running = len(active) - len(waiting)
        if running >= limits.max_sessions:
            raise Busy(f"{limits.max_sessions} transfers in progress")
        if sum(1 for s in active if s.validated and s.host == host) >= limits.max_per_address:
            raise Busy(f"{limits.max_per_address} transfers from your address in progress")
        if len(waiting) < limits.max_pending:
            return
        per_host: dict[str, int] = {}
        for w in waiting:
            per_host[w.host] = per_host.get(w.host, 0) + 1
        victim = min(waiting, key=lambda w: (-per_host[w.host], w.deadline))
        self.log_refusal(f"dropped an unanswered offer from {victim.addr[0]} to make room", now)
        if len(self.evicted) >= 4096:
            self.evicted.pop(next(iter(self.evicted)))
        self.evicted[(victim.addr, victim.token)] = victim.offer_id
        self._drop(victim)

    def _check_file(self, offered_name, size: int) -> str:
        """The name to store a file under, once name and size allow it."""
        try:
            return admissible_name(offered_name, size, self.limits.max_file_size)
        except Refused as e:
            raise Refusal(str(e)) from None

    def _remember_suspended(self, key: str, have: int, payload: int) -> None:
        """A part file put away in this process: its bytes kept, received
        in packets of ``payload`` bytes."""
        if len(self.suspended) >= 4096:
            self.suspended.pop(next(iter(self.suspended)))
        self.suspended[key] = (have, payload)
