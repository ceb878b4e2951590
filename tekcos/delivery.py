"""Files addressed to people: asked first, kept for them, fetched with a CODE.

``tekcos push FILE --for bob`` (or ``--for '#room'``) makes an offer that
reaches bob in the chat before any data flows::

    *** alice offers you report.pdf (3.0 MB). /accept 7 or /decline 7

The push waits (its offer is answered "busy, waiting for bob to accept"
and repeated every second) until bob accepts, declines or leaves.  Once the
server has the whole file, everyone who was asked (and is still the same
session) is told how to fetch it, with a one-time CODE of 128 random bits::

    *** report.pdf from alice is ready: tekcos get CODE --from HOST:PORT

A CODE works from any address, for ``keep_days``, for that file only; after
that the file and its row go.  The CODE is shown to the sessions asked and
to nobody else (a later user taking the nick bob gets nothing).

:class:`Deliveries` is a plain object.  It reaches the chat through the
hub (``member(nick)``, ``room_members(name)``, each session's ``send``) and
the database through the store (``add_delivery``, ``mark_fetched``,
``remove_delivery``); the push receiver asks it :meth:`decide` for every
addressed offer.  Time comes in as ``now``.

With other nodes (``hub.federation``), a recipient on another node is asked
through the channel: its node shows the offer under a number of its own,
sends the answer back, and is told the CODE and this node's address
(``node_where``) once the file is here; the file stays on this node, and
``tekcos get`` fetches it from here.
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field

from tekcos.delivery_nodes import NodeDeliveries, RemoteAsk, RemoteOffer
from tekcos.hosts import host_port
from tekcos.text import human_size

ASKING, ACCEPTED, DECLINED, WITHDRAWN = "asking", "accepted", "declined", "withdrawn"
OFFER_SILENCE = 30.0       # an offer not repeated this long: its sender gave up
ANSWERED_KEPT = 60.0       # a declined or withdrawn offer answers re-offers this long
ACCEPTED_KEPT = 86400.0    # an accepted offer whose push stopped may resume this long
MAX_REQUESTS = 1000        # offers waiting for an answer, all senders
MAX_ASKING_PER_HOST = 8    # of those, from one sender host
SUBDIR = ".for"            # where addressed files are kept (hidden from /files/)
_CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def is_code(value) -> bool:
    """Whether ``value`` has the shape of a CODE (see :func:`new_code`)."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None


def new_code() -> str:
    """128 random bits, URL-safe; never starting with "-", which would make
    the printed ``tekcos get CODE`` read as an option."""
    while True:
        code = secrets.token_urlsafe(16)
        if not code.startswith("-"):
            return code


@dataclass(eq=False)
class Request:
    number: int
    key: tuple
    sender: str
    host: str
    name: str
    size: int
    sha256: str
    recipient: str
    asked: list
    state: str = ASKING
    heard: float = 0.0          # when its sender last offered it
    answered: float = 0.0
    answered_why: str = ""


@dataclass(eq=False)
class Ready:
    """A file kept for its recipients."""
    code: str
    path: str                   # relative to the downloads directory
    name: str
    size: int
    sha256: str
    sender: str
    host: str
    recipient: str
    created: float
    expires: float
    fetched: int = 0
    shown_to: list = field(default_factory=list)   # sessions that were told its CODE
    where: str = ""             # HOST:PORT of the node keeping it, when not this one
    node: str = ""              # the node that keeps it (or kept it, for one brought here)


