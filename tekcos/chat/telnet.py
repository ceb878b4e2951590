"""Telnet for the chat: commands removed from the input, negotiations answered.

A :class:`TelnetFilter` is created for a connection once it has sent an IAC
byte (plain ``nc`` clients and scripts never get one, and are never sent
one).  :meth:`TelnetFilter.feed` returns the text without telnet commands,
and collects what to answer in :attr:`TelnetFilter.replies` and what happened
in :attr:`TelnetFilter.events`.

Two layers, so that hostile input cannot make the reactor spin:

* Splitting text from commands is done by regular expressions, in C: a
  chunk full of 0xFF bytes costs a few passes of the regex engine, not a
  Python loop per byte.  A command split across reads is held back until
  the rest arrives.
* The commands themselves (at most one of each distinct kind per chunk)
  go through :class:`twisted.conch.telnet.Telnet`, which implements the
  option negotiation of RFC 854/855 (the Q method: never answer a request
  that changes nothing, so negotiation cannot loop).

What is answered: ``DO TIMING-MARK`` always with ``WILL TIMING-MARK``
(RFC 860; the Debian client discards all output after Ctrl-C until then);
``DO ECHO``/``DO SUPPRESS-GO-AHEAD`` with ``WILL`` (RFC 857/858): character
mode, where the server echoes and edits the line; ``BINARY`` both ways
(RFC 856): without it a client in its default mode turns the bytes of
UTF-8 text that look like its control keys (0x85, 0x8F, 0x9A and others,
the seventh bit cleared) into telnet commands; any other option is refused
(``WONT``/``DONT``); ``AYT`` gets a visible answer.

The server offers ``WILL BINARY``, ``DO BINARY``, ``WILL ECHO`` and ``WILL
SGA`` (:meth:`TelnetFilter.offer`) once, to a client that starts option
negotiation (Windows telnet, PuTTY) and to one whose first line ends in CR
LF (Debian's telnet, which negotiates nothing by itself on a port other
than 23); the adapter decides when.  A client that ignores the offer stays
as it was.
"""
from __future__ import annotations

import re

from twisted.conch import telnet as conch

from tekcos.compat import CapturingTelnet
from tekcos.ratelimit import TokenBucket

IAC = 255
ECHO, SGA, TIMING_MARK, BINARY = conch.ECHO, conch.SGA, b"\x06", b"\x00"

# One telnet command: an incomplete command at the very end of the chunk
# (group 1, tried first), IAC IAC (a literal 0xFF, group 2), a negotiation
# (IAC WILL/WONT/DO/DONT option) or a two-byte command with a meaning
# (group 3: what the negotiation layer sees), a subnegotiation (IAC SB ...
# IAC SE, with IAC IAC inside, bounded; we support none, so it is dropped),
# or any other two bytes.
_MAX_SUB = 1024
_COMMAND = re.compile(
    # Tried first: at the very end, the start of a command held for later.
    rb"(?=\xff(?:[\xfb-\xfe]|\xfa(?:[^\xff]|\xff\xff){0,%d}\xff?)?\Z)(\xff[\x00-\xff]*)"
    rb"|\xff(?:(\xff)"
    rb"|([\xfb-\xfe][\x00-\xff]|[\xf1-\xf9])"
    rb"|\xfa(?:[^\xff]|\xff\xff){0,%d}\xff\xf0"
    rb"|[\x00-\xf0\xfa])" % (_MAX_SUB, _MAX_SUB),
    re.S)

INTERRUPT, ARE_YOU_THERE, ECHO_ON, ECHO_OFF = "interrupt", "are-you-there", "echo-on", "echo-off"
FLOOD = "flood"
# A telnet client sends a handful of commands at a time (a few negotiations
# when it connects, two for each Ctrl-C).  Commands are budgeted per
# connection (a burst of 64, then 10 a second); a read that goes over the
# budget is an attack and is dropped whole, which costs two counts instead of
# parsing and answering thousands of commands.
COMMAND_BURST, COMMAND_RATE = 64, 10.0


