"""Every private attribute of Twisted and autobahn that tekcos relies on.

Each is used only here, each has a canary in ``tests/test_compat.py`` that
fails with the release that changes it, and setup.cfg keeps ``twisted`` and
``autobahn`` below their next major release, so that a new release cannot
break an install silently.  What each buys is said where it is defined.
"""
from __future__ import annotations

from twisted.conch import telnet as conch
from twisted.internet import tcp


# -- twisted.application.internet.StreamServerEndpointService ----------------------
def raise_synchronously(service) -> None:
    """``service``'s failure to listen raises from privilegedStartService
    (a port in use stops the server with one line, not a logged failure
    while it runs on without the port)."""
    service._raiseSynchronously = True


# -- twisted.web.http.HTTPChannel, twisted.web.server.Request ----------------------
def request_line(channel) -> tuple[bytes, bytes]:
    """The method and path of the request a channel is reading, known before
    its body (an upload's ticket is checked before a byte of it is read)."""
    return (getattr(channel, "_command", b"") or b"", getattr(channel, "_path", b"") or b"")


def request_gone(request) -> bool:
    """The client of ``request`` left (nothing is answered to nobody)."""
    return request._disconnected


# -- twisted.internet.udp.Port ----------------------------------------------------
def connect_udp(port, host: str, number: int, sockaddr: tuple) -> None:
    """Connect a UDP ``port`` to ``sockaddr`` (an IPv6 4-tuple with the
    zone of a link-local address, which Twisted's ``connect`` cannot pass),
    so that ``port.write(data)`` sends there as after ``port.connect``."""
    if port._connectedAddr:
        raise RuntimeError("already connected")
    port.socket.connect(sockaddr)
    port._connectedAddr = (host, number)


# -- twisted.conch.telnet.Telnet ----------------------------------------------------
class CapturingTelnet(conch.Telnet):
    """conch's option negotiation (the Q method of RFC 1143), whose output
    goes to ``sink`` instead of a transport: the chat filters telnet
    commands out of its input itself, and only the answers are conch's."""

    def __init__(self, sink):
        super().__init__()
        self._sink = sink

    def _write(self, data: bytes) -> None:
        self._sink(data)


# -- twisted.internet.tcp.Connection: output the kernel has not taken yet ------------
def tcp_connection(transport):
    """The TCP connection whose send buffer holds this transport's output
    (TLS transports wrap one), or None when there is none to look at."""
    inner = getattr(transport, "transport", None)
    for candidate in (transport, inner):
        if isinstance(candidate, tcp.Connection) and hasattr(candidate, "_tempDataLen"):
            return candidate
    return None


def queued_bytes(connection) -> int:
    """Bytes written to a TCP connection that the kernel has not taken yet."""
    return len(connection.dataBuffer) - connection.offset + connection._tempDataLen


def discard_queued(transport) -> None:
    """Drop what a closed connection still held for its client.

    Twisted keeps an aborted connection's unsent output in the transport
    object, which our protocol and session keep alive in a reference cycle
    until the garbage collector's next full pass: with clients that never
    read, that is up to max-buffer each, long after they are gone."""
    connection = tcp_connection(transport)
    if connection is not None:
        connection.dataBuffer = b""
        connection.offset = 0
        connection._tempDataBuffer = []
        connection._tempDataLen = 0


def make_writer(transport, max_buffer: int, overflow):
    """A writer for ``transport`` that counts everything queued for it.

    A write that would leave more than ``max_buffer`` bytes waiting calls
    ``overflow()`` instead.  On a plain TCP connection with nothing queued it
    sends at once: a plain ``transport.write`` always queues and sends on the
    reactor's next turn, which costs two epoll_ctl calls and a reactor pass
    per write, most of the work of a room fan-out.  Transports without a TCP
    connection to inspect (test transports) get ``transport.write``; their
    output is counted from the moment the transport pauses us.
    """
    buffered = transport.write
    connection = tcp_connection(transport)
    if connection is None:
        return buffered
    direct = connection is transport and getattr(transport, "socket", None) is not None
    send = transport.socket.send if direct else None

    def write(data: bytes) -> None:
        # The hot path of a room fan-out: nothing queued, send at once.
        if direct and not connection.dataBuffer and not connection._tempDataLen \
                and transport.connected and not transport.disconnecting:
            if len(data) > max_buffer:
                overflow()
                return
            try:
                sent = send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # let the transport find and report the failure
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        elif queued_bytes(connection) + len(data) > max_buffer:
            overflow()
            return
        buffered(data)

    return write


# -- autobahn: the options a factory copies into every connection ---------------------
def options_on_class(factory, protocol_class) -> type:
    """A subclass of ``protocol_class`` holding ``factory``'s options as
    class attributes (functions among them stay functions), so that they
    are not copied into every connection (a crowd of idle browsers must
    stay cheap)."""
    return type(protocol_class.__name__, (protocol_class,), {
        name: staticmethod(value) if callable(value) else value
        for name in protocol_class.CONFIG_ATTRS
        for value in [getattr(factory, name)]})


def forget_option_copies(protocol, missing=object()) -> None:
    """Drop the copies of the factory's options autobahn put on a
    connection that :func:`options_on_class` already holds."""
    instance = protocol.__dict__
    for name in protocol.CONFIG_ATTRS:
        if instance.get(name, missing) is getattr(protocol.factory, name, None) \
                and name in type(protocol).__dict__:
            del instance[name]
