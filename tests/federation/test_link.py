"""RedisLink's health bookkeeping without a Redis: its command connection
is a fake whose answers the test gives, time is a task.Clock."""
from twisted.internet import defer
from twisted.internet.task import Clock

from tekcos.federation.core import Federation
from tekcos.federation.link import RedisLink
from tekcos.federation.url import RedisURL
from tests.memory import Server


class Commands:
    """What the link asks of Redis, each a Deferred the test fires."""

    def __init__(self):
        self.asked = []

    def publish(self, channel, data):
        d = defer.Deferred()
        self.asked.append(("publish", data, d))
        return d

    def eval(self, script, keys=(), args=()):
        d = defer.Deferred()
        self.asked.append(("eval", keys, d))
        return d


def test_a_command_that_failed_while_the_subscription_stayed_is_followed_by_reachable_again():
    server = Server()
    federation = server.hub.federation = Federation(server.hub, "lab-a", lambda raw: None)
    clock = Clock()
    link = RedisLink(federation, RedisURL("redis://127.0.0.1:6379/0"), clock)
    link.running = True                      # as if started, without connecting
    link.commands = Commands()
    alice = server.user("alice")
    alice.read()
    link.publish(b"first", timed=True)
    link.commands.asked[-1][2].errback(defer.TimeoutError("no answer"))
    assert not federation.reachable
    assert "the other nodes are unreachable" in alice.read()
    link.publish(b"heartbeat", timed=True)
    before = len(link.commands.asked)
    clock.advance(0.25)
    link.commands.asked[-1][2].callback(1)   # Redis answers again
    assert federation.reachable and federation.round_trip == 0.25
    assert "the other nodes are reachable again" in alice.read()
    # As after a reconnection: our presence again, and the history fetched.
    after = link.commands.asked[before:]
    kinds = [entry[0] for entry in after]
    assert kinds[0] == "publish" and b'"t":"presence"' in after[0][1]
    assert "eval" in kinds
