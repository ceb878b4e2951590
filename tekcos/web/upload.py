"""Files dropped onto the page: checked first, streamed to disk, announced.

An upload takes two steps.  The page asks over its WebSocket
(``{"t": "upload", "name", "size"}``) and :meth:`Uploads.ticket` applies the
rules of UDP pushes before any data moves: a nick, a safe name, the size
limit, free space after the reserve, a few uploads per address at once.
The answer is a one-time ticket; the page then POSTs the file's bytes to
``/upload/<ticket>``.  :class:`UploadRequest` looks at the ticket, the
sender's address and the Content-Length as soon as the headers are in and
closes the connection if they do not match, so nothing unasked for is ever
stored.  The body goes straight into a hidden part file through the disk
worker (hashed as it is written, never held whole in memory; reading from
the socket pauses while the disk lags), and the file appears under its name
only when complete (``link()``, never overwriting), exactly as a pushed file.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from tekcos.compat import request_gone, request_line
from tekcos.delivery import SUBDIR as ADDRESSED_DIR
from tekcos.hosts import host_key, shown
from tekcos.push.storage import DISK_BACKLOG, Refused, admissible_name, check_space, safe_name
from tekcos.web.http import CheckedRequest

TICKET_LIFETIME = 60.0
MAX_TICKETS = 256            # unredeemed tickets, all hosts
PER_ADDRESS = 4              # tickets and uploads at once from one host
MAX_ACTIVE = 16              # uploads under way, all hosts (each may hold DISK_BACKLOG)
PREFIX = b"/upload/"
BUSY = object()              # redeem(): a good ticket, but too many uploads under way


@dataclass
class Ticket:
    session: object
    host: str                # the host key (tekcos.address.host_key)
    name: str
    size: int
    expires: float
    request: int = 0         # for a person: the offer they accepted (tekcos.delivery)
    recipient: str = ""


class _Sink:
    """What twisted.web writes the request body to: the part file."""

    def __init__(self, upload: "Upload"):
        self.upload = upload

    def write(self, data: bytes) -> None:
        self.upload.received(data)

    def seek(self, *args) -> None:
        pass

    def tell(self) -> int:
        return self.upload.bytes

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        pass


class Upload:
    """One upload in progress (its ticket redeemed)."""

    def __init__(self, uploads: "Uploads", request, ticket: Ticket):
        self.uploads = uploads
        self.request = request
        self.ticket = ticket
        self.part = uploads.downloads.open_part(ticket.name, secrets.token_hex(8),
                                                subdir=ADDRESSED_DIR if ticket.request else "")
        self.error: OSError | None = None
        self.paused = False
        self.bytes = 0
        self.started = uploads.clock.seconds()
        self.done = False

    def received(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.bytes += len(data)
        try:
            self.part.append(data)
        except OSError as e:   # a full disk: reported when the body is complete
            self.error = e
            return
        if not self.paused and self.part.backlog > DISK_BACKLOG:
            self.paused = True
            self.request.channel.transport.pauseProducing()

    def poll(self) -> None:
        if self.paused and self.part.backlog <= DISK_BACKLOG // 2:
            self.paused = False
            transport = self.request.channel.transport if self.request.channel else None
            if transport is not None:
                transport.resumeProducing()


class Uploads:
    """Tickets, and the uploads under way.

    ``downloads`` is a :class:`~tekcos.push.storage.Downloads` (the push
    side's, and its disk worker, when pushes are on); ``announce(nick,
    host, name, size)`` tells
    the chat; ``max_file_size`` is the push limit.
    """

    events = Logger()

    def __init__(self, downloads, announce, max_file_size: int, clock):
        self.downloads = downloads
        self.announce = announce
        self.max_file_size = max_file_size
        self.clock = clock
        self.tickets: dict[str, Ticket] = {}
        self.active: set[Upload] = set()
        self.publishing: set[Upload] = set()
        self.delivered = 0
        self.failed = 0
        self.refused = 0
        self.bytes_received = 0
        # Files for people (tekcos.delivery.Deliveries), or None.
        self.deliveries = None

    # -- step 1: asked over the WebSocket ----------------------------------------------
    def ticket(self, session, host: str, name, size, recipient=None) -> dict:
        """``{"ok": True, "ticket", "url", "name"}`` or ``{"ok": False,
        "error"}``; for a file to a person (``recipient``, a nick or
        #room), ``{"ok": False, "waiting": recipient}`` until they accept:
        the page asks again."""
        address = host
        host = host_key(host)
        error = self._refusal(session, host, name, size)
        request = 0
        if error is None and recipient is not None:
            verdict = self._for_someone(session, address, name, size, recipient)
            if verdict[0] == "wait":
                return {"ok": False, "waiting": recipient, "error": verdict[1]}
            if verdict[0] == "refused":
                error = verdict[1]
            else:
                request = verdict[1]
        if error is not None:
            self.refused += 1
            return {"ok": False, "error": error}
        now = self.clock.seconds()
        key = secrets.token_urlsafe(18)
        self.tickets[key] = Ticket(session, host, safe_name(name), size, now + TICKET_LIFETIME,
                                   request, recipient or "")
        return {"ok": True, "ticket": key, "url": (PREFIX + key.encode()).decode(),
                "name": safe_name(name)}

    def _for_someone(self, session, address, name: str, size: int, recipient) -> tuple:
        if self.deliveries is None:
            return "refused", "this server does not keep files for people (UDP is off)"
        if not isinstance(recipient, str) or not 1 <= len(recipient) <= 64:
            return "refused", "bad recipient"
        return self.deliveries.decide(
            {"for": recipient, "name": safe_name(name), "size": size, "sha256": "",
             "from": session.nick}, address, f"web:{id(session)}", self.clock.seconds())

    def _refusal(self, session, host, name, size) -> str | None:
        if session.nick is None:
            return "choose a nick first"
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return "bad size"
        if not isinstance(name, str) or len(name) > 1024:
            return "bad name"
        try:
            admissible_name(name, size, self.max_file_size)
        except Refused as e:
            return str(e)
        self._expire()
        busy = sum(1 for t in self.tickets.values() if t.host == host) + \
            sum(1 for u in self.active if u.ticket.host == host)
        if busy >= PER_ADDRESS:
            return f"{PER_ADDRESS} uploads from your address already; wait for one to finish"
        if len(self.tickets) >= MAX_TICKETS and not self._evict_ticket(host):
            return "too many uploads at once; try again in a minute"
        try:
            check_space(self.downloads, size)
        except Refused as e:
            return str(e)
        return None

    def _evict_ticket(self, host: str) -> bool:
        """Make room for ``host``'s ticket: the oldest ticket of the host
        holding the most goes, if that is not ``host`` itself (tickets
        cost nothing until redeemed; a few hosts must not hold them all)."""
        held: dict[str, int] = {}
        for t in self.tickets.values():
            held[t.host] = held.get(t.host, 0) + 1
        top = max(held, key=held.get)
        if top == host or held[top] <= held.get(host, 0) + 1:
            return False
        key = min((k for k, t in self.tickets.items() if t.host == top),
                  key=lambda k: self.tickets[k].expires)
        del self.tickets[key]
        return True

    def forget_session(self, session) -> None:
        """A page closed: its unredeemed tickets go with it."""
        for key in [k for k, t in self.tickets.items() if t.session is session]:
            del self.tickets[key]

    def _expire(self) -> None:
        now = self.clock.seconds()
        for key in [k for k, t in self.tickets.items() if t.expires < now]:
            del self.tickets[key]

    # -- step 2: the POST ---------------------------------------------------------------
    def redeem(self, request, path: bytes, host: str | None, length):
        """The upload for a POST to ``path``, if it carries a live ticket
        for this address and exactly the announced length; else None (or
        :data:`BUSY`: the ticket is good, but :data:`MAX_ACTIVE` uploads are
        under way)."""
        self._expire()
        key = path[len(PREFIX):].split(b"?", 1)[0].decode("ascii", "replace")
        ticket = self.tickets.get(key)
        if ticket is None or ticket.host != host_key(host) or length != ticket.size:
            self.refused += 1
            return None
        if len(self.active) >= MAX_ACTIVE:
            # The ticket stays: the page may try again.
            self.refused += 1
            return BUSY
        del self.tickets[key]
        try:
            upload = Upload(self, request, ticket)
        except OSError as e:
            self.failed += 1
            self.events.warn("upload of {name!r} cannot start: {e}", name=ticket.name, e=e)
            return None
        self.active.add(upload)
        return upload

    def finish(self, upload: Upload) -> None:
        """The body is complete: publish it (on the disk worker)."""
        try:
            if upload.error is not None:
                raise upload.error
            upload.part.start_publish(None)
        except OSError as e:
            self._failed(upload, f"cannot store the file: {e.strerror or e}")
            return
        self.publishing.add(upload)
        self.poll()

    def abandon(self, upload: Upload) -> None:
        """The browser went away before the end: the part file goes."""
        if upload in self.active and not upload.done:
            upload.done = True
            self.active.discard(upload)
            self.publishing.discard(upload)
            upload.part.discard()
            self.failed += 1

    def poll(self) -> None:
        """The disk worker finished something: resume paused uploads,
        answer the ones that are published."""
        for upload in list(self.active):
            upload.poll()
        for upload in list(self.publishing):
            try:
                stored = upload.part.publish_result()
            except OSError as e:
                self.publishing.discard(upload)
                self._failed(upload, f"cannot store the file: {e.strerror or e}")
                continue
            if stored is None:
                continue
            self.publishing.discard(upload)
            self._delivered(upload, stored)

    def _delivered(self, upload: Upload, stored: str) -> None:
        upload.done = True
        self.active.discard(upload)
        self.delivered += 1
        self.bytes_received += upload.bytes
        ticket = upload.ticket
        nick = ticket.session.nick or "anonymous"
        seconds = self.clock.seconds() - upload.started
        self.events.info("received upload {name!r} ({size} bytes) from {nick}@{host}{to} in "
                         "{seconds:.1f} s, {rate:.1f} MB/s", name=stored, size=upload.bytes,
                         nick=nick, host=ticket.host,
                         to=f" for {ticket.recipient}" if ticket.recipient else "",
                         seconds=seconds,
                         rate=upload.bytes / seconds / 1e6 if seconds > 0 else 0.0)
        if ticket.request:   # kept for someone: they are told, not the lobby
            self.deliveries.delivered(ticket.request, stored, upload.bytes,
                                      self.clock.seconds(), upload.part.sha256)
        else:
            self.announce(nick, ticket.host, stored, upload.bytes)
        answer = {"ok": True, "name": stored, "size": upload.bytes,
                  "sha256": upload.part.sha256}
        if ticket.recipient:
            answer["for"] = ticket.recipient
        _answer(upload.request, 200, answer)

    def _failed(self, upload: Upload, reason: str) -> None:
        upload.done = True
        self.active.discard(upload)
        upload.part.discard()
        self.failed += 1
        self.events.warn("upload of {name!r} from {host} failed: {reason}",
                      name=upload.ticket.name, host=upload.ticket.host, reason=reason)
        _answer(upload.request, 507, {"ok": False, "error": reason})


def _answer(request, code: int, body: dict) -> None:
    if request.finished or request_gone(request):
        return
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.write(json.dumps(body, ensure_ascii=False).encode())
    request.finish()


class UploadRequest(CheckedRequest):
    """A request whose body, for ``POST /upload/<ticket>``, goes straight to
    the part file of a checked upload, and is refused before any of it is
    stored otherwise.  Other requests are handled as usual."""

    upload: Upload | None = None

    def gotLength(self, length):
        channel = self.channel
        command, path = request_line(channel)
        uploads = getattr(channel.site, "uploads", None)
        if uploads is not None and command == b"POST" and path.startswith(PREFIX):
            peer = channel.transport.getPeer() if channel.transport else None
            self.upload = uploads.redeem(self, path, shown(getattr(peer, "host", None)), length)
            if self.upload is None or self.upload is BUSY:
                # No ticket, wrong address, not the announced size, or too
                # many uploads under way: the body is never read.
                status = b"503 Service Unavailable\r\nretry-after: 5" if self.upload is BUSY \
                    else b"403 Forbidden"
                self.upload = None
                channel.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n"
                                        b"connection: close\r\n\r\n")
                channel.transport.loseConnection()
                self.content = _Discard()
                return
            self.content = _Sink(self.upload)
            return
        super().gotLength(length)

    def connectionLost(self, reason):
        if self.upload is not None:
            self.channel.site.uploads.abandon(self.upload) if self.channel else None
        super().connectionLost(reason)


class _Discard(_Sink):
    def __init__(self):
        pass

    def write(self, data: bytes) -> None:
        pass

    def tell(self) -> int:
        return 0


class UploadResource(Resource):
    """``/upload/<ticket>``: answered once the file is stored (or not)."""

    isLeaf = True

    def __init__(self, uploads: Uploads):
        super().__init__()
        self.uploads = uploads

    def render_POST(self, request):
        upload = getattr(request, "upload", None)
        if upload is None:
            request.setResponseCode(403)
            return b'{"ok": false, "error": "no upload ticket"}'
        self.uploads.finish(upload)
        return server.NOT_DONE_YET
