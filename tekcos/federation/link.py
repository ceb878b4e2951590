"""The Twisted half of federation: Redis connections, the channel, the clock.

:class:`RedisLink` is a service.  It keeps two connections to the Redis
named by ``--redis`` (txredisapi, which reconnects by itself with backoff):
one subscribed to the hub's channel, whose messages go to
:meth:`Federation.received`, and one for commands (``PUBLISH``).  Every
:data:`~tekcos.federation.core.HEARTBEAT` seconds it publishes this node's
presence and lets the core time out silent nodes.  Nothing here waits on
Redis: a publish that does not answer within :data:`TIMEOUT` seconds is
dropped, and the core is told that the link is down (every room hears it
once); the subscription coming back says it is up again.
"""
from __future__ import annotations

import json

import txredisapi
from twisted.application.service import Service
from twisted.internet import defer, endpoints
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from tekcos.chat.names import look_keys, name_key
from tekcos.federation.core import HEARTBEAT
from tekcos.federation.url import RedisURL

# Seconds a Redis command may take before it is given up (and its connection
# dropped).  It counts the reactor's own lateness too: at 2 s, workers busy
# registering 13,000 users each gave up on a Redis that had answered at once.
TIMEOUT = 5.0
CHANNEL = "tekcos:hub"
NICK_KEY = "tekcos:nick:"  # + a look key of the nick (its TR39 skeletons)
NICK_TTL = 30            # seconds a claim lives unless renewed (every heartbeat)
# Claim every key of a nick for a node, unless another node holds one of
# them: then that node's name comes back, and nothing is set.
_CLAIM = """
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then return holder end
end
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end
return false
"""
# Renew a node's claims in one command per batch: keep ours alive, take
# back any that expired meanwhile (Redis was away), and say which are held
# by another node (key, holder, key, holder...).
_RENEW = """
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  elseif holder == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
  else
    table.insert(taken, key)
    table.insert(taken, holder)
  end
end
return taken
"""
RENEW_BATCH = 1000       # keys renewed per command
HISTORY_KEY = "tekcos:history:"      # + the room's name key: a list of [room, text]
HISTORY_ROOMS = "tekcos:history-rooms"   # the set of those lists
HISTORY_TTL = 7 * 86400  # seconds a room's list lives after its last line
FETCH_ROOMS = 1000       # rooms' histories read at most when Redis comes up
# A line said here, kept for nodes that come later (the newest ARGV[2]).
_KEEP = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], KEYS[1])
return 0
"""
# Every room's kept lines (lists that expired leave the set).
_FETCH = """
local out = {}
for i, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if #out >= tonumber(ARGV[1]) then break end
  local lines = redis.call('LRANGE', key, 0, -1)
  if #lines == 0 then redis.call('SREM', KEYS[1], key) else table.insert(out, lines) end
