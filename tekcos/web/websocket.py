"""The WebSocket adapter: one browser user as a chat member.

:class:`ChatWebSocket` is to a browser what
:class:`~tekcos.chat.protocol.ChatProtocol` is to telnet: it feeds complete
lines to a :class:`~tekcos.chat.session.ChatSession` and is that session's
peer (``write``, ``close``, ``log_nick``).  The same factory admits it
(``--max-clients``, ``--max-per-ip``), the same ``--max-line``, rate limits
and ``--max-buffer`` apply, and the server's shutdown says goodbye to it.

Frames, both directions text:

* browser -> server: a chat line as typed (``/commands`` included); or
  ``\\x00`` followed by a JSON object for the page's own requests
  (``{"t": "upload", "name", "size"}``, ``{"t": "neighbors"}``,
  ``{"t": "seen", "epoch", "ids": {"#dev": 123}}`` after a server restart).
* server -> browser: chat output as a telnet user gets it (lines ending in
  CRLF), except that every room line is tagged with its room
  (``[14:02] #dev <alice> hi``), the current room's too, and a line
  ``\\x1f#dev 123`` (not shown) gives the newest kept line's id; or ``\\x00`` +
  JSON: ``hello`` (the numbering of line ids, first), ``state`` (nick,
  room, joined, rooms, members), ``upload`` (a
  ticket or a refusal), ``neighbors`` (the last scan).  Chat output never
  contains NUL (control characters are removed from everything users
  send), so the two cannot be confused.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import txaio

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from tekcos.address import local_host
from tekcos.chat.names import name_key
from tekcos.chat.peer import Peer
from tekcos.chat.session import UTF8, ChatSession
from tekcos.compat import discard_queued, forget_option_copies, make_writer, options_on_class
from tekcos.hosts import shown

CONTROL = "\x00"
STATE_DELAY = 0.25       # seconds: state updates are coalesced
MAX_FRAGMENTS = 64       # frames one message may come in
# What the page's own requests cost from the flood-control budget that chat
# lines draw on (a line costs 1): a state answer lists up to 100 rooms and
# 500 members; a ticket may check the disk.
COSTS = {"state": 2.0, "upload": 2.0, "neighbors": 1.0, "resume": 1.0, "seen": 1.0}
MAX_SEEN = 64            # rooms a page may say it has seen lines of
EXCESS_FLOOD = 200       # requests refused in a row before the connection is closed


_HANDSHAKE = ("http_headers", "http_request_data", "http_response_data", "http_status_line",
              "http_request_params", "_wskey")


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 5.2) holding ``payload``
    (valid UTF-8).  Uncompressed even where permessage-deflate was agreed,
    which RFC 7692 allows."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's Origin must name the host it connected to (no other site
    may open a chat in its visitors' names).  Clients that send no Origin
    are not browsers and are let in like telnet clients."""
    if origin is None:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class ChatWebSocket(WebSocketServerProtocol):
    # Not ``log``: autobahn's protocol logs every frame through that name.
    events = Logger()

    def __init__(self):
        super().__init__()
        self.session: ChatSession | None = None
        self.host: str | None = None
        self.chat_peer: Peer | None = None   # from onOpen: admission, nick timer, lines, logs
        self._state_call = None
        self._last_state = None
        self._out = None
        self._frames = 0
        self._refused_in_a_row = 0
        self._handed_over = False      # a newer connection took the session

    # -- opening -------------------------------------------------------------------
    def onConnect(self, request):
        origin, host = request.headers.get("origin"), request.headers.get("host")
        hosts = self.factory.web.allowed_hosts
        allowed = hosts.origin_allowed(origin, host) if hosts is not None \
            else same_origin(origin, host)
        if not allowed:
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "cross-origin WebSocket refused")
        return None

    def onOpen(self):
        # The handshake is over: what autobahn kept of it is not needed
        # (a crowd of idle browsers must stay cheap).
        for name in _HANDSHAKE:
            if name in self.__dict__:
                self.__dict__[name] = None
        forget_option_copies(self)
        web = self.factory.web
        self.host = shown(getattr(self.transport.getPeer(), "host", None))
        self.chat_peer = Peer(web.chat, self, self.host, web.clock, "web", abort=self._abort)
        refusal = self.chat_peer.enter()
        if refusal is not None:
            self._send_text(f"*** Error: {refusal}\r\n")
            self.chat_peer.gone = True
            self.sendClose(code=1000, reason=refusal[:100])
            return
        # Frames are made here and written through the chat's counting
        # writer, not autobahn's sendMessage: one place decides what a
        # client that does not read may hold (--max-buffer).
        self._out = make_writer(self.transport, web.chat.max_buffer, self.chat_peer.drop_slow_reader)
        self.session = ChatSession(web.chat.hub, self, web.chat.session_config)
        # The page sorts lines into one view per room: every room line
        # carries its room's tag, the current room's too.
        self.session.tags = True
        # It also keeps the newest line id of each room (chat/hub.py's
        # id_marker), and sends them back after a server restart.
        self.session.ids = True
        # The numbering of those ids, before any of them.
        self.send_control({"t": "hello", "epoch": web.chat.hub.history_epoch})
        self.chat_peer.start_nick_timer("Reload the page and choose a nick.")
        self.session.start()

    def peer_name(self) -> str:
        return self.host or "?"

    @property
    def _gone(self) -> bool:
        return self.chat_peer is not None and self.chat_peer.gone

    # -- input ----------------------------------------------------------------------
    def onMessageBegin(self, isBinary):
        self._frames = 0
        super().onMessageBegin(isBinary)

    def onMessageFrameBegin(self, length: int):
        # Empty continuation frames cost no bytes: the size limits never
        # see them, so their number is capped.
        self._frames += 1
        if self._frames > MAX_FRAGMENTS:
            self.chat_peer.cut(f"a message of over {MAX_FRAGMENTS} frames")
            return
        super().onMessageFrameBegin(length)

    def onMessage(self, payload: bytes, isBinary: bool):
        session = self.session
        if session is None or session.closed:
            return
        if isBinary:
            if self._spend(1.0):
                session.error("binary frames are not understood here.")
            return
        if payload[:1] == b"\x00":
            self._control(payload[1:])
            return
        with self.factory.web.chat.hub.batch():
            self.chat_peer.lines(payload.split(b"\n"))
        if not session.closed:
            self._state_soon()

    def _spend(self, cost: float) -> bool:
        """Whether the session's flood-control budget allows a request of
        ``cost``.  A page that keeps asking past it is not a page: after
        :data:`EXCESS_FLOOD` refusals in a row it is disconnected."""
        session = self.session
        if session.bucket.allow(session.hub.now(), cost):
            self._refused_in_a_row = 0
            return True
        session.hub.dropped_flood += 1
        self._refused_in_a_row += 1
        if self._refused_in_a_row >= EXCESS_FLOOD:
            self.chat_peer.cut("excess flood of page requests")
        return False

    def _control(self, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):
            request = None
        kind = request.get("t") if isinstance(request, dict) else None
        # The page's requests draw on the budget that chat lines draw on.
        if not self._spend(COSTS.get(kind, 1.0) if isinstance(kind, str) else 1.0):
            return
        if not isinstance(request, dict):
            self.session.error("malformed request from the page.")
            return
        web = self.factory.web
        if kind == "upload" and web.uploads is None:
            self.send_control({"t": "upload", "ok": False, "error": "uploads are off here"})
        elif kind == "upload":
            self.send_control({"t": "upload", **web.uploads.ticket(self.session, self.host,
                                                                     request.get("name"),
                                                                     request.get("size"),
                                                                     request.get("for"))})
        elif kind == "neighbors":
            self.send_control({"t": "neighbors", **web.neighbours()})
        elif kind == "files":
            self.send_control({"t": "files", "files": web.files_for(self.session)})
        elif kind == "state":
            self._last_state = None
            self._send_state()
        elif kind == "resume":
            self._resume(request.get("token"))
        elif kind == "seen":
            self._seen(request.get("epoch"), request.get("ids"))

    def _seen(self, epoch, ids) -> None:
        """Before its nick, a page that lost its server (a restart) says
        which line of each room it saw last; joining those rooms again then
        replays only the kept lines past it.  Taken only against the same
        numbering of lines (``epoch``), and only before the nick."""
        session = self.session
        hub = self.factory.web.chat.hub
        if session.nick is not None or epoch != hub.history_epoch or not isinstance(ids, dict):
            return
        seen = {}
        for tag, line_id in list(ids.items())[:MAX_SEEN]:
            if isinstance(tag, str) and len(tag) <= 200 and type(line_id) is int \
                    and 0 <= line_id < 1 << 53:
                seen[name_key(tag)] = line_id
        session.seen_ids = seen

    def _resume(self, token) -> None:
        """Take over the session ``token`` names (its connection dropped, or
        is about to be found dead): same nick, same rooms, and the lines it
        missed, sent now.  Only a connection that has no nick yet may."""
        web = self.factory.web
        fresh = self.session
        taken = web.detached.resume(token, self) if fresh.nick is None else None
        if taken is None:
            self.send_control({"t": "resume", "ok": False})
            return
        session, missed = taken
        fresh.closed = True                # never registered: nothing to leave
        self.chat_peer.cancel_nick_timer()
        self.session = session
        self.events.info("{peer} is back as {nick} (web, resumed)", peer=self.host,
                         nick=session.nick)
        self.send_control({"t": "resume", "ok": True, "nick": session.nick})
        if missed:
            self.write(missed)
        self._last_state = None
        self._send_state()

    def superseded(self) -> None:
        """A newer connection of this user took the session over: this one
        goes without ending it."""
        self._handed_over = True
        self.session = None
        self._cancel_timers()
        self.sendClose(code=1000, reason="continued on another connection")

    # -- output: the session's peer ------------------------------------------------
    def write(self, data: bytes) -> None:
        """The session's byte sink: one text frame per write, counted
        against ``--max-buffer`` and sent at once when nothing is queued
        (the speaker sees its own line before the room's fan-out ends)."""
        if self._gone or self._out is None or self.state != self.STATE_OPEN:
            return
        session = self.session
        if session.charset != UTF8:
            data = data.decode(session.charset, "replace").encode(UTF8)
        self._out(text_frame(data))
        self._state_soon()

    def _send_text(self, text: str) -> None:
        if self._out is None:
            self.sendMessage(text.encode(UTF8), isBinary=False)
        elif self.state == self.STATE_OPEN:
            self._out(text_frame(text.encode(UTF8)))

    def send_control(self, message: dict) -> None:
        if not self._gone:
            self._send_text(CONTROL + json.dumps(message, ensure_ascii=False))

    def close(self, reason: str) -> None:
        """Flush what is queued, then close (the session has already left)."""
        self._cancel_timers()
        self.chat_peer.log_disconnect(reason)
        self.sendClose(code=1000, reason=reason[:100])

    kind = "the web page"

    @property
    def local_host(self) -> str | None:
        """This server's address as the client reached it."""
        return local_host(self.transport) if self.transport is not None else None

    def log_nick(self, old: str | None, new: str) -> None:
        self.chat_peer.log_nick(old, new)
        if old is None:
            # Told to this page only: with it, a new connection continues
            # this session (chat/detached.py).
            self.send_control({"t": "token", "token": self.factory.web.detached.issue(self.session)})

    # -- the page's view of the hub ----------------------------------------------------
    def refresh_state(self) -> None:
        """Send the page a fresh state soon (if it changed)."""
        self._state_soon()

    def _state_soon(self) -> None:
        if self._state_call is None and not self._gone:
            self._state_call = self.factory.web.clock.callLater(STATE_DELAY, self._send_state)

    def _send_state(self) -> None:
        self._state_call = None
        session = self.session
        if session is None or session.closed or self._gone:
            return
        message = json.dumps({"t": "state", **self.factory.web.state(session)},
                             ensure_ascii=False)
        # Only a hash is kept: a crowd of idle browsers must stay cheap.
        if hash(message) != self._last_state:
            self._last_state = hash(message)
            self._send_text(CONTROL + message)

    # -- closing ---------------------------------------------------------------------
    def _cancel_timers(self) -> None:
        if self.chat_peer is not None:
            self.chat_peer.cancel_nick_timer()
        if self._state_call is not None and self._state_call.active():
            self._state_call.cancel()
        self._state_call = None

    def _abort(self) -> None:
        """Drop the connection at once (the peer was cut off)."""
        self._cancel_timers()
        self.dropConnection(abort=True)

    def onClose(self, wasClean: bool, code, reason):
        self._cancel_timers()
        uploads = self.factory.web.uploads
        if uploads is not None and self.session is not None:
            uploads.forget_session(self.session)
        session = self.session
        web = self.factory.web
        if session is not None and not session.closed:
            text = "connection closed" if wasClean else "connection lost"
            if not self._gone and not web.chat.hub.closing and web.detached.hold(session,
                                                                                  self.host):
                self.events.info("{peer} dropped; {nick} is held (web)", peer=self.host,
                                 nick=session.nick)
            else:
                self.chat_peer.log_disconnect(text)
                session.connection_lost(text)
                web.detached.gone(session)
        if session is not None and session.closed:
            web.detached.gone(session)
        if self.chat_peer is not None and (self.session is not None or self._handed_over):
            self.chat_peer.leave()
        if self.transport is not None:
            discard_queued(self.transport)


def websocket_factory(web, max_line: int) -> WebSocketServerFactory:
    """The factory for ``/ws``; ``web`` is the :class:`~tekcos.web.site.Web`."""
    # autobahn logs every frame at debug level: the server's log is for people.
    txaio.set_global_log_level("warn")
    factory = WebSocketServerFactory()
    factory.web = web
    # JSON escaping can make a line up to 6 times longer: past that it is
    # not a line we would take anyway, and the frame is refused unread.
    limit = max(64 * 1024, max_line * 6 + 1024)
    factory.setProtocolOptions(maxFramePayloadSize=limit, maxMessagePayloadSize=limit,
                               openHandshakeTimeout=10, closeHandshakeTimeout=3,
                               autoPingInterval=30, autoPingTimeout=30)
    factory.protocol = options_on_class(factory, ChatWebSocket)
    return factory
