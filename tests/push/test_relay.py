"""Files kept on another node brought to the user's own (tekcos/push/relay.py),
between two in-memory nodes; the fetch is a Deferred the test fires, after
writing what a real fetch would have."""
import hashlib
import os

from twisted.internet import defer

from tekcos.delivery import Deliveries
from tekcos.push import wire
from tekcos.push.serve import Outgoing
from tekcos.push.relay import STAGING, Relays
from tests.federation.test_core import two_nodes

A_WHERE, B_WHERE = "10.0.0.1:9000", "10.0.1.1:9000"
DATA = b"quarterly figures\n" * 100


class Fetches:
    """fetch_file for Relays: remembers each call, fired by the test."""

    def __init__(self):
        self.calls = []

    def __call__(self, code, where, output):
        fetching = defer.Deferred()
        self.calls.append((code, where, output, fetching))
        return fetching

    def arrive(self, index=0, name="report.pdf", data=DATA):
        code, _, output, fetching = self.calls[index]
        path = os.path.join(output, name)
        with open(path, "wb") as f:
            f.write(data)
        fetching.callback((0, "", {"file": path, "sha256": hashlib.sha256(data).hexdigest()}))

    def fail(self, index=0, error="the server did not answer", status=3):
        self.calls[index][3].callback((status, error, None))


def session_of(server, user):
    return server.hub.member(user.nick)


def hub_of_two(tmp_path, limit=4):
    a, b, deliver, channel, logs = two_nodes()
    for server, where, name in ((a, A_WHERE, "a"), (b, B_WHERE, "b")):
        directory = tmp_path / name
        directory.mkdir()
        server.hub.deliveries = Deliveries(server.hub, None, server.clock.seconds,
                                           str(directory), node_where=where)
    fetches = Fetches()
    kept = b.hub.deliveries
    kept.relays = Relays(kept.downloads, fetches, kept.relayed, kept.relay_failed, limit=limit)
    return a, b, deliver, channel, fetches


def ready_on_a(a, b, deliver, channel, *nicks, name="report.pdf", recipient=None):
    """alice on node a pushes ``name`` for ``recipient``; the users ``nicks``
    of node b accept; the file arrives at a.  Those users, and the CODE."""
    alice = a.alice = a.user("alice", host="127.0.0.7")
    users = [b.user(nick) for nick in nicks]
    for user, nick in zip(users, nicks):
        user.nick = nick
    channel.extend(b.hub.federation.presence(0.0))
    deliver()
    offer = {"for": recipient or nicks[0], "name": name, "size": len(DATA),
             "sha256": hashlib.sha256(DATA).hexdigest(), "from": "alice"}
    a.hub.deliveries.decide(offer, "127.0.0.7", "client:1", a.clock.seconds())
    deliver()
    for user in users:
        number = user.read().split("/accept ")[1].split()[0]
        user.type(f"/accept {number}\r\n")
        user.read()
    deliver()
    alice.read()
    number = a.hub.deliveries.decide(offer, "127.0.0.7", "client:1", a.clock.seconds())[1]
    a.hub.deliveries.delivered(number, f".for/{name}", len(DATA), a.clock.seconds())
    code = next(iter(a.hub.deliveries.ready))
    deliver()
    return users, code


