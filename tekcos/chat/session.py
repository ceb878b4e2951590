"""One connected user: the nick prompt, decoding, flood control, commands.

A :class:`ChatSession` is a plain object.  The connection adapter
(:mod:`tekcos.chat.protocol`) hands it complete raw lines with
:meth:`line_received` and gives it a byte sink with :meth:`set_sink`; the
session answers through that sink and asks the adapter to hang up with
``peer.close(reason)``.  It is also the member object the :class:`Hub` fans
out to.
"""
from __future__ import annotations

import codecs
import re
from collections import deque
from dataclasses import dataclass

from tekcos import __version__
from tekcos.chat import commands
from tekcos.chat import irc  # noqa: F401  (registers the IRC users' commands)
from tekcos.ratelimit import TokenBucket
from tekcos.text import clean_text

UTF8 = "utf-8"
# Well-formed multi-byte UTF-8 sequences (RFC 3629, table 3-7 of Unicode).
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_ASCII = re.compile(rb"[\x00-\x7f]+")
# Charsets worth suggesting: what terminals on the LANs we serve use.  A
# single-byte charset (latin-1) decodes anything, so it proves nothing.
LIKELY_CHARSETS = (UTF8, "cp949", "shift_jis", "big5", "gbk")


def likely_charset(raw: bytes, current: str) -> str | None:
    """The charset ``raw`` (which did not decode in ``current``) is really
    in, when the bytes say so, else None.  Mangled UTF-8 (bytes lost on the
    way, as a telnet client not in binary mode does) is UTF-8: most of its
    non-ASCII bytes still form UTF-8 sequences, which by chance cp949 text
    rarely does."""
    high = len(_ASCII.sub(b"", raw))
    covered = sum(len(seq) for seq in _UTF8_SEQUENCE.findall(raw))
    if covered * 2 >= high:
        return UTF8
    for name in LIKELY_CHARSETS[1:]:
        if name == current:
            continue
        try:
            raw.decode(name)
        except UnicodeDecodeError:
            continue
        return name
    return None


@dataclass
class SessionConfig:
    """Settings shared by every session of one server."""
    rate: float = 5.0
    burst: int = 20
    motd: str = ""
    server_name: str = "tekcos"
    # Lines over the rate wait (in order) up to this many lines and bytes;
    # only beyond that are they dropped (IRC servers' "fake lag").
    paste_lines: int = 500
    paste_bytes: int = 1 << 20
    # callLater for releasing waiting lines (the chat factory sets its own).
    clock: object = None


