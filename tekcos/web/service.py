"""``--web``: the web listener as a service of the server."""
from __future__ import annotations

import socket

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.logger import Logger

from tekcos.address import lan_address
from tekcos.listening import ListeningService
from tekcos.push.receiver import Received
from tekcos.push.storage import Downloads
from tekcos.push.worker import DiskWorker
from tekcos.web.metrics import Sources
from tekcos.web.origins import AllowedHosts
from tekcos.web.share import page_url, qr_text
from tekcos.web.site import Web, build_site, count_connections
from tekcos.web.upload import Uploads


_log = Logger(namespace="tekcos")


class _StopWorker(Service):
    """Waits for the uploads' disk worker on shutdown (part files removed)."""

    def __init__(self, worker: DiskWorker):
        self.worker = worker

    def stopService(self):
        super().stopService()
        self.worker.close()


class _EndHeld(Service):
    """On shutdown, sessions held for pages that dropped end with the rest."""

    def __init__(self, detached):
        self.detached = detached

    def stopService(self):
        super().stopService()
        self.detached.stop()


def build_web(values: dict, chat_factory, receiver, reactor):
    """The Site of the web listener and, where it made one, the uploads'
    disk worker (to close on shutdown; with pushes on, uploads use theirs),
    from the resolved settings.

    ``chat_factory`` is the chat's factory (hub, limits, admission),
    ``receiver`` the push service's Receiver (its storage, its counters) or
    None."""
    hub = chat_factory.hub

    def announce(nick: str, host: str, name: str, size: int) -> None:
        # Announced and listed (/files) exactly as a pushed file.
        hub.push_received(Received("file", nick, (host, 0), name, size))

    if receiver is not None:
        # One disk worker per directory: uploads queue behind pushes, in
        # order, on the thread that already writes there.
        downloads = receiver.downloads
        worker = None
    else:
        worker = DiskWorker(threaded=True)
        downloads = Downloads(values["downloads"], worker=worker)
    uploads = Uploads(downloads, announce, values["max-file-size"], reactor)
    uploads.deliveries = hub.deliveries
    downloads.worker.on_wake(lambda: reactor.callFromThread(uploads.poll))
    web = Web(chat_factory, uploads, reactor)
    hub.on_rooms_changed = web.rooms_changed
    sources = Sources(hub, lambda: count_connections(chat_factory.connections),
                      endpoint=receiver, uploads=uploads,
                      neighbourhood=lambda: hub.neighbourhood)
    hosts = AllowedHosts(values["web-origins"], socket.gethostname(), now=reactor.seconds)
    site = build_site(web, sources, values["downloads"] if values["web-downloads"] else None,
                      hosts, values["metrics-allow"])
    return site, worker


def share(web, port, description: str) -> None:
    """Once the page listens: its LAN address, logged with a QR code for
    phones, and shown by the page's Share item."""
    number = getattr(port.getHost(), "port", None)
    if not number:
        return
    web.share_url = page_url(lan_address(), number, secure=description.startswith("ssl:"))
    if web.share_url is not None:
        _log.info("open {url} on a phone (or scan this):\n{qr}", url=web.share_url,
                  qr=qr_text(web.share_url))


def web_service(description: str, values: dict, chat_factory, receiver,
                reactor) -> MultiService:
    """The page, its WebSocket, uploads and /metrics on ``description``."""
    site, worker = build_web(values, chat_factory, receiver, reactor)
    top = MultiService()
    if worker is not None:   # its own (no pushes); else the push service closes it
        _StopWorker(worker).setServiceParent(top)
    _EndHeld(site.web.detached).setServiceParent(top)
    ListeningService(endpoints.serverFromString(reactor, description), site,
                     description, what="the web page",
                     on_listen=lambda port: share(site.web, port, description)
                     ).setServiceParent(top)
    return top