def test_a_file_kept_on_another_node_is_brought_here_and_fetched_here(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    # Node b fetches it from node a, into a staging directory of its own.
    assert [(c, w) for c, w, _, _ in fetches.calls] == [(code, A_WHERE)]
    staging = fetches.calls[0][2]
    assert staging == os.path.join(b.hub.deliveries.downloads, STAGING, code)
    assert os.path.isdir(staging)
    assert "*** report.pdf from alice is kept on node lab-a; bringing it to this server" \
        in bob.read()
    assert b.hub.deliveries.coming(code)
    assert b.hub.deliveries.kept_elsewhere(code) is None     # a GET here waits, not moved
    fetches.arrive()
    # Now node b keeps it, under the same CODE, for the same user.
    text = bob.read()
    here = b.hub.deliveries.where(session_of(b, bob))
    assert f"*** report.pdf from alice is ready: tekcos get {code} --from {here}" in text
    kept = b.hub.deliveries.lookup(code, b.clock.seconds())
    assert kept.path == os.path.join(".for", "report.pdf") and not kept.where
    assert kept.sha256 == hashlib.sha256(DATA).hexdigest()
    with open(os.path.join(b.hub.deliveries.downloads, kept.path), "rb") as f:
        assert f.read() == DATA
    assert not os.path.exists(staging)
    assert not b.hub.deliveries.coming(code)
    assert b.hub.deliveries.files_for(session_of(b, bob)) == [kept]
    assert b.hub.deliveries.relays.stats["relayed"] == 1
    assert relay_metrics(b) == {"relayed": 1, "failed": 0, "refused": 0}


def relay_metrics(server) -> dict:
    """The node's /metrics, as a scraper on loopback reads them: the relays."""
    from prometheus_client.parser import text_string_to_metric_families
    from twisted.internet.address import IPv4Address
    from twisted.web.test.requesthelper import DummyRequest

    from tekcos.web.metrics import MetricsResource, Sources
    request = DummyRequest([b""])
    request.client = IPv4Address("TCP", "127.0.0.1", 5000)
    body = MetricsResource(Sources(server.hub, lambda: {})).render_GET(request).decode()
    return {s.labels["outcome"]: s.value for family in text_string_to_metric_families(body)
            for s in family.samples if s.name == "tekcos_file_relays_total"}


def test_every_member_of_a_room_on_the_node_is_told_and_it_is_brought_once(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    (bob, carol), code = ready_on_a(a, b, deliver, channel, "bob", "carol",
                                    recipient="#lobby")
    assert len(fetches.calls) == 1
    assert "bringing it to this server" in bob.read()
    assert "bringing it to this server" in carol.read()
    fetches.arrive()
    for user in (bob, carol):
        here = b.hub.deliveries.where(session_of(b, user))
        assert f"tekcos get {code} --from {here}" in user.read()


def test_a_file_that_cannot_be_brought_is_fetched_where_it_is_kept(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    bob.read()
    fetches.fail(error="the server did not answer")
    text = bob.read()
    assert "*** report.pdf could not be brought to this server (the server did not " \
           "answer); fetch it where it is kept:" in text
    assert f"*** report.pdf from alice is ready: tekcos get {code} --from {A_WHERE}" in text
    assert b.hub.deliveries.kept_elsewhere(code) == A_WHERE       # a GET here is sent on
    assert b.hub.deliveries.lookup(code, b.clock.seconds()) is None
    assert not os.path.exists(fetches.calls[0][2])
    assert relay_metrics(b)["failed"] == 1


def test_beyond_the_limit_users_are_sent_to_the_keeping_node_at_once(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path, limit=1)
    [bob], first = ready_on_a(a, b, deliver, channel, "bob")
    assert "bringing it" in bob.read()
    [carol], second = ready_on_a(a, b, deliver, channel, "carol", name="other.txt")
    second = next(c for c in a.hub.deliveries.ready if c != first)
    assert len(fetches.calls) == 1
    assert f"*** other.txt from alice is ready: tekcos get {second} --from {A_WHERE}" \
        in carol.read()


def test_a_brought_file_never_replaces_one_of_the_same_name(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    kept_dir = os.path.join(b.hub.deliveries.downloads, ".for")
    os.makedirs(kept_dir)
    with open(os.path.join(kept_dir, "report.pdf"), "wb") as f:
        f.write(b"someone else's")
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    fetches.arrive()
    kept = b.hub.deliveries.lookup(code, b.clock.seconds())
    assert kept.path != os.path.join(".for", "report.pdf")
    with open(os.path.join(kept_dir, "report.pdf"), "rb") as f:
        assert f.read() == b"someone else's"
    with open(os.path.join(b.hub.deliveries.downloads, kept.path), "rb") as f:
        assert f.read() == DATA


def test_a_file_forgotten_while_it_came_is_not_kept(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    b.clock.advance(b.hub.deliveries.keep + 1)
    b.hub.deliveries.tick(b.clock.seconds())                 # expired meanwhile
    fetches.arrive()
    assert b.hub.deliveries.lookup(code, b.clock.seconds()) is None
    assert os.listdir(os.path.join(b.hub.deliveries.downloads, ".for")) == []


def test_a_user_who_left_can_still_fetch_a_file_kept_elsewhere_by_its_code(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    fetches.fail()
    b.hub.deliveries.session_gone(session_of(b, bob))
    assert b.hub.deliveries.kept_elsewhere(code) == A_WHERE


def test_a_get_for_a_file_on_its_way_is_asked_to_come_back():
    outgoing = Outgoing(lookup=lambda code, now: None, open_file=None,
                        on_fetched=lambda code: None, coming=lambda code: code == "c0de",
                        elsewhere=lambda code: None)
    outgoing.receive_datagram(wire.encode_json(wire.GET, 5, {"code": "c0de"}, pad_to=232),
                              ("10.0.0.7", 40000), 0.0)
    [(answer, _)] = outgoing.datagrams_to_send(0.0)
    kind, session, _, body = wire.decode(answer)
    assert (kind, session) == (wire.REJECT, 5)
    assert wire.decode_json(body) == {"error": "on its way to this server; retry in 2 s",
                                      "retry_after": 2.0}


def test_a_node_cannot_have_this_one_fetch_a_file_nobody_here_was_offered(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    bob = b.user("bob")
    channel.extend(b.hub.federation.presence(0.0))
    deliver()
    bob.read()
    a.hub.federation.file("lab-b", "ready", "bob", num=7, frm="alice", name="x.bin",
                          size=1 << 30, code="Z" * 22, where="203.0.113.9:9000")
    deliver()
    assert fetches.calls == [] and bob.read() == ""


def test_the_sender_hears_when_the_file_is_fetched_on_the_other_node(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    fetches.arrive()
    a.alice.read()
    a.hub.deliveries.brought_away(code)       # what node a's serving side says of the relay
    assert a.alice.read() == ("*** report.pdf is on the node of bob now; you will be told "
                              "when it is fetched there\r\n")
    b.hub.deliveries.fetched(code)            # bob fetched it from node b
    deliver()
    assert a.alice.read() == "*** bob has fetched report.pdf\r\n"
    assert a.hub.deliveries.ready[code].fetched == 1
    # A node that was never asked for it cannot say it was fetched.
    b.hub.federation.node = "lab-c"
    b.hub.deliveries.fetched(code)
    deliver()
    assert a.alice.read() == "" and a.hub.deliveries.ready[code].fetched == 1


def test_a_relay_cut_short_by_a_stopping_server_says_so(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    bob.read()
    fetches.fail(error="interrupted; run the same command again to continue where it stopped",
                 status=130)
    text = bob.read()
    assert "could not be brought to this server (this server is stopping)" in text
    assert "run the same command" not in text
    assert not os.path.exists(fetches.calls[0][2])


def test_a_fetch_that_breaks_is_a_failed_relay_and_leaves_nothing(tmp_path):
    a, b, deliver, channel, fetches = hub_of_two(tmp_path)
    [bob], code = ready_on_a(a, b, deliver, channel, "bob")
    bob.read()
    fetches.calls[0][3].errback(RuntimeError("the port went away"))
    assert "could not be brought to this server (the port went away)" in bob.read()
    assert not os.path.exists(fetches.calls[0][2]) and not b.hub.deliveries.coming(code)