def text_encoding(name: str) -> str | None:
    """Canonical codec name if ``name`` is a text encoding that keeps ASCII
    (so that CR, LF and command syntax survive), else None."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    try:
        if "/x\r\n".encode(info.name) != b"/x\r\n":
            return None
    except (UnicodeError, LookupError):
        return None
    return info.name


class ChatSession:
    __slots__ = ("hub", "peer", "config", "nick", "room", "last_active", "charset",
                 "bucket", "throttled", "warned_charset", "closed", "write", "_sink", "operator",
                 "telnet", "waiting", "waiting_bytes", "paced", "_release", "away", "ignored",
                 "ignored_names", "since", "ending", "rooms", "tags", "ids", "seen_ids")

    def __init__(self, hub, peer, config: SessionConfig):
        self.hub = hub
        self.peer = peer
        self.config = config
        self.nick: str | None = None
        self.room = None            # the room this user's lines go to
        self.rooms: dict = {}       # every room it is in (the hub keeps both)
        self.tags = False           # every room line tagged (the web page), not only others'
        self.ids = False            # told the newest kept line's id per room (the web page)
        # The key of a room's tag (``name_key("#dev")``) -> the last line id
        # this user saw there before a server restart: joining it replays
        # only the kept lines past it.
        self.seen_ids: dict | None = None
        now = hub.now()
        self.last_active = now
        self.charset = UTF8
        self.bucket = TokenBucket(config.rate, config.burst, now)
        self.throttled = 0          # lines dropped beyond the waiting room
        self.waiting: deque[bytes] = deque()   # lines over the rate, in order
        self.waiting_bytes = 0
        self.paced = False          # told that its lines are being paced
        self._release = None        # the timer that lets the next line through
        self.ending = False         # input is over: leave once the waiting lines went
        self.warned_charset = False
        self.closed = False
        self.operator = False
        self.since = now
        self.away = ""              # /away: shown in /who, /whois and to /msg
        self.ignored: set[str] = set()          # look keys of ignored nicks
        self.ignored_names: dict[str, str] = {}  # name key -> nick as typed
        self.telnet = False      # the client speaks telnet: a 0xFF byte must be doubled
        self._sink = peer.write
        self.write = self._sink

    # -- output -------------------------------------------------------------
    def set_sink(self, sink) -> None:
        """The adapter's current byte writer (it changes while the client is
        slow).  ``write`` stays the one hot-path attribute the hub calls."""
        self._sink = sink
        if self.charset == UTF8:   # UTF-8 never holds a 0xFF byte
            self.write = sink
        else:
            encode = self.encode
            self.write = lambda data: sink(encode(data.decode(UTF8, "replace")))

    def encode(self, text: str) -> bytes:
        """``text`` in this user's charset; for a telnet client, with every
        0xFF byte doubled (RFC 854: IAC IAC is a data byte 255), which only
        single-byte charsets such as latin-1 produce."""
        data = text.encode(self.charset, "replace")
        if self.telnet and self.charset != UTF8:
            data = data.replace(b"\xff", b"\xff\xff")
        return data

    def speaks_telnet(self) -> None:
        """The adapter saw telnet commands from this client."""
        if not self.telnet:
            self.telnet = True
            self.set_sink(self._sink)

    def send(self, text: str) -> None:
        """One line of text to this user only, in its own charset."""
        if self.hub.pending:  # keep order with room lines queued before it
            self.hub.flush()
        self._sink(self.encode(text + "\r\n"))

    def write_lines(self, lines) -> None:
        if self.hub.pending:
            self.hub.flush()
        self._sink(self.encode("".join(line + "\r\n" for line in lines)))

    def error(self, text: str) -> None:
        self.send(f"*** Error: {text}")

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        lines = [f"*** Welcome to {cfg.server_name} (tekcos {__version__}), a LAN chat hub."]
        lines += [f"*** {line}" for line in cfg.motd.splitlines()]
        lines.append("*** Choose a nick (letters, digits, _-[], up to 24 characters):")
        self.write_lines(lines)

    def quit(self, reason: str) -> None:
        """Leave the hub and ask the adapter to close, flushing what is queued."""
        if self.closed:
            return
        self.hub.leave(self, reason)
        self.closed = True
        self._forget_waiting()
        self.peer.close(reason)

    def nick_time_is_up(self, seconds: float, retry: str) -> None:
        """The adapter's nick timer fired: a connection that still has no
        nick is told why (``retry`` says how to try again) and closed."""
        if not self.closed and self.nick is None:
            self.send(f"*** No nick chosen within {seconds:g} s; closing. {retry}")
            self.quit("no nick chosen in time")

    def connection_lost(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.hub.leave(self, reason)
        self._forget_waiting()

    def input_ended(self) -> bool:
        """The client has sent all it will (``nc`` at the end of its input
        shuts its side down).  True: close now.  False: lines still wait
        their turn; the session leaves (and the adapter is asked to close)
        once they have gone out."""
        if self.waiting and not self.closed:
            self.ending = True
            return False
        return True

    def _forget_waiting(self) -> None:
        self.waiting.clear()
        self.waiting_bytes = 0
        if self._release is not None and self._release.active():
            self._release.cancel()
        self._release = None

    # -- input ---------------------------------------------------------------
    def decode(self, raw: bytes) -> str:
        try:
            text = raw.decode(self.charset)
        except UnicodeDecodeError:
            text = raw.decode(self.charset, "replace")
            if not self.warned_charset:
                self.warned_charset = True
                self.send(self._charset_hint(raw))
        if not text.isprintable():
            text = clean_text(text)
        return text

    def _charset_hint(self, raw: bytes) -> str:
        said = f"*** Your line was not valid {self.charset}; bad bytes were shown as \ufffd."
        likely = likely_charset(raw, self.charset)
        if likely is None:
            return (said + " If your terminal uses another encoding, type /charset NAME "
                    "(for example /charset latin-1).")
        if likely != self.charset:
            return said + f" It looks like {likely}: type /charset {likely}."
        # Mangled UTF-8: the text was right, bytes were lost on the way.
        return (said + " Some bytes were lost on the way; in telnet, type Ctrl-] then "
                "'mode character' (or 'toggle binary').")

    def line_received(self, raw: bytes) -> None:
        """One complete input line, without its line ending.  Over the rate
        it waits behind the others and is handled in its turn."""
        if self.closed:
            return
        now = self.hub.now()
        if self.waiting or not self.bucket.allow(now):
            self._wait(raw, now)
            return
        self._handle(raw, now)

    # -- pacing: what IRC servers call fake lag ---------------------------------
    @property
    def full(self) -> bool:
        """No more lines can wait: the next ones are dropped (the adapter
        may count them with :meth:`drop` without splitting them)."""
        cfg = self.config
        return len(self.waiting) >= cfg.paste_lines or self.waiting_bytes >= cfg.paste_bytes

    def drop(self, lines: int) -> None:
        """``lines`` lines arrived while the waiting room was full."""
        if not self.throttled:
            self.send(f"*** Too much at once: more than {self.config.paste_lines} lines are "
                      "waiting, so further lines are dropped until they have gone out.")
        self.throttled += lines
        self.hub.dropped_flood += lines

    def _wait(self, raw: bytes, now: float) -> None:
        cfg = self.config
        if len(self.waiting) >= cfg.paste_lines or \
                self.waiting_bytes + len(raw) > cfg.paste_bytes:
            self.drop(1)
            return
        self.waiting.append(raw)
        self.waiting_bytes += len(raw)
        if not self.paced:
            self.paced = True
            self.send(f"*** Pacing your lines: {cfg.rate:g} a second after a burst of "
                      f"{cfg.burst}; the rest follow in order.")
        self._arm(now)

    def _arm(self, now: float) -> None:
        if self._release is None:
            delay = self.bucket.wait(now)
            self._release = self.config.clock.callLater(delay, self._let_through)

    def _let_through(self) -> None:
        self._release = None
        if self.closed:
            return
        now = self.hub.now()
        hub = self.hub
        with hub.batch():
            while self.waiting and self.bucket.allow(now):
                raw = self.waiting.popleft()
                self.waiting_bytes -= len(raw)
                self._handle(raw, now)
                if self.closed:
                    return
        if self.waiting:
            self._arm(now)
            return
        self.paced = False
        if self.ending:
            self.quit("connection closed")
            return
        if self.throttled:
            self.send(f"*** {self.throttled} line(s) were dropped: too many were waiting.")
            self.throttled = 0

    def _handle(self, raw: bytes, now: float) -> None:
        text = self.decode(raw).strip()
        self.last_active = now
        if self.nick is None:
            self._choose_nick(text)
        elif text.startswith("/") and not text.startswith("//"):
            commands.dispatch(self, text)
        elif text:
            # "//text" sends "/text" literally.
            self.hub.say(self, text[1:] if text.startswith("//") else text)

    def _choose_nick(self, text: str) -> None:
        if text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            name = name.lower()
            if name in ("quit", "help", "charset"):
                commands.dispatch(self, text)
                return
            if name != "nick":
                self.error("choose a nick first (or /quit).")
                return
            text = arg.strip()
        error = self.hub.register(self, text)
        if error:
            self.error(error)
            self.send("*** Choose a nick:")
        else:
            self.peer.log_nick(None, self.nick)

    def choose_again(self) -> None:
        """The hub took this user's nick back (another node had it first):
        back to the nick prompt, in no room."""
        self.nick = None
        self.room = None
        self.rooms = {}
        self.send("*** Choose a nick:")

    def set_charset(self, name: str) -> str | None:
        codec = text_encoding(name)
        if codec is None:
            return (f"unknown or unsuitable charset {name!r}; try utf-8, cp949, "
                    "euc-kr, latin-1, cp1252, shift_jis or koi8-r.")
        self.charset = UTF8 if codec == "utf-8" else codec
        self.warned_charset = False
        self.set_sink(self._sink)
        return None
