"""Canaries: one per private Twisted/autobahn attribute that tekcos/compat.py
relies on.  A release that changes one fails here, by name, before it can
break the chat in a subtler way."""
import socket

import pytest
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.web import http, server
from twisted.web.test.requesthelper import DummyChannel

from tekcos import compat


def test_raiseSynchronously_makes_a_port_in_use_raise_at_start():
    from twisted.application.internet import StreamServerEndpointService
    from twisted.internet.endpoints import TCP4ServerEndpoint
    from twisted.internet.error import CannotListenError
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        endpoint = TCP4ServerEndpoint(reactor, busy.getsockname()[1], interface="127.0.0.1")
        service = StreamServerEndpointService(endpoint, Factory.forProtocol(Protocol))
        compat.raise_synchronously(service)
        with pytest.raises(CannotListenError):
            service.privilegedStartService()


def test_HTTPChannel_path_and_command_are_known_before_the_body():
    seen = []

    class Probe(http.Request):
        def gotLength(self, length):
            seen.append(compat.request_line(self.channel))
            super().gotLength(length)

    channel = http.HTTPChannel()
    channel.requestFactory = Probe
    channel.makeConnection(StringTransport())
    channel.dataReceived(b"POST /upload/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    assert seen == [(b"POST", b"/upload/abc")]


def test_Request_disconnected_says_the_client_left():
    request = server.Request(DummyChannel(), False)
    assert compat.request_gone(request) is False
    request.connectionLost(Exception("gone"))
    assert compat.request_gone(request) is True


def test_Telnet_write_carries_the_negotiation_answers():
    out = []
    negotiator = compat.CapturingTelnet(out.append)
    negotiator.will(b"\x01").addErrback(lambda failure: None)
    assert b"".join(out) == b"\xff\xfb\x01"


def test_CONFIG_ATTRS_options_live_on_the_class_and_copies_go():
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    factory = WebSocketServerFactory()
    factory.setProtocolOptions(maxFramePayloadSize=1234)
    assert "maxFramePayloadSize" in WebSocketServerProtocol.CONFIG_ATTRS
    cls = compat.options_on_class(factory, WebSocketServerProtocol)
    assert cls.maxFramePayloadSize == 1234
    protocol = cls()
    protocol.factory = factory
    for name in cls.CONFIG_ATTRS:   # what autobahn does in connectionMade
        setattr(protocol, name, getattr(factory, name))
    compat.forget_option_copies(protocol)
    assert "maxFramePayloadSize" not in protocol.__dict__
    assert protocol.maxFramePayloadSize == 1234


def test_tempDataLen_dataBuffer_count_what_the_kernel_has_not_taken():
    from twisted.internet import tcp
    left, right = socket.socketpair()
    transport = None
    try:
        left.setblocking(False)
        overflowed = []
        transport = tcp.Server(left, Protocol(), ("127.0.0.1", 1), None, 1, reactor)
        assert compat.tcp_connection(transport) is transport
        write = compat.make_writer(transport, 1 << 30, lambda: overflowed.append(True))
        # Fill the kernel's buffers: what is left waits in the transport.
        chunk = b"x" * (1 << 20)
        for _ in range(16):
            write(chunk)
        queued = compat.queued_bytes(transport)
        assert 0 < queued <= 16 << 20 and not overflowed
        compat.discard_queued(transport)
        assert compat.queued_bytes(transport) == 0
        tight = compat.make_writer(transport, 1024, lambda: overflowed.append(True))
        transport.write(b"y" * 4096)     # queued (the kernel's buffer is full)
        tight(b"z")
        assert overflowed == [True]
    finally:
        if transport is not None:   # out of the reactor before the socket goes
            transport.stopWriting()
            transport.stopReading()
        left.close()
        right.close()


def test_udp_connectedAddr_makes_a_port_connected_to_a_4_tuple_write_there():
    from twisted.internet.protocol import DatagramProtocol
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as peer:
        peer.bind(("::1", 0))
        peer.settimeout(5)
        port = reactor.listenUDP(0, DatagramProtocol(), interface="::1")
        try:
            compat.connect_udp(port, "::1", peer.getsockname()[1],
                               ("::1", peer.getsockname()[1], 0, 0))
            port.write(b"over the 4-tuple")
            assert peer.recvfrom(100)[0] == b"over the 4-tuple"
            with pytest.raises(RuntimeError):
                compat.connect_udp(port, "::1", 1, ("::1", 1, 0, 0))
        finally:
            port.stopListening()
