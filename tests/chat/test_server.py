"""ChatService shutdown, driven by task.Clock, and one chat on the real reactor."""
import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from tekcos.chat.hub import Hub
from tekcos.chat.server import ChatFactory, ChatService
from tekcos.chat.session import SessionConfig
from tests.memory import Server


def test_shutdown_notifies_everyone_then_waits_for_them_to_go():
    server = Server()
    a, b = server.user("alice"), server.user("bob")
    pending = server.connect()       # still at the nick prompt
    for c in (a, b, pending):
        c.read()
    service = ChatService(server.factory, server.clock, grace=3)
    service.startService()
    d = service.stopService()
    for c in (a, b, pending):
        assert c.transport.disconnecting
    assert a.lines() == ["*** Server shutting down. Bye."]   # no quit storm
    assert b.lines() == ["*** Server shutting down. Bye."]
    assert pending.lines() == ["*** Server shutting down. Bye."]
    fired = []
    d.addCallback(fired.append)
    for c in (a, b):
        c.close()
    assert not fired
    pending.close()
    assert fired == [None]
    assert server.clock.getDelayedCalls() == []


def test_shutdown_forces_clients_that_do_not_go_after_the_grace_time():
    server = Server()
    a = server.user("alice")
    service = ChatService(server.factory, server.clock, grace=3)
    service.startService()
    d = service.stopService()
    fired = []
    d.addCallback(fired.append)
    server.clock.advance(2.9)
    assert not fired
    server.clock.advance(0.2)
    assert fired == [None]
    assert server.clock.getDelayedCalls() == []
    assert a.transport.disconnecting


def test_shutdown_without_clients_is_immediate():
    server = Server()
    service = ChatService(server.factory, server.clock)
    service.startService()
    assert service.stopService() is None


class _LineClient(LineReceiver):
    """A test client on the real reactor: lines arrive in ``self.lines``;
    ``until(text)`` fires once a line containing ``text`` has arrived."""

    def __init__(self):
        self.lines = []
        self.waiting = []
        self.closed = defer.Deferred()

    def lineReceived(self, line):
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        for want, d in list(self.waiting):
            if want in text:
                self.waiting.remove((want, d))
                d.callback(text)

    def until(self, want):
        for text in self.lines:
            if want in text:
                return defer.succeed(text)
        d = defer.Deferred()
        self.waiting.append((want, d))
        return d

    def connectionLost(self, reason):
        self.closed.callback(None)


@pytest_twisted.ensureDeferred
async def test_two_users_chat_then_shutdown_on_the_real_reactor():
    from twisted.internet import reactor
    hub = Hub(reactor.seconds)
    factory = ChatFactory(hub, SessionConfig())
    service = ChatService(factory, reactor)
    service.startService()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    alice, bob = _LineClient(), _LineClient()
    try:
        for client, nick in ((alice, "alice"), (bob, "bob")):
            await connectProtocol(endpoint, client)
            await client.until("Choose a nick")
            client.sendLine(nick.encode())
            await client.until("You are in lobby")
        alice.sendLine(b"hello bob")
        assert (await bob.until("<alice>")).endswith("<alice> hello bob")
    finally:
        await service.stopService()
        await port.stopListening()
    await defer.DeferredList([alice.closed, bob.closed])
    assert alice.lines[-1] == bob.lines[-1] == "*** Server shutting down. Bye."
    assert factory.connections == set()


def test_a_connection_without_a_nick_is_told_and_closed_after_the_timeout():
    server = Server(nick_timeout=60)
    idle, user = server.connect(), server.user("alice")
    idle.read()
    server.clock.advance(59)
    assert not idle.transport.disconnecting and idle.read() == ""
    server.clock.advance(1)
    assert idle.lines() == ["*** No nick chosen within 60 s; closing. Reconnect and type a nick."]
    assert idle.transport.disconnecting
    assert not user.transport.disconnecting          # a registered user stays
    idle.close()
    user.close()
    assert server.clock.getDelayedCalls() == []


def test_one_over_max_clients_gets_a_reason_and_a_freed_place_is_reused():
    server = Server(max_clients=2)
    a, b = server.user("alice"), server.user("bob")
    third = server.connect()
    assert third.read() == "*** Error: the server is full (2 users); try again later.\r\n"
    assert third.transport.disconnecting
    a.close()
    fourth = server.connect()
    assert "Choose a nick" in fourth.read()
    b.close()
    fourth.close()


def test_shutdown_with_users_in_several_rooms_tells_everyone_without_errors():
    server = Server()
    users = [server.user(f"u{i}") for i in range(9)]
    for i, user in enumerate(users):
        user.type(f"/join room{i % 3}\r\n")
    for user in users:
        user.read()
    service = ChatService(server.factory, server.clock, grace=3)
    service.startService()
    d = service.stopService()   # raised KeyError in Hub._leave_room before
    for user in users:
        assert user.lines() == ["*** Server shutting down. Bye."]
        user.close()
    assert d.called
    assert set(server.hub.rooms) == {"lobby"}
