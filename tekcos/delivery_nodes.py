"""Files kept here for users of other nodes, and kept elsewhere for users
here (with ``hub.federation``): the part of :class:`tekcos.delivery.Deliveries`
that talks to the channel.

A recipient on another node is a :class:`RemoteAsk` among an offer's
``asked``: its node is told of the offer, of the CODE and this node's
HOST:PORT once the file is here, or that the offer was withdrawn, and sends
the user's answer back.  An offer kept on another node is shown to a user
here under a number of ours (:class:`RemoteOffer`); a file ready there is a
:class:`~tekcos.delivery.Ready` with ``where`` set, listed in ``/files``.
Where this node can (``relays``), it brings such a file here and keeps it
under the same CODE (:mod:`tekcos.push.relay`); its users are told to fetch it
here once it is, or sent to the keeping node if it cannot be brought.
"""
from __future__ import annotations

from dataclasses import dataclass

from tekcos.text import human_size

MAX_REMOTE = 1000          # offers and files kept elsewhere that we remember


@dataclass(eq=False)
class RemoteAsk:
    """A recipient on another node, asked through the channel."""
    nick: str
    node: str
    closed: bool = False


@dataclass(eq=False)
class RemoteOffer:
    """An offer kept on another node, shown to a user here as ``number``."""
    number: int
    node: str
    theirs: int                 # its number on that node
    session: object
    name: str
    sender: str


class NodeDeliveries:
    """Mixed into :class:`tekcos.delivery.Deliveries` (whose ``hub``,
    ``remote_offers``, ``remote_ready``, ``offered_here``, ``keep``,
    ``now``, ``_number``, ``ready``, ``store``, ``where``, ``_tell_sender``
    and ``kept_as``, its class of kept files, it uses).  ``relays``, where
    set (:class:`tekcos.push.relay.Relays`), brings files kept elsewhere
    here."""

    relays = None

    def _tell_node(self, ask: RemoteAsk, about: str, **fields) -> None:
        federation = self.hub.federation
        if federation is not None:
            federation.file(ask.node, about, ask.nick, **fields)

    def remote_file(self, node: str, about: str, nick: str, fields: dict) -> None:
        """What ``node`` says of a file it keeps for ``nick`` here: an offer
        to answer, a CODE to fetch it with, or an offer withdrawn."""
        member = self.hub.member(nick)
        if member is None or member.nick != nick:     # gone, or another user now
            return
        sender, name = fields["frm"], fields["name"]
        if about == "offer":
            if len(self.remote_offers) >= MAX_REMOTE:
                return
            # Only a file offered here may be said ready here: no node can
            # have this one fetch what none of its users was asked about.
            offered = self.offered_here
            offered[(node, fields["num"])] = True
            while len(offered) > MAX_REMOTE:
                del offered[next(iter(offered))]
            number = self._number()
            self.remote_offers[number] = RemoteOffer(number, node, fields["num"], member, name,
                                                     sender)
            where = f"{fields['room']} " if fields.get("room") else "you "
            member.send(f"*** {sender} offers {where}{name} ({human_size(fields['size'])}), "
                        f"kept on node {node}. /accept {number} or /decline {number}")
        elif about == "ready":
            if (node, fields["num"]) in self.offered_here:
                self._remote_ready(node, member, fields)
        elif about == "fetched":
            self._fetched_there(node, fields)
        elif about == "gone":
            for offer in list(self.remote_offers.values()):
                if (offer.node, offer.theirs, offer.session) == (node, fields["num"], member):
                    del self.remote_offers[offer.number]
                    member.send(f"*** {sender} withdrew the offer of {name}.")

    def _remote_ready(self, node: str, member, fields: dict) -> None:
        code, name, sender = fields["code"], fields["name"], fields["frm"]
        kept = self.ready.get(code)
        if kept is not None:            # brought here already, for another member
            if member not in kept.shown_to:
                kept.shown_to.append(member)
            member.send(self._ready_line(kept, self.where(member)))
            return
        known = self.remote_ready.get(code)
        if known is None:
            if len(self.remote_ready) >= MAX_REMOTE:
                return
            now = self.now()
            known = self.remote_ready[code] = self.kept_as(
                code, "", name, fields["size"], "", sender, "", member.nick, now,
                now + self.keep, where=fields["where"], node=node)
            bringing = self.relays is not None and self.relays.bring(code, known.where)
        else:
            bringing = self.coming(code)
        if member not in known.shown_to:
            known.shown_to.append(member)
        if bringing:
            member.send(f"*** {name} from {sender} is kept on node {node}; "
                        f"bringing it to this server...")
        else:
            member.send(self._ready_line(known, known.where))

    @staticmethod
    def _ready_line(ready, where: str) -> str:
        return f"*** {ready.name} from {ready.sender} is ready: tekcos get {ready.code} --from {where}"

    def coming(self, code) -> bool:
        """Whether ``code``'s file is on its way here from the node keeping it."""
        return self.relays is not None and self.relays.coming(code)

    def relayed(self, code: str, stored: str, sha256: str) -> bool:
        """``code``'s file is now kept here too, at ``stored`` (relative to
        the downloads directory): its users fetch it here from now on.
        False when it is no longer wanted (it expired meanwhile)."""
        remote = self.remote_ready.pop(code, None)
        if remote is None:
            return False
        now = self.now()
        ready = self.kept_as(code, stored, remote.name, remote.size, sha256, remote.sender, "",
                             remote.recipient, now, remote.expires, node=remote.node)
        self.ready[code] = ready
        if self.store is not None:
            self.store.add_delivery(ready)
        for session in remote.shown_to:
            if not getattr(session, "closed", False):
                ready.shown_to.append(session)
                session.send(self._ready_line(ready, self.where(session)))
        return True

    def relay_failed(self, code: str, reason: str) -> None:
        """``code``'s file could not be brought here: its users are sent to
        the node that keeps it."""
        remote = self.remote_ready.get(code)
        if remote is None:
            return
        for session in remote.shown_to:
            if not getattr(session, "closed", False):
                session.send(f"*** {remote.name} could not be brought to this server "
                             f"({reason}); fetch it where it is kept:")
                session.send(self._ready_line(remote, remote.where))

    def _tell_fetched(self, ready) -> None:
        federation = self.hub.federation
        if federation is not None:
            federation.file(ready.node, "fetched", ready.sender, frm=ready.recipient,
                            name=ready.name, code=ready.code)

    def _fetched_there(self, node: str, fields: dict) -> None:
        """A file kept here, brought to ``node``, was fetched there: as if
        here (its sender is told)."""
        ready = self.ready.get(fields["code"])
        if ready is not None and any(isinstance(s, RemoteAsk) and s.node == node
                                     for s in ready.shown_to):
            self.fetched(ready.code)

    def brought_away(self, code: str) -> None:
        """A node of the hub took a copy of ``code``'s file for its users
        (a relay's GET): the sender hears of it, not yet of a fetch."""
        ready = self.ready.get(code)
        if ready is not None:
            self._tell_sender(ready, f"{ready.name} is on the node of {ready.recipient} now; "
                                     "you will be told when it is fetched there")

    def kept_elsewhere(self, code) -> str | None:
        """HOST:PORT of the node keeping ``code``'s file, if a user here was
        told of it (``tekcos get CODE --from`` this node is sent there)."""
        if self.coming(code):
            return None             # asked again in a moment, it will be here
        ready = self.remote_ready.get(code) if isinstance(code, str) else None
        return ready.where if ready is not None and ready.expires > self.now() else None
