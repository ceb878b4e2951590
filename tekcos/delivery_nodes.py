"""Files kept here for users of other nodes, and kept elsewhere for users
here (with ``hub.federation``): the part of :class:`tekcos.delivery.Deliveries`
that talks to the channel.

A recipient on another node is a :class:`RemoteAsk` among an offer's
``asked``: its node is told of the offer, of the CODE and this node's
HOST:PORT once the file is here, or that the offer was withdrawn, and sends
the user's answer back.  An offer kept on another node is shown to a user
here under a number of ours (:class:`RemoteOffer`); a file ready there is a
:class:`~tekcos.delivery.Ready` with ``where`` set, listed in ``/files``.
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
    ``remote_offers``, ``remote_ready``, ``keep``, ``now``, ``_number`` and
    ``kept_as``, its class of kept files, it uses)."""

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
            number = self._number()
            self.remote_offers[number] = RemoteOffer(number, node, fields["num"], member, name,
                                                     sender)
            where = f"{fields['room']} " if fields.get("room") else "you "
            member.send(f"*** {sender} offers {where}{name} ({human_size(fields['size'])}), "
                        f"kept on node {node}. /accept {number} or /decline {number}")
        elif about == "ready":
            code = fields["code"]
            if code in self.remote_ready or len(self.remote_ready) >= MAX_REMOTE:
                return
            now = self.now()
            self.remote_ready[code] = self.kept_as(code, "", name, fields["size"], "", sender, "",
                                            nick, now, now + self.keep, shown_to=[member],
                                            where=fields["where"])
            member.send(f"*** {name} from {sender} is ready: "
                        f"tekcos get {code} --from {fields['where']}")
        elif about == "gone":
            for offer in list(self.remote_offers.values()):
                if (offer.node, offer.theirs, offer.session) == (node, fields["num"], member):
                    del self.remote_offers[offer.number]
                    member.send(f"*** {sender} withdrew the offer of {name}.")

    def kept_elsewhere(self, code) -> str | None:
        """HOST:PORT of the node keeping ``code``'s file, if a user here was
        told of it (``tekcos get CODE --from`` this node is sent there)."""
        ready = self.remote_ready.get(code) if isinstance(code, str) else None
        return ready.where if ready is not None and ready.expires > self.now() else None
