"""The ``--redis`` URL, where the hub's nodes meet, and the names of the
nodes (pure: parsing and checks only)."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def node_error(name: str) -> str | None:
    """Why ``name`` cannot name a node, or None."""
    if not isinstance(name, str) or not _NODE.match(name):
        return ("a node name is 1-32 letters, digits, '_', '.' or '-' "
                "(starting with a letter or digit)")
    return None


class RedisURL:
    """``redis://[USER:PASSWORD@]HOST[:PORT][/DB]`` (``rediss://`` for TLS)."""

    def __init__(self, text: str):
        parts = urlsplit(text)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("must start with redis:// or rediss://")
        if not parts.hostname:
            raise ValueError("names no host")
        self.tls = parts.scheme == "rediss"
        self.host = parts.hostname
        try:
            self.port = parts.port or 6379
        except ValueError:
            raise ValueError("has a bad port") from None
        path = parts.path.strip("/")
        if path and not path.isdecimal():
            raise ValueError("database must be a number (redis://HOST:6379/0)")
        self.db = int(path) if path else 0
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        if self.username and self.password is None:      # redis://PASSWORD@HOST
            self.username, self.password = None, self.username

    def shown(self) -> str:
        """The URL without its password, for logs."""
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.db}"
