"""ChatService shutdown, driven by task.Clock."""
from tekcos.chat.server import ChatService
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
