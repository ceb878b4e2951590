"""The web listener: the page, its WebSocket, uploads and ``/metrics``.

``twistd tekcos --web 8080`` (or any endpoint string, ``ssl:`` included)
adds one HTTP listener with this tree::

    /                 the page (tekcos/web/static/index.html)
    /static/NAME      its script, style sheet and icon
    /ws               chat over WebSocket (tekcos.web.websocket)
    /upload/TICKET    file uploads (tekcos.web.upload)
    /metrics          Prometheus text format (tekcos.web.metrics)
    /files/NAME       received files, only with --web-downloads
    /get/CODE         a file kept for someone, by its CODE (Range works)
    /share.svg        a QR code of the page's LAN address (tekcos.web.share)

Every answer carries a Content Security Policy without inline scripts, and
the page renders user text only as text.
"""
from __future__ import annotations

import itertools
import os
import re
from importlib import resources
from urllib.parse import quote

from autobahn.twisted.resource import WebSocketResource
from twisted.web import pages, server, static
from twisted.web.resource import Resource

from tekcos.chat.detached import Detached
from tekcos.web.http import CountedSite
from tekcos.web.metrics import MetricsResource, Sources
from tekcos.web.origins import AllowedHosts
from tekcos.web.share import ShareResource
from tekcos.web.upload import UploadRequest, UploadResource, Uploads
from tekcos.web.websocket import ChatWebSocket, websocket_factory

HTTP_IDLE = 60
MAX_MEMBERS_SHOWN = 500
MAX_FILES_SHOWN = 50       # files kept for one user, listed in the page
MAX_ROOMS_SHOWN = 100
ROOMS_DELAY = 1.0      # seconds: room list changes reach the pages at most this often
_HOST = re.compile(rb"^[A-Za-z0-9.\-\[\]:]{1,255}$")
STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "link.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "files.js": "text/javascript; charset=utf-8",
    "neighbours.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


def secure(request) -> None:
    """Headers every answer carries."""
    host = request.getHeader(b"host") or b""
    host = host if isinstance(host, bytes) else host.encode()
    sockets = b" ws://%s wss://%s" % (host, host) if _HOST.match(host) else b""
    request.setHeader(b"content-security-policy",
                      b"default-src 'none'; script-src 'self'; style-src 'self'; "
                      b"img-src 'self'; connect-src 'self'" + sockets + b"; "
                      b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"referrer-policy", b"no-referrer")
    request.setHeader(b"x-frame-options", b"DENY")


class Web:
    """What the web adapters need from the rest of the server.

    ``chat`` is the :class:`~tekcos.chat.server.ChatFactory` (hub, session
    settings, limits, admission); ``uploads`` the :class:`Uploads`.
    """

    def __init__(self, chat, uploads: Uploads | None, clock):
        self.chat = chat
        self.uploads = uploads
        self.clock = clock
        self.allowed_hosts: AllowedHosts | None = None
        self._rooms_call = None
        self.share_url: str | None = None   # the page's LAN address (web/share.py)
        # Pages whose connection dropped wait here for it (chat/detached.py).
        self.detached = Detached(clock, max_per_host=chat.max_per_ip)

    def rooms_changed(self) -> None:
        """A room came or went, or its members or topic changed: every page
        gets a fresh state within :data:`ROOMS_DELAY` (once, however many
        changes: a crowd reconnecting changes rooms thousands of times).
        Pages whose state did not change send nothing."""
        if self._rooms_call is None:
            self._rooms_call = self.clock.callLater(ROOMS_DELAY, self._tell_pages)

    def _tell_pages(self) -> None:
        self._rooms_call = None
        for connection in list(self.chat.connections):
            if isinstance(connection, ChatWebSocket):
                connection.refresh_state()

    def state(self, session) -> dict:
        hub = self.chat.hub
        room = session.room
        members = []
        more = 0
        if room is not None:
            members = sorted((m.nick for m in itertools.islice(room.members, MAX_MEMBERS_SHOWN)),
                             key=str.casefold)
            more = max(0, len(room.members) - MAX_MEMBERS_SHOWN)
        hood = hub.neighbourhood
        return {
            "nick": session.nick, "room": room.name if room is not None else None,
            "topic": room.topic if room is not None else "",
            # The rooms this user is in, in the order joined, with member counts.
            "joined": [[r.name, len(r.members)] for r in session.rooms],
            "rooms": [list(r) for r in hub.room_list()[:MAX_ROOMS_SHOWN]],
            "members": members, "more": more, "operator": session.operator,
            "scans": hood.scans_done if hood is not None else None,
            "scan_access": hood.access if hood is not None else "nobody",
            "uploads": self.uploads is not None,
            "share": self.share_url,
        }

    def files_for(self, session) -> list[dict]:
        """The files kept for ``session`` (it was told their CODE), newest
        first, each with the page's download address."""
        deliveries = getattr(self.chat.hub, "deliveries", None)
        ready = deliveries.files_for(session) if deliveries is not None else []
        return [self._file(r, deliveries) for r in reversed(ready[-MAX_FILES_SHOWN:])]

    @staticmethod
    def _file(ready, deliveries) -> dict:
        """One file of the page's list.  Only what this node keeps has a
        /get/ address here; a file on its way here says so, one kept on
        another node says how to fetch it there."""
        entry = {"name": ready.name, "size": ready.size, "sender": ready.sender,
                 "sha256": ready.sha256, "url": None}
        if not ready.where:
            entry["url"] = f"/get/{ready.code}"
        elif deliveries.coming(ready.code):
            entry["note"] = "on its way to this server"
        else:
            entry["note"] = f"kept on another node: tekcos get {ready.code} --from {ready.where}"
        return entry

    def neighbours(self) -> dict:
        hood = self.chat.hub.neighbourhood
        if hood is None:
            return {"report": None, "running": False, "access": "nobody"}
        return {"report": hood.last_report, "running": hood.running, "access": hood.access}


