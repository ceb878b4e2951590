"""This user's client id: a random secret that names their resumable pushes.

A server keeps an interrupted push's bytes under a key made from the file
and its sender.  Keyed on the sender's IP address, a laptop that moves from
Wi-Fi to cable starts over, and anyone else behind the same address (a NAT,
a shared machine) who knows the file's SHA-256 and size could take the
partial file over.  The client id is 128 random bits made once and kept in
``$XDG_CONFIG_HOME/tekcos/client-id`` (``~/.config/tekcos/client-id``),
readable by its user only, and sent with each file OFFER.
"""
from __future__ import annotations

import os
import re
import secrets

_ID = re.compile(r"^[0-9a-f]{32}$")


def id_path(environ=os.environ) -> str:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "tekcos", "client-id")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            known = f.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return known if _ID.match(known) else None


def client_id(environ=os.environ) -> str:
    """The id kept for this user, made on first use; "" where none can be
    kept (no writable home): pushes then resume by IP address, as before."""
    path = id_path(environ)
    known = _read(path)
    if known:
        return known
    made = secrets.token_hex(16)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(made + "\n")
        try:
            # Two first pushes at once: the one that links first wins, and
            # the other takes its id.
            os.link(temporary, path)
        except FileExistsError:
            known = _read(path)
            if known:
                return known
            os.replace(temporary, path)   # what is there is not an id
        return made
    except OSError:
        return ""
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass
