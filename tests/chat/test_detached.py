"""Held sessions: bounded in number, per host and in what they keep."""
from tekcos.chat.detached import Detached
from tests.memory import Server


class Peer:
    def __init__(self):
        self.out = b""
        self.superseded_calls = 0

    def write(self, data):
        self.out += data

    def superseded(self):
        self.superseded_calls += 1


def held_user(server, detached, nick, host="10.0.0.1"):
    session = server.user(nick, host=host).protocol.session
    token = detached.issue(session)
    return session, token


def test_what_a_held_session_misses_is_kept_in_order_and_bounded():
    server = Server()
    detached = Detached(server.clock, hold=60, max_missed=200)
    talker = server.user("tal")
    session, token = held_user(server, detached, "hal")
    assert detached.hold(session, "10.0.0.1")
    talker.type("one\ntwo\n")
    peer = Peer()
    resumed, missed = detached.resume(token, peer)
    assert resumed is session and missed.count(b"<tal>") == 2
    assert missed.index(b"<tal> one\r\n") < missed.index(b"<tal> two\r\n")
    assert detached.held == {} and peer.superseded_calls == 0
    talker.type("three\n")
    assert peer.out.endswith(b"<tal> three\r\n")                 # straight to the new peer
    # Held again; this time more than 200 bytes go by: the user is gone.
    assert detached.hold(session, "10.0.0.1")
    talker.read()
    talker.type("x" * 150 + "\n" + "y" * 150 + "\n")
    assert "-- hal has quit (connection lost (missed too much))" in talker.read()
    assert session.closed and detached.tokens == {} and not server.clock.getDelayedCalls()


def test_held_sessions_are_capped_in_total_and_per_host_and_end_on_shutdown():
    server = Server()
    detached = Detached(server.clock, max_held=3, max_per_host=2)
    users = [held_user(server, detached, f"u{i}", host="10.0.0.1") for i in range(3)]
    other = held_user(server, detached, "far", host="10.0.0.2")
    last = held_user(server, detached, "last", host="10.0.0.3")
    assert [detached.hold(s, "10.0.0.1") for s, _ in users] == [True, True, False]
    assert detached.hold(other[0], "10.0.0.2") is True
    assert detached.hold(last[0], "10.0.0.3") is False             # 3 held already
    watcher = server.user("watch")
    detached.stop()
    lines = watcher.read()
    assert all(f"-- {nick} has quit (server shutting down)" in lines for nick in ("u0", "u1", "far"))
    assert detached.held == {} and detached.per_host == {}
    assert not any(c.active() for c in server.clock.getDelayedCalls()
                   if c.func == detached.expire)
