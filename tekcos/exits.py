"""Exit statuses: one table for every ``tekcos`` command, so scripts can
rely on the same number meaning the same thing everywhere.

====  =================  ====================================================
code  name               meaning
====  =================  ====================================================
0     OK                 done (chat: after our own /quit; push: everything
                         delivered and verified; scan: scanned)
1     REFUSED            the other side said no (nick refused, push refused
                         or failed by the server), or the scan cannot run
                         here (no route, no permission); the message says why
2     USAGE              bad command line; nothing was sent
3     UNREACHABLE        the server cannot be reached, went away or went silent
130   INTERRUPTED        push: stopped by Ctrl-C or SIGTERM; the server keeps
                         what arrived, and the same command run again
                         continues from there
====  =================  ====================================================
"""
from __future__ import annotations

import sys

OK = 0
REFUSED = 1
CANNOT = 1   # scan: same number as REFUSED (this host cannot do what was asked)
USAGE = 2
UNREACHABLE = 3
INTERRUPTED = 130   # 128 + SIGINT, as shells report it


def worst(a: int, b: int) -> int:
    """The status to report when one command did several things: an
    unreachable server outweighs a refusal, which outweighs success."""
    rank = {OK: 0, REFUSED: 1, UNREACHABLE: 2, USAGE: 3, INTERRUPTED: 4}
    return max(a, b, key=lambda code: rank.get(code, 3))


def cannot_listen(description: str, error) -> None:
    """Stop ``twistd tekcos`` with one line naming the endpoint and the
    reason (port in use, no permission) instead of a traceback.

    ``error`` is a CannotListenError (or any exception with a message)."""
    socket_error = getattr(error, "socketError", error)
    reason = getattr(socket_error, "strerror", None) or str(socket_error)
    # The real stderr: twistd has redirected sys.stderr into its log by now.
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"twistd tekcos: cannot listen on {description}: {reason}\n")
    stream.flush()
    raise SystemExit(REFUSED)


def cannot_start(reason: str) -> None:
    """Stop ``twistd tekcos`` with one line (a state file that cannot be
    used, say): status 1, no traceback."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"twistd tekcos: {reason}\n")
    stream.flush()
    raise SystemExit(REFUSED)
