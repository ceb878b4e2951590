"""A listening endpoint as a service that fails with one line, not a traceback.

Shared by the chat endpoints (``tekcos.tap``) and the web listener
(``tekcos.web.service``).
"""
from __future__ import annotations

import re

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from tekcos import exits
from tekcos.compat import raise_synchronously

_log = Logger(namespace="tekcos")
_ANY_TCP = re.compile(r"tcp(6?):(\d+)(:interface=\\:\\:)?:backlog=\d+$")


def describe(endpoint: str) -> str:
    """An endpoint string as the operator reads it: the ones a bare port
    number becomes (tekcos.tap.endpoint_string) are "TCP port N (IPv4 and
    IPv6)"; any other is shown as written."""
    match = _ANY_TCP.match(endpoint)
    if match is None:
        return endpoint
    return f"TCP port {match.group(2)}" + (" (IPv4 and IPv6)" if match.group(1) else " (IPv4)")


class _Announced:
    """An endpoint whose ``listen`` also logs where it listens."""

    def __init__(self, endpoint, announce):
        self.endpoint = endpoint
        self.announce = announce

    def listen(self, factory):
        return self.endpoint.listen(factory).addCallback(self.announce)


class ListeningService(StreamServerEndpointService):
    """A chat endpoint whose failure to listen (port in use, no permission)
    stops the server with one line naming the endpoint, not a traceback;
    once it listens, the log says where (``what`` says what for)."""

    def __init__(self, endpoint, factory, description: str, what: str = "chat",
                 on_listen=None):
        """``on_listen(port)`` runs once it listens (the port's ``getHost()``
        says where)."""
        super().__init__(_Announced(endpoint, self._listening), factory)
        self.description = description
        self.what = what
        self.on_listen = on_listen
        raise_synchronously(self)

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            exits.cannot_listen(describe(self.description), e)

    def _listening(self, port):
        where = describe(self.description)
        address = port.getHost()
        if self.what == "the web page" and getattr(address, "port", None):
            import socket
            where += f": http://{socket.gethostname()}:{address.port}/"
        _log.info("{what} listening on {where}", what=self.what, where=where)
        if self.on_listen is not None:
            self.on_listen(port)
        return port
