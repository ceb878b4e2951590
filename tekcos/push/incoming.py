"""What the receiving side keeps per push: its limits, a transfer under way
(:class:`Incoming`) and the report of one that completed (:class:`Received`).
Plain records, shared by :mod:`tekcos.push.receiver` (the data path) and
:mod:`tekcos.push.offer_desk` (the offers)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tekcos.push import wire


@dataclass
class Limits:
    max_file_size: int = 4 << 30
    max_message: int = 4096
    max_sessions: int = 32        # transfers under way (their sender echoed the token)
    max_per_address: int = 8      # of those, from one address
    max_pending: int = 256        # accepted offers waiting for their token to come back
    retry_after: float = 2.0      # what a busy answer suggests, in seconds
    max_buffered: int = 64 << 20  # out-of-order data held for all transfers, in bytes
    idle_timeout: float = 30.0
    handshake_timeout: float = 5.0   # an accepted offer whose token never comes back
    linger: float = 10.0          # how long a finished session answers duplicates
    window: int = 8192            # packets of DEFAULT_PAYLOAD bytes (about 11 MiB per push)
    payload: int = wire.MAX_PAYLOAD   # the largest a sender may use (it picks by its path)
    resume_seconds: float = 24 * 3600   # how long an interrupted file is kept; 0: not at all

    def window_for(self, payload: int) -> int:
        """``window`` packets of ``DEFAULT_PAYLOAD`` bytes, counted in
        packets of ``payload`` bytes: the same memory whatever the size."""
        return max(1, min(self.window, self.window * wire.DEFAULT_PAYLOAD // payload))


@dataclass
class Received:
    """What the endpoint reports when a push completes (for the chat)."""
    kind: str
    sender: str
    address: tuple
    name: str          # as stored (files) or "" (messages)
    size: int
    text: str = ""
    request: int = 0   # the offer number of a file addressed to someone (tekcos.delivery)
    seconds: float = 0.0   # from the offer to the verified file
    resumed: int = 0       # bytes kept from an earlier attempt
    sha256: str = ""       # of the whole file, as verified (files)


@dataclass(eq=False)
class Incoming:
    token: int
    addr: tuple
    offer_id: int
    host: str                     # what per-address caps count under (address.host_key)
    kind: str
    sender: str
    name: str
    size: int
    sha256: str
    payload: int
    total: int
    part: object = None
    message: bytearray = field(default_factory=bytearray)
    hasher: object = field(default_factory=hashlib.sha256)
    cum: int = 0                  # next packet expected in order
    bits: int = 0                 # bit j: packet cum + j is buffered
    buffer: dict = field(default_factory=dict)
    validated: bool = False
    ack_trigger: int = -1
    result: bytes | None = None   # DONE or FAIL, repeated on duplicates
    deadline: float = 0.0
    key: str = ""                 # names a resumable file's part (tekcos.push.resume)
    last_heard: float = 0.0
    have: int = 0                 # bytes an earlier attempt left, continued from
    limit: int = 0                # the window last advertised, in packets
    request: int = 0              # the accepted offer, for a file addressed to someone
    started: float = 0.0          # when the offer was taken

    @property
    def finished(self) -> bool:
        return self.result is not None