class _Upgrade(WebSocketResource):
    """``/ws``: once the WebSocket owns the connection, the HTTP channel it
    came through is let go (its idle timer would otherwise keep it, and the
    request, alive for hours per browser)."""

    def render(self, request):
        channel = request.channel
        transport = channel.transport
        result = super().render(request)
        if channel.transport is None and hasattr(channel, "release"):
            # A WebSocket now: admitted as a chat connection when it opens.
            channel.release()
        channel.setTimeout(None)
        if transport is not None and getattr(transport, "producer", None) is channel:
            transport.unregisterProducer()
        return result


class _Static(Resource):
    isLeaf = True

    def __init__(self, body: bytes, content_type: str):
        super().__init__()
        self.body = body
        self.content_type = content_type.encode()

    def render_GET(self, request):
        secure(request)
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"cache-control", b"no-cache")
        return self.body

    def render_HEAD(self, request):
        self.render_GET(request)
        request.setHeader(b"content-length", str(len(self.body)).encode())
        return b""


class _Secured(Resource):
    """Wraps a resource so its answers carry the security headers."""

    def __init__(self, inner: Resource):
        super().__init__()
        self.inner = inner
        self.isLeaf = getattr(inner, "isLeaf", False)

    def getChildWithDefault(self, path, request):
        return _Secured(self.inner.getChildWithDefault(path, request))

    def render(self, request):
        secure(request)
        return self.inner.render(request)


class _Files(static.File):
    """Received files, for browsers (--web-downloads): plain files only, no
    listings, no hidden (part) files, always as a download."""

    def directoryListing(self):
        return pages.notFound("Not found", "No listing.")

    def getChild(self, path, request):
        if path.startswith(b".") or not path or b"\x00" in path or b"/" in path:
            return pages.notFound("Not found", "No such file.")
        try:
            child = super().getChild(path, request)
        except (ValueError, OSError):   # a name the file system cannot hold
            return pages.notFound("Not found", "No such file.")
        target = getattr(child, "path", None)
        if target is not None and (os.path.islink(target) or
                                   os.path.dirname(os.path.realpath(target)) != self.realpath):
            # Never out of the downloads folder, whatever a link there says.
            return pages.notFound("Not found", "No such file.")
        return child

    @property
    def realpath(self) -> str:
        return os.path.realpath(self.path)

    def render_GET(self, request):
        secure(request)
        if self.isdir():
            return pages.notFound("Not found", "No listing.").render(request)
        request.setHeader(b"content-disposition", b"attachment")
        return super().render_GET(request)


