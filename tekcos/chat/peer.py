"""What every chat front end does the same way, whatever its wire format.

A connection adapter (telnet's :class:`~tekcos.chat.protocol.ChatProtocol`,
the web page's :class:`~tekcos.web.websocket.ChatWebSocket`, and the next
one) parses its own bytes and frames; :class:`Peer` is the rest of it:

* admission: the :class:`~tekcos.chat.server.ChatFactory` counts the
  connection against ``--max-clients`` and ``--max-per-ip`` (:meth:`enter`)
  and gives the slot back when it goes (:meth:`leave`);
* a nick within ``nick_timeout``, or the connection is told why and closed;
* complete lines into the session, ``--max-line`` checked, and the lines of
  a flood past the session's waiting room counted and dropped whole;
* the log lines for a new nick, a nick change and a disconnect, in one
  format for every front end;
* a reader that stopped reading (``--max-buffer`` of output held) dropped at
  once, the room told, the others unharmed.

The adapter hands in its ``abort`` (drop the transport without a closing
handshake) and keeps its session in ``adapter.session``.
"""
from __future__ import annotations

from typing import Callable

from twisted.logger import Logger


class Peer:
    log = Logger()

    def __init__(self, factory, adapter, host: str | None, clock, label: str = "",
                 abort: Callable[[], None] | None = None):
        self.factory = factory        # the ChatFactory: limits, admission, the hub
        self.adapter = adapter        # has .session and .peer_name()
        self.host = host              # what per-address caps count under
        self.clock = clock
        self.label = label            # "web" etc.: said in log lines
        self.abort = abort
        self.gone = False             # cut off: nothing more is read or written
        self.discarding = False       # the tail of an over-long line is still coming
        self._nick_timer = None

    # -- admission --------------------------------------------------------------------
    def enter(self) -> str | None:
        """Count this connection in, or say why it is refused (then it is
        not counted and must close)."""
        refusal = self.factory.admit(self.host)
        if refusal is None:
            self.factory.connections.add(self.adapter)
        return refusal

    def leave(self) -> None:
        self.cancel_nick_timer()
        self.factory.forget(self.adapter)

    # -- the nick timer -----------------------------------------------------------------
    def start_nick_timer(self, hint: str) -> None:
        """Close the connection if no nick is chosen in time, saying ``hint``."""
        timeout = self.factory.nick_timeout
        if timeout:
            self._nick_timer = self.clock.callLater(timeout, self._nick_timed_out, hint)

    def cancel_nick_timer(self) -> None:
        if self._nick_timer is not None and self._nick_timer.active():
            self._nick_timer.cancel()
        self._nick_timer = None

    def _nick_timed_out(self, hint: str) -> None:
        self._nick_timer = None
        session = self.adapter.session
        if session is not None:
            session.nick_time_is_up(self.factory.nick_timeout, hint)

    # -- input --------------------------------------------------------------------------
    def lines(self, lines: list[bytes]) -> None:
        """Complete lines (a trailing CR is removed) into the session."""
        limit = self.factory.max_line
        session = self.adapter.session
        for index, line in enumerate(lines):
            if session.waiting and session.full:   # the rest is dropped: count it
                session.drop(len(lines) - index)
                self.discarding = False
                return
            if self.discarding:  # the tail of an over-long line
                self.discarding = False
                continue
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > limit:
                self.too_long()
                continue
            session.line_received(line)
            if session.closed:
                return

    def too_long(self) -> None:
        self.adapter.session.error(f"line too long (over {self.factory.max_line} bytes); "
                                   "it was discarded.")

    # -- log lines ------------------------------------------------------------------------
    def log_nick(self, old: str | None, new: str) -> None:
        """The session chose its first nick (the timer stops) or changed it."""
        tag = f", {self.label}" if self.label else ""
        if old is None:
            self.cancel_nick_timer()
            self.log.info("{peer} is now {nick}{via}", peer=self.adapter.peer_name(), nick=new,
                          via=f" ({self.label})" if self.label else "")
        else:
            self.log.info("nick change {old} -> {new} ({peer}{tag})", old=old, new=new,
                          peer=self.adapter.peer_name(), tag=tag)

    def log_disconnect(self, why: str) -> None:
        # Connections that never chose a nick are not worth a log line each
        # (a crowd of them would drown the log).
        session = self.adapter.session
        if session is not None and session.nick is not None:
            self.log.info("disconnect {peer} ({nick}{tag}): {why}",
                          peer=self.adapter.peer_name(), nick=session.nick,
                          tag=f", {self.label}" if self.label else "", why=why)

    # -- cutting a connection off -----------------------------------------------------------
    def cut(self, reason: str) -> None:
        """Drop the connection at once, without a closing handshake: the
        session leaves (the room is told, never through this connection)
        and nothing more it sends is read."""
        if self.gone:
            return
        self.gone = True
        self.cancel_nick_timer()
        self.log_disconnect(reason)
        session = self.adapter.session
        if session is not None and not session.closed:
            session.set_sink(lambda data: None)
            session.connection_lost(reason)
        if self.abort is not None:
            self.abort()

    def drop_slow_reader(self) -> None:
        """It holds ``--max-buffer`` of output unread: counted, then cut."""
        if self.gone:
            return
        self.factory.dropped_slow_reader()
        self.cut("not reading: output buffer full")
