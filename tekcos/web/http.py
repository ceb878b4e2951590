"""Plain HTTP connections, counted and timed like every other front door.

:class:`CountedSite` admits each TCP connection through the chat's
:class:`~tekcos.admission.Admission` (``--max-clients``, ``--max-per-ip``
and a lower per-host cap for HTTP) before any byte is read; one over the
caps gets a 503 and is closed at once.  :class:`CountedChannel` gives a
request's headers :data:`HEADER_DEADLINE` seconds to arrive (whatever
trickles in meanwhile, as Apache's ``mod_reqtimeout`` does) and a body at
least :data:`MIN_BODY_RATE` bytes a second over each :data:`BODY_CHECK`
seconds, so a slowloris holds a descriptor for seconds, not forever.  A
connection that becomes a WebSocket gives its HTTP slot back; the
WebSocket is then admitted as a chat connection.
"""
from __future__ import annotations

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web import http, server

from tekcos.admission import HTTP

HEADER_DEADLINE = 10.0
BODY_CHECK = 10.0
MIN_BODY_RATE = 1024


class _Refused(Protocol):
    def __init__(self, reason: str):
        self.reason = reason

    def connectionMade(self) -> None:
        body = f"{self.reason}\n".encode()
        self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\n"
                             b"content-type: text/plain; charset=utf-8\r\n"
                             b"retry-after: 10\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.loseConnection()


class CountedChannel(http.HTTPChannel):
    log = Logger()
    admitted: tuple | None = None    # (admission, host) until released
    _deadline = None
    _received = 0
    _mark = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        self._arm(HEADER_DEADLINE, self._headers_late)

    def dataReceived(self, data: bytes) -> None:
        self._received += len(data)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._mark = self._received
        self._arm(BODY_CHECK, self._check_body)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._disarm()
        super().allContentReceived()

    def requestDone(self, request) -> None:
        super().requestDone(request)
        if self.persistent and self.transport is not None and not self.requests:
            self._arm(HEADER_DEADLINE, self._headers_late)   # the next request's

    def connectionLost(self, reason) -> None:
        self._disarm()
        self.release()
        super().connectionLost(reason)

    def release(self) -> None:
        """Give the HTTP slot back (once): the connection closed, or it is
        a WebSocket now."""
        self._disarm()
        if self.admitted is not None:
            admission, host = self.admitted
            self.admitted = None
            admission.release(host, HTTP)

    # -- deadlines -----------------------------------------------------------------
    def _arm(self, delay: float, what) -> None:
        self._disarm()
        self._deadline = self.callLater(delay, what)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        self._cut("headers not complete in time")

    def _check_body(self) -> None:
        self._deadline = None
        request = self.requests[-1] if self.requests else None
        upload = getattr(request, "upload", None)
        paused = upload is not None and upload.paused   # our disk is the slow one
        if not paused and self._received - self._mark < MIN_BODY_RATE * BODY_CHECK:
            self._cut("request body too slow")
            return
        self._mark = self._received
        self._arm(BODY_CHECK, self._check_body)

    def _cut(self, why: str) -> None:
        site = getattr(self, "site", None)
        if site is not None:
            site.cut_slow += 1
        if self.transport is not None:
            self.transport.abortConnection()


class CountedSite(server.Site):
    """A Site whose connections are admitted by ``admission`` (see the
    module) and whose requests must name this server (``allowed_hosts``)."""

    protocol = CountedChannel

    def __init__(self, resource, admission, allowed_hosts=None, **kwargs):
        super().__init__(resource, **kwargs)
        self.admission = admission
        self.allowed_hosts = allowed_hosts
        self.cut_slow = 0          # connections cut by a deadline

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None)
        refusal = self.admission.admit(host, HTTP)
        if refusal is not None:
            return _Refused(refusal)
        channel = super().buildProtocol(addr)
        channel.admitted = (self.admission, host)
        return channel


class CheckedRequest(server.Request):
    """A request whose Host must name this server (see
    :mod:`tekcos.web.origins`); otherwise 421 Misdirected Request, with the
    setting that would allow it."""

    def process(self):
        hosts = getattr(self.channel.site, "allowed_hosts", None) if self.channel else None
        header = self.getHeader(b"host")
        if hosts is not None and not hosts.host_allowed(header):
            self.setResponseCode(421)
            self.setHeader(b"content-type", b"text/plain; charset=utf-8")
            self.setHeader(b"connection", b"close")
            shown = header if isinstance(header, str) else (header or b"").decode("ascii", "replace")
            self.write(f"This server does not answer to the name {shown[:100]!r}; its "
                       "operator can add it to web-origins.\n".encode())
            self.finish()
            return
        super().process()