class Deliveries(NodeDeliveries):
    subdir = SUBDIR     # where the receiver stores what it takes for people
    kept_as = Ready

    def __init__(self, hub, store, now, downloads: str, keep_days: float = 7.0,
                 quota: int = 2 << 30, udp_port: int = 9000, node_where: str = ""):
        self.hub = hub
        self.store = store
        self.now = now
        self.downloads = downloads
        self.keep = keep_days * 86400
        self.quota = quota
        self.udp_port = udp_port
        self.requests: dict[int, Request] = {}
        self.by_key: dict[tuple, Request] = {}
        self.ready: dict[str, Ready] = {}
        self._next_number = 1
        # Where users of other nodes fetch what is kept here (HOST:PORT).
        self.node_where = node_where
        self.remote_offers: dict[int, RemoteOffer] = {}   # ours -> kept on another node
        self.remote_ready: dict[str, Ready] = {}          # CODE -> kept on another node
        self.offered_here: dict[tuple, bool] = {}        # (node, its number): offers shown here

    def restore(self, rows) -> None:
        """Files kept before a restart (their sessions are gone: the CODEs
        the recipients were told still work)."""
        for row in rows:
            self.ready[row.code] = row

    # -- the push side -------------------------------------------------------------------
    def decide(self, offer: dict, host: str, owner: str, now: float) -> tuple[str, object]:
        """For an offer addressed to someone: ("wait", text), ("refused",
        reason) or ("accepted", number)."""
        recipient = offer["for"]
        # A web upload's SHA-256 is known only once it has arrived: its name stands in.
        key = (owner, offer["sha256"] or f"name:{offer['name']}", offer["size"],
               recipient.casefold())
        request = self.by_key.get(key)
        if request is not None:
            request.heard = now
            if request.state == ASKING:
                return "wait", f"waiting for {recipient} to accept"
            if request.state == ACCEPTED:
                return "accepted", request.number
            # Declined or withdrawn: said again to every repeat of the offer
            # (a lost answer), until tick() forgets it.
            return "refused", request.answered_why
        refusal = self._refusal(recipient, host, offer["size"])
        if refusal:
            return "refused", refusal
        asked = self._recipients(recipient)
        if isinstance(asked, str):
            return "refused", asked
        sender = offer.get("from") or "someone"
        number = self._number()
        request = Request(number, key, sender, host, offer["name"], offer["size"],
                          offer["sha256"], recipient, asked, heard=now)
        self.requests[number] = request
        self.by_key[key] = request
        where = f"{recipient} " if recipient.startswith("#") else "you "
        for session in asked:
            if isinstance(session, RemoteAsk):
                self._tell_node(session, "offer", num=number, frm=sender, name=offer["name"],
                                size=offer["size"], room=recipient if recipient[0] == "#" else "")
                continue
            session.send(f"*** {sender} offers {where}{offer['name']} "
                         f"({human_size(offer['size'])}). /accept {number} or /decline {number}")
        return "wait", f"waiting for {recipient} to accept"

    def _refusal(self, recipient: str, host: str, size: int) -> str | None:
        if sum(1 for r in self.requests.values() if r.host == host and r.state == ASKING) \
                >= MAX_ASKING_PER_HOST:
            return f"{MAX_ASKING_PER_HOST} offers from your address are waiting for an answer"
        if len(self.requests) >= MAX_REQUESTS:
            return "too many offers are waiting for an answer; try again later"
        kept = sum(r.size for r in self.ready.values() if r.host == host)
        if kept + size > self.quota:
            return (f"over the quota: {human_size(kept)} kept for people from your address, "
                    f"at most {human_size(self.quota)}")
        return None

    def _recipients(self, recipient: str):
        """The sessions to ask (users of other nodes as :class:`RemoteAsk`),
        or why there are none."""
        federation = self.hub.federation
        if recipient.startswith("#"):
            members = self.hub.room_members(recipient[1:])
            remote = federation.members_of(recipient[1:]) if federation is not None else []
            if members is None and not remote:
                return f"no such room: {recipient}"
            asked = list(members or ()) + [RemoteAsk(r.nick, r.node) for r in remote]
            return asked or f"nobody is in {recipient}"
        member = self.hub.member(recipient)
        if member is not None:
            return [member]
        remote = federation.user(recipient) if federation is not None else None
        if remote is not None:
            return [RemoteAsk(remote.nick, remote.node)]
        return f"no such nick: {recipient} (not connected)"

    def _number(self) -> int:
        while self._next_number in self.requests or self._next_number in self.remote_offers:
            self._next_number += 1
        number = self._next_number
        self._next_number = self._next_number % 9999 + 1
        return number

    def delivered(self, number: int, stored: str, size: int, now: float,
                  sha256: str | None = None) -> None:
        """The whole file is on the server, at ``stored`` (relative to the
        downloads directory): a CODE, a row, and the recipients told.
        ``sha256``: what it turned out to be (a web upload's)."""
        request = self.requests.get(number)
        if request is None:
            return
        self._forget(request)
        code = new_code()
        ready = Ready(code, stored, request.name, size, sha256 or request.sha256,
                      request.sender, request.host, request.recipient, now, now + self.keep)
        self.ready[code] = ready
        if self.store is not None:
            self.store.add_delivery(ready)
        for session in request.asked:
            if isinstance(session, RemoteAsk):
                ready.shown_to.append(session)
                self._tell_node(session, "ready", num=request.number, frm=request.sender, name=request.name,
                                size=size, code=code, where=self.node_where)
            elif not getattr(session, "closed", False):
                ready.shown_to.append(session)
                session.send(self._ready_line(ready, self.where(session)))
        self._tell_sender(request, f"{request.recipient} can fetch {request.name} now "
                                   f"(kept {self.keep / 86400:g} days)")

    def where(self, session) -> str:
        """HOST:PORT to fetch from, as ``session`` reaches this server."""
        return host_port(getattr(session.peer, "local_host", None) or "HOST", self.udp_port)

    def _tell_sender(self, request, text: str) -> None:
        """``text`` to the sender of an offer or a kept file, if connected
        under that name from the address it pushed from."""
        member = self.hub.member(request.sender)
        if member is not None and getattr(member.peer, "host", None) == request.host:
            member.send(f"*** {text}")

    # -- the chat side -------------------------------------------------------------------------
    def answer(self, session, number_text: str, accept: bool) -> str | None:
        """/accept N or /decline N: None, or why not."""
        if not number_text.isdecimal():
            return f"usage: /{'accept' if accept else 'decline'} NUMBER (from the offer)"
        remote = self.remote_offers.get(int(number_text))
        if remote is not None and remote.session is session:
            # Kept on another node: the answer goes there.
            del self.remote_offers[remote.number]
            federation = self.hub.federation
            if federation is not None:
                federation.file_answer(remote.node, remote.theirs, session.nick, accept)
            self._said(session, remote.name, remote.sender, accept)
            return None
        request = self.requests.get(int(number_text))
        if request is None or session not in request.asked:
            return f"no offer {number_text} for you"
        if request.state != ASKING:
            return f"offer {number_text} was answered already"
        self._answered(request, session.nick, accept)
        self._said(session, request.name, request.sender, accept)
        return None

    @staticmethod
    def _said(session, name: str, sender: str, accept: bool) -> None:
        if accept:
            session.send(f"*** Accepted {name} from {sender}: you will be told "
                         "when it is ready to fetch.")
        else:
            session.send(f"*** Declined {name} from {sender}.")

    def _answered(self, request: Request, who: str, accept: bool) -> None:
        request.state = ACCEPTED if accept else DECLINED
        request.answered = self.now()
        if accept:
            self._tell_sender(request, f"{who} accepted {request.name}")
        else:
            request.answered_why = f"{who} declined {request.name}"
            self._tell_sender(request, request.answered_why)

    def remote_answer(self, node: str, number: int, nick: str, accept: bool) -> None:
        """A user of ``node`` answered our offer ``number``."""
        request = self.requests.get(number)
        if request is None or request.state != ASKING:
            return
        # The nick as its node announced it, and as we asked it.
        if any(isinstance(a, RemoteAsk) and (a.node, a.nick) == (node, nick)
               for a in request.asked):
            self._answered(request, nick, accept)

    def session_gone(self, session) -> None:
        """A session left: offers only it could answer are withdrawn."""
        for request in list(self.requests.values()):
            if session in request.asked:
                request.asked.remove(session)
                if request.state == ASKING and not request.asked:
                    request.state = WITHDRAWN
                    request.answered = self.now()
                    request.answered_why = f"{request.recipient} left before answering"
        for ready in self.ready.values():
            if session in ready.shown_to:
                ready.shown_to.remove(session)
        for number, offer in list(self.remote_offers.items()):
            if offer.session is session:
                del self.remote_offers[number]
        # A file kept elsewhere stays known (its CODE works here until it
        # expires, as a file kept here does), without the session.
        for ready in self.remote_ready.values():
            if session in ready.shown_to:
                ready.shown_to.remove(session)

    def files_for(self, session) -> list[Ready]:
        """What ``session`` may fetch (was told the CODE of); files kept on
        another node have ``where``."""
        return [r for r in (*self.ready.values(), *self.remote_ready.values())
                if session in r.shown_to]

    # -- the download side --------------------------------------------------------------------
    def lookup(self, code, now: float) -> Ready | None:
        if not is_code(code):
            return None
        ready = self.ready.get(code)
        if ready is None or ready.expires <= now:
            return None
        return ready

    def fetched(self, code: str) -> None:
        ready = self.ready.get(code)
        if ready is None:
            return
        ready.fetched += 1
        if self.store is not None:
            self.store.mark_fetched(code)
        self._tell_sender(ready, f"{ready.recipient} has fetched {ready.name}")
        if ready.node:      # brought from another node: its sender is there
            self._tell_fetched(ready)

    # -- time -----------------------------------------------------------------------------------
    def tick(self, now: float) -> int:
        """Withdraw offers whose sender went silent, forget answered ones,
        remove expired files (file and row); returns how many files went."""
        for request in list(self.requests.values()):
            silent = now - request.heard
            if request.state == ASKING and silent > OFFER_SILENCE:
                for session in request.asked:
                    if isinstance(session, RemoteAsk):
                        self._tell_node(session, "gone", num=request.number,
                                        frm=request.sender, name=request.name)
                        continue
                    session.send(f"*** {request.sender} withdrew the offer of {request.name}.")
                self._forget(request)
            elif request.state == ACCEPTED and silent > ACCEPTED_KEPT:
                self._forget(request)       # the push never came back to finish
            elif request.state in (DECLINED, WITHDRAWN) and now - request.answered > ANSWERED_KEPT:
                self._forget(request)
        # Expired, or removed by the operator (then it no longer counts
        # against its sender's quota either).
        gone = [r for r in self.ready.values() if r.expires <= now
                or not os.path.exists(os.path.join(self.downloads, r.path))]
        for code in [c for c, r in self.remote_ready.items() if r.expires <= now]:
            del self.remote_ready[code]
        for ready in gone:
            del self.ready[ready.code]
            try:
                os.unlink(os.path.join(self.downloads, ready.path))
            except OSError:
                pass
            if self.store is not None:
                self.store.remove_delivery(ready.code)
        return len(gone)

    def _forget(self, request: Request) -> None:
        self.requests.pop(request.number, None)
        self.by_key.pop(request.key, None)
