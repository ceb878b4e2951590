"""Who may open one more connection: the count behind every front door.

Chat over TCP or TLS, browsers' WebSockets and plain HTTP requests all take
a descriptor and some memory, so all of them count against the server's
``--max-clients`` and against ``--max-per-ip`` for their host (an IPv4
address, an IPv6 /64: :func:`tekcos.address.host_key`).  HTTP connections
have their own lower cap per host besides, as a browser needs only a few at
once and a slowloris needs thousands.  A refusal is a sentence fit to show
the person refused; the caller says it and closes at once, so the
descriptor comes back.

Plain bookkeeping: no Twisted, no clock.
"""
from __future__ import annotations

from tekcos.hosts import host_key

CHAT, HTTP = "chat", "http"
HTTP_PER_HOST = 16      # HTTP connections in progress from one host


class Admission:
    def __init__(self, max_clients: int = 10000, max_per_ip: int = 32,
                 http_per_host: int = HTTP_PER_HOST):
        self.max_clients = max_clients
        self.max_per_ip = max_per_ip
        self.http_per_host = http_per_host
        self.open = {CHAT: 0, HTTP: 0}
        self.by_host: dict[str, dict[str, int]] = {CHAT: {}, HTTP: {}}
        self.refused = {CHAT: 0, HTTP: 0}

    @property
    def total(self) -> int:
        return self.open[CHAT] + self.open[HTTP]

    def admit(self, host: str | None, kind: str = CHAT) -> str | None:
        """Count one more ``kind`` connection from ``host`` and return None,
        or return why not (nothing counted then)."""
        refusal = self._refusal(host_key(host), kind)
        if refusal is not None:
            self.refused[kind] += 1
            return refusal
        key = host_key(host)
        self.open[kind] += 1
        if key is not None:
            counts = self.by_host[kind]
            counts[key] = counts.get(key, 0) + 1
        return None

    def _refusal(self, key: str | None, kind: str) -> str | None:
        if self.total >= self.max_clients:
            return f"the server is full ({self.max_clients} users); try again later."
        if key is None:
            return None
        chat = self.by_host[CHAT].get(key, 0)
        http = self.by_host[HTTP].get(key, 0)
        if self.max_per_ip and chat + http >= self.max_per_ip:
            return f"too many connections from {key} (at most {self.max_per_ip})."
        if kind == HTTP and self.http_per_host and http >= self.http_per_host:
            return (f"too many web requests in progress from {key} "
                    f"(at most {self.http_per_host}).")
        return None

    def release(self, host: str | None, kind: str = CHAT) -> None:
        """One ``kind`` connection from ``host`` is gone (call once per admit)."""
        self.open[kind] = max(0, self.open[kind] - 1)
        key = host_key(host)
        if key is None:
            return
        counts = self.by_host[kind]
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
        else:
            counts.pop(key, None)