class _Kept(Resource):
    """``/get/CODE``: a file kept for someone (tekcos push --for), for the
    browser user who was told its CODE; ``Range`` works, so a broken
    download resumes.  Anything else is 404."""

    def __init__(self, web: "Web", downloads_dir: str):
        super().__init__()
        self.web = web
        self.directory = os.path.realpath(downloads_dir)

    def getChild(self, path, request):
        deliveries = self.web.chat.hub.deliveries
        code = path.decode("ascii", "replace")
        ready = deliveries.lookup(code, self.web.clock.seconds()) if deliveries else None
        if ready is None and deliveries is not None and deliveries.coming(code):
            return _Later("The file is on its way to this server from the node that "
                          "keeps it. Try again in a moment.")
        if ready is None and deliveries is not None and deliveries.kept_elsewhere(code):
            return pages.notFound("Kept on another node", "This server does not keep the file. "
                                  f"Fetch it with: tekcos get {code} --from "
                                  f"{deliveries.kept_elsewhere(code)}")
        if ready is None:
            return pages.notFound("Not found", "No such file (wrong or expired code).")
        target = os.path.realpath(os.path.join(self.directory, ready.path))
        if os.path.dirname(os.path.dirname(target)) != self.directory or \
                not os.path.isfile(target):
            return pages.notFound("Not found", "The file is gone.")
        return _KeptFile(target, ready, deliveries)


class _Later(Resource):
    """503 with ``Retry-After``: the file is coming, not missing."""
    isLeaf = True
    RETRY_AFTER = 2

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, request):
        secure(request)
        request.setResponseCode(503)
        request.setHeader(b"retry-after", str(self.RETRY_AFTER).encode())
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return self.text.encode() + b"\n"


class _KeptFile(static.File):
    isLeaf = True

    def __init__(self, path: str, ready, deliveries):
        super().__init__(path, defaultType="application/octet-stream")
        self.ready = ready
        self.deliveries = deliveries

    def render_GET(self, request):
        secure(request)
        name = quote(self.ready.name, safe="")
        request.setHeader(b"content-disposition",
                          f"attachment; filename*=UTF-8''{name}".encode("ascii"))
        whole = request.getHeader(b"range") is None
        result = super().render_GET(request)
        if whole and request.method == b"GET":
            code = self.ready.code
            request.notifyFinish().addCallbacks(lambda _: self.deliveries.fetched(code),
                                                lambda _: None)
        return result


def _package_file(name: str) -> bytes:
    return resources.files("tekcos.web").joinpath("static", name).read_bytes()


class _Root(Resource):
    def getChild(self, path, request):
        return pages.notFound("Not found", "No such page.")


def build_site(web: Web, sources: Sources, downloads_dir: str | None = None,
               allowed_hosts: AllowedHosts | None = None, metrics_allow=()) -> server.Site:
    """The Site for one ``--web`` listener: its connections count with the
    chat's (``web.chat.admission``), its requests must name this server."""
    root = _Root()
    root.putChild(b"", _Static(_package_file("index.html"), "text/html; charset=utf-8"))
    assets = _Root()
    for name, content_type in STATIC.items():
        assets.putChild(name.encode(), _Static(_package_file(name), content_type))
    root.putChild(b"static", assets)
    root.putChild(b"ws", _Upgrade(websocket_factory(web, web.chat.max_line)))
    if web.uploads is not None:
        root.putChild(b"upload", _Secured(UploadResource(web.uploads)))
    root.putChild(b"metrics", MetricsResource(sources, metrics_allow))
    root.putChild(b"share.svg", ShareResource(web))
    if web.uploads is not None:
        root.putChild(b"get", _Kept(web, web.uploads.downloads.directory))
    if downloads_dir is not None:
        root.putChild(b"files", _Files(os.path.abspath(downloads_dir)))
    # Idle HTTP connections close after a minute (uploads send all along).
    site = CountedSite(root, web.chat.admission, allowed_hosts, timeout=HTTP_IDLE,
                       reactor=web.clock)
    web.allowed_hosts = allowed_hosts
    site.requestFactory = UploadRequest
    site.uploads = web.uploads
    site.web = web
    site.displayTracebacks = False
    site.noisy = False
    return site


def count_connections(connections) -> dict:
    """Connected chat users by transport, for the metrics."""
    counts = {"telnet": 0, "websocket": 0}
    for connection in connections:
        counts["websocket" if isinstance(connection, ChatWebSocket) else "telnet"] += 1
    return counts