end
return out
"""
_RELEASE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""

_log = Logger(namespace="tekcos.federation")


class _Subscriber(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern, channel, message):
        self.factory.link.heard(message)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.link.down("the subscription was lost")


class _Subscribers(txredisapi.SubscriberFactory):
    """Subscribes each connection once it is ready (authenticated)."""

    protocol = _Subscriber

    def addConnection(self, conn):
        super().addConnection(conn)
        if conn.connected:
            conn.subscribe(CHANNEL).addErrback(self.link.failed, "subscribe")
            self.link.up()


class RedisLink(Service):
    def __init__(self, federation, url: RedisURL, reactor):
        self.federation = federation
        self.url = url
        self.reactor = reactor
        self.commands = None
        self.subscriber = None
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = reactor
        self.failures = 0
        federation.on_claim = self.claim
        federation.on_release = self.release
        federation.on_keep = self.keep

    # -- connections ------------------------------------------------------------------
    def startService(self):
        super().startService()
        url = self.url
        self.commands = txredisapi.lazyConnection(
            url.host, url.port, dbid=url.db, password=url.password, username=url.username,
            ssl_context_factory=url.tls, connectTimeout=TIMEOUT, replyTimeout=TIMEOUT,
            convertNumbers=False)
        factory = _Subscribers()
        factory.password, factory.username = url.password, url.username
        factory.link = self
        factory.maxDelay = 10
        if url.tls:
            from twisted.internet import ssl
            endpoint = endpoints.wrapClientTLS(ssl.optionsForClientTLS(url.host),
                                               endpoints.HostnameEndpoint(
                                                   self.reactor, url.host, url.port,
                                                   timeout=TIMEOUT))
        else:
            endpoint = endpoints.HostnameEndpoint(self.reactor, url.host, url.port,
                                                  timeout=TIMEOUT)
        factory.startConnecting(endpoint)
        self.subscriber = factory
        self._beat.start(HEARTBEAT, now=False)
        _log.info("federation: node {node} joins the hub at {url}",
                  node=self.federation.node, url=url.shown())

    def stopService(self):
        super().stopService()
        if self._beat.running:
            self._beat.stop()
        # Our users leave the other nodes at once, not in 15 s.
        self.federation.goodbye()
        done = []
        if self.subscriber is not None:
            done.append(self.subscriber.disconnect())
        if self.commands is not None:
            done.append(self.commands.disconnect())
        return defer.DeferredList(done, consumeErrors=True)

    # -- traffic ------------------------------------------------------------------------
    def publish(self, data: bytes, timed: bool = False) -> None:
        """Send ``data`` on the channel; never waits, never raises.
        ``timed``: the round trip becomes the federation's ``round_trip``."""
        if self.commands is None:
            return
        sent = self.reactor.seconds()
        d = self.commands.publish(CHANNEL, data)
        d.addTimeout(TIMEOUT, self.reactor)
        if timed:
            d.addCallback(self._answered_in, sent)
        d.addErrback(self.failed, "publish")

    def _answered_in(self, _, sent: float) -> None:
        self.federation.round_trip = self.reactor.seconds() - sent
        if not self.federation.reachable:
            # A command failed, yet the subscription stayed: Redis answers
            # again, and no reconnection will say so.
            self.up()

    def _keys(self, nick: str) -> list[str]:
        return [NICK_KEY + key for key in sorted(set(look_keys(nick)))]

    def claim(self, nick: str) -> None:
        """Claim ``nick`` in Redis; if another node holds it (a race within
        a round trip), its holder here is told to choose again.  Redis down:
        the local and presence checks stand alone."""
        if self.commands is None:
            return
        d = self.commands.eval(_CLAIM, keys=self._keys(nick),
                               args=[self.federation.node, NICK_TTL])
        d.addTimeout(TIMEOUT, self.reactor)

        def answered(holder):
            if holder:
                holder = holder.decode() if isinstance(holder, bytes) else str(holder)
                self.federation.refused(nick, holder)
        d.addCallbacks(answered, self.failed, errbackArgs=("claim",))

    def release(self, nick: str) -> None:
        if self.commands is None:
            return
        d = self.commands.eval(_RELEASE, keys=self._keys(nick), args=[self.federation.node])
        d.addTimeout(TIMEOUT, self.reactor)
        d.addErrback(self.failed, "release")

    def keep(self, room_name: str, text: str) -> None:
        """A room line said here, kept in Redis (the room's last lines) for
        nodes that start later or were cut off meanwhile."""
        if self.commands is None or not self.federation.hub.history_size:
            return
        entry = json.dumps([room_name, text], ensure_ascii=False)
        d = self.commands.eval(_KEEP, keys=[HISTORY_KEY + name_key(room_name), HISTORY_ROOMS],
                               args=[entry, self.federation.hub.history_size, HISTORY_TTL])
        d.addTimeout(TIMEOUT, self.reactor)
        d.addErrback(self.failed, "keep")

    def fetch_history(self) -> None:
        """What the rooms said before this node heard them: adopted where
        nobody here is in the room (Federation.adopt)."""
        if self.commands is None or not self.federation.hub.history_size:
            return
        d = self.commands.eval(_FETCH, keys=[HISTORY_ROOMS], args=[FETCH_ROOMS])
        d.addTimeout(TIMEOUT * 5, self.reactor)
        d.addCallbacks(lambda rooms: self.federation.adopt(list(rooms or [])), self.failed,
                       errbackArgs=("fetching the history",))

    def heard(self, message) -> None:
        self.federation.received(message, self.reactor.seconds())

    def _heartbeat(self) -> None:
        parts = self.federation.tick(self.reactor.seconds())
        for i, part in enumerate(parts):
            self.publish(part, timed=i == len(parts) - 1)
        self.renew()

    def renew(self) -> None:
        """Keep this node's nick claims alive: a few commands for all of
        them (one per nick was tens of thousands every heartbeat on a busy
        node: their answers came too late, and the connection was dropped)."""
        if self.commands is None:
            return
        owner: dict[str, str] = {}
        for member in list(self.federation.hub.nicks.values()):
            if member.nick:
                for key in self._keys(member.nick):
                    owner[key] = member.nick
        keys = list(owner)
        for start in range(0, len(keys), RENEW_BATCH):
            d = self.commands.eval(_RENEW, keys=keys[start:start + RENEW_BATCH],
                                   args=[self.federation.node, NICK_TTL])
            d.addTimeout(TIMEOUT, self.reactor)
            d.addCallbacks(self._renewed, self.failed, callbackArgs=(owner,),
                           errbackArgs=("renew",))

    def _renewed(self, taken, owner: dict) -> None:
        told = set()
        taken = list(taken or [])
        for key, holder in zip(taken[::2], taken[1::2]):
            key = key.decode() if isinstance(key, bytes) else str(key)
            holder = holder.decode() if isinstance(holder, bytes) else str(holder)
            nick = owner.get(key)
            if nick is not None and nick not in told:
                told.add(nick)
                self.federation.refused(nick, holder)

    # -- health -------------------------------------------------------------------------
    def failed(self, failure, what: str) -> None:
        self.failures += 1
        self.down(f"{what} failed: {failure.getErrorMessage()}")

    def down(self, why: str) -> None:
        if not self.running:       # stopping: nobody is left to tell
            return
        if self.federation.reachable:
            _log.warn("federation: Redis at {url} unreachable ({why}); local chat goes on, "
                      "retrying", url=self.url.shown(), why=why)
        self.federation.link_state(False)

    def up(self) -> None:
        if not self.federation.reachable:
            _log.info("federation: Redis at {url} reachable again", url=self.url.shown())
        self.federation.link_state(True)
        for part in self.federation.presence(self.reactor.seconds()):
            self.publish(part)
        self.fetch_history()