class _Negotiator(CapturingTelnet):
    """conch's option negotiation, writing into a list instead of a socket."""

    def __init__(self, replies: list, events: list):
        super().__init__(replies.append)
        self.replies = replies
        self.events = events
        self.commandMap[conch.AYT] = lambda arg: events.append(ARE_YOU_THERE)
        self.commandMap[conch.IP] = lambda arg: events.append(INTERRUPT)
        self.offered = False
        self.binary = False        # the client sends 8-bit data as it is


    def enableLocal(self, option: bytes) -> bool:
        if option == ECHO:
            self.events.append(ECHO_ON)
        return option in (ECHO, SGA, TIMING_MARK, BINARY)

    def disableLocal(self, option: bytes) -> None:
        if option == ECHO:
            self.events.append(ECHO_OFF)

    def enableRemote(self, option: bytes) -> bool:
        if option == BINARY:
            self.binary = True
            return True
        return False

    def disableRemote(self, option: bytes) -> None:
        if option == BINARY:
            self.binary = False

    def offer_character_mode(self) -> None:
        """WILL BINARY, DO BINARY, WILL ECHO and WILL SGA, once, each
        unless the client asked for it already."""
        if self.offered:
            return
        self.offered = True
        # The Deferreds say whether the client agreed; enableLocal and
        # enableRemote have already recorded it, and a refusal is an answer.
        # conch negotiates one direction of an option at a time: DO BINARY
        # goes once the client has answered WILL BINARY.
        for option in (BINARY, ECHO, SGA):
            state = self.getOptionState(option)
            if state.us.state == "no" and not state.us.negotiating:
                asked = self.will(option)
                if option == BINARY:
                    asked.addBoth(self._ask_binary)
                asked.addErrback(lambda failure: None)
        if self.getOptionState(BINARY).us.state == "yes":
            self._ask_binary(None)

    def _ask_binary(self, result) -> None:
        state = self.getOptionState(BINARY)
        if state.him.state == "no" and not state.him.negotiating and not state.us.negotiating:
            self.do(BINARY).addErrback(lambda failure: None)

    def telnet_DO(self, option: bytes) -> None:
        super().telnet_DO(option)
        if option == TIMING_MARK:
            # A timing mark is a one-off answer, not a state: the next DO
            # TIMING-MARK (the next Ctrl-C) must be answered again.  It says
            # nothing about character mode (line-mode clients send it).
            self.getOptionState(option).us.state = "no"
        elif option in (ECHO, SGA):
            self.offer_character_mode()

    def telnet_WILL(self, option: bytes) -> None:
        super().telnet_WILL(option)   # refused with DONT, but BINARY
        self.offer_character_mode()


class TelnetFilter:
    """Per-connection telnet state for a client that speaks telnet."""

    __slots__ = ("replies", "events", "_held", "_negotiator", "_budget")

    def __init__(self, now: float = 0.0):
        self.replies: list[bytes] = []
        self.events: list[str] = []
        self._held = b""
        self._negotiator = _Negotiator(self.replies, self.events)
        self._budget = TokenBucket(COMMAND_RATE, COMMAND_BURST, now)

    def feed(self, data: bytes, now: float = 0.0) -> bytes:
        """``data`` without telnet commands (IAC IAC becomes one 0xFF byte).
        Afterwards :attr:`replies` holds the bytes to send back and
        :attr:`events` what the connection should act on; the caller takes
        and clears both."""
        if self._held:
            data = self._held + data
            self._held = b""
        if b"\xff" not in data:
            return data
        escaped = data.count(b"\xff\xff")
        commands = data.count(b"\xff") - 2 * escaped
        if not commands:
            # Only escaped 0xFF bytes: bytes.replace pairs them left to right
            # exactly as a telnet parser does.
            return data.replace(b"\xff\xff", b"\xff")
        if not self._budget.allow(now, commands):
            self.events.append(FLOOD)
            self._held = b""
            return b""
        # One pass of the regex engine; the pieces are sorted out with C-level
        # slicing, so a read full of commands costs no Python loop per command.
        parts = _COMMAND.split(data)
        self._held = (parts[-4] or b"") if len(parts) > 1 else b""   # group 1 of the last match
        # In order of first appearance; a flood of one command is answered
        # once per read, not once per copy.
        commands = dict.fromkeys(parts[3::4])
        commands.pop(None, None)
        commands.pop(b"\xf1", None)   # NOP
        for command in commands:
            self._negotiator.dataReceived(b"\xff" + command)
        del parts[3::4]
        del parts[1::3]
        return b"".join(filter(None, parts))

    def offer(self) -> None:
        """Offer binary and character mode (once; see the module doc)."""
        self._negotiator.offer_character_mode()

    @property
    def binary(self) -> bool:
        """The client agreed to send 8-bit data as it is (RFC 856)."""
        return self._negotiator.binary

    def take(self) -> tuple[bytes, list[str]]:
        """The replies and events collected so far (then forgotten)."""
        replies, events = b"".join(self.replies), self.events[:]
        self.replies.clear()
        self.events.clear()
        return replies, events
