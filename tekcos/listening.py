"""A listening endpoint as a service that fails with one line, not a traceback.

Shared by the chat endpoints (``tekcos.tap``) and the web listener
(``tekcos.web.service``).
"""
from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.error import CannotListenError

from tekcos import exits


class ListeningService(StreamServerEndpointService):
    """A chat endpoint whose failure to listen (port in use, no permission)
    stops the server with one line naming the endpoint, not a traceback."""

    def __init__(self, endpoint, factory, description: str):
        super().__init__(endpoint, factory)
        self.description = description
        self._raiseSynchronously = True

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            exits.cannot_listen(self.description, e)
