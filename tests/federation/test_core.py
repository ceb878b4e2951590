"""The federation core between two in-memory hubs, the channel a list."""
import json

from tekcos.federation.core import NODE_TIMEOUT, Federation
from tekcos.federation.url import RedisURL, node_error
from tests.memory import Server


def two_nodes():
    """Two servers whose federations publish into one shared list; deliver()
    plays the channel (each message to every node, its sender included)."""
    channel = []
    a, b = Server(), Server()
    for server, name in ((a, "lab-a"), (b, "lab-b")):
        server.hub.federation = Federation(server.hub, name, channel.append)
    logs = []
    b.hub.federation.log = logs.append

    def deliver(now=0.0):
        while channel:
            raw = channel.pop(0)
            for server in (a, b):
                server.hub.federation.received(raw, now)
    return a, b, deliver, channel, logs


def test_lines_private_messages_and_who_cross_nodes():
    a, b, deliver, channel, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    deliver()
    alice.read(), bob.read()
    alice.type("hello from a\n")
    deliver()
    assert bob.read().endswith("<alice> hello from a\r\n")
    assert alice.read().endswith("<alice> hello from a\r\n")      # once, not echoed back
    channel.extend(a.hub.federation.presence(0.0))
    deliver()
    bob.type("/who\n/msg ALICE psst\n")
    deliver()
    lines = bob.lines()
    assert lines[0] == "*** lobby (2): bob (idle 0s), alice@lab-a (idle 0s)"
    assert lines[1].endswith("-> *alice* psst")
    assert alice.read().endswith("*bob@lab-b* psst\r\n")


def test_whois_finds_a_user_of_another_node():
    a, b, deliver, channel, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    alice.type("/join dev\n/away lunch\n")
    channel.extend(a.hub.federation.presence(0.0))
    deliver()
    bob.read()
    bob.type("/whois ALICE\n/whois nobody\n")
    lines = bob.lines()
    assert lines[0].startswith("*** alice: on node lab-a, in ") and "dev" in lines[0]
    assert lines[0].rstrip().endswith("idle 0s")
    assert lines[1] == "***   away: lunch"
    assert "no such nick: nobody." in lines[2]


def test_a_nick_or_a_look_alike_is_refused_on_every_node_at_once():
    a, b, deliver, _, _ = two_nodes()
    a.user("alice")
    deliver()                                     # the "nick" message, before any presence
    other = b.connect()
    other.read()
    other.type("ALICE\n\u0430lice\nalicia\n")
    lines = other.lines()
    assert "The nick ALICE is taken by alice on node lab-a; choose another." in lines[0]
    assert "The nick \u0430lice is taken by alice on node lab-a" in lines[2]
    assert any("You are in lobby" in line for line in lines[4:])


def test_a_silent_node_is_lost_and_its_users_leave_every_room_here():
    a, b, deliver, channel, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    alice.type("/join dev\n")
    bob.type("/join dev\n")
    channel.extend(a.hub.federation.presence(0.0))
    deliver(now=100.0)
    bob.read()
    b.hub.federation.tick(100.0 + NODE_TIMEOUT / 2)
    assert bob.read() == ""
    b.hub.federation.tick(100.0 + NODE_TIMEOUT + 1)
    text = bob.read()
    assert "-- alice left (node lab-a lost)" in text and text.count("alice left") == 2
    assert b.hub.federation.holder("alice") is None       # the nick is free again
    b.user("alice")


def test_malformed_messages_are_counted_logged_and_never_applied():
    a, b, deliver, channel, logs = two_nodes()
    bob = b.user("bob")
    bob.read()
    bad = [b"not json", b"[]", json.dumps({"v": 2}).encode(),
           json.dumps({"v": 1, "node": "x y", "t": "line"}).encode(),
           json.dumps({"v": 1, "node": "evil", "t": "line", "room": "lobby",
                       "text": 5, "rec": True}).encode(),
           json.dumps({"v": 1, "node": "evil", "t": "line", "room": "no such room!",
                       "text": "hi", "rec": False}).encode(),
           json.dumps({"v": 1, "node": "evil", "t": "presence",
                       "members": [["bad nick!", [], 0, ""]]}).encode(),
           json.dumps({"v": 1, "node": "evil", "t": "what"}).encode(),
           b"x" * (300 * 1024)]
    for raw in bad:
        b.hub.federation.received(raw, 0.0)
    assert b.hub.federation.dropped == len(bad) and len(logs) >= len(bad) - 1
    assert bob.read() == ""
    # Control characters (a telnet IAC, an escape) never reach a member.
    b.hub.federation.received(json.dumps({
        "v": 1, "node": "evil", "t": "line", "room": "lobby", "rec": False,
        "text": "[00:00] <x> \xff\xfd\x01\x1b[2Jhi"}).encode(), 0.0)
    got = bob.transport.value()
    assert b"\x1b" not in got and b"\xff\xfd" not in got and got.endswith(b"hi\r\n")


def test_urls_and_node_names():
    url = RedisURL("rediss://app:s3cr%40t@10.0.0.2:6380/2")
    assert (url.tls, url.host, url.port, url.db, url.username, url.password) == \
        (True, "10.0.0.2", 6380, 2, "app", "s3cr@t")
    assert url.shown() == "rediss://10.0.0.2:6380/2"
    assert RedisURL("redis://pw@h").password == "pw" and RedisURL("redis://h").port == 6379
    for bad in ("http://h", "redis://", "redis://h/x", "redis://h:99999"):
        try:
            RedisURL(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert node_error("lab-a") is None and node_error("-a") and node_error("a" * 33)


def test_a_topic_set_on_one_node_is_the_topic_on_the_others():
    a, b, deliver, _, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    alice.type("/join dev\n")
    bob.type("/join dev\n")
    deliver()
    bob.read()
    alice.type("/topic release on Friday\n")
    deliver()
    assert bob.read().endswith("-- alice changed the topic to: release on Friday\r\n")
    bob.type("/topic\n")
    assert bob.lines() == ["*** Topic of dev: release on Friday"]
    # Each node told the other its users on first hearing of it: alice counts.
    assert ("dev", 2, "release on Friday") in b.hub.room_list()


def test_a_room_nobody_here_is_in_keeps_what_the_hub_says_there_for_whoever_joins():
    a, b, deliver, channel, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    alice.type("/join dev\n/topic release on friday\nfirst in dev\nsecond in dev\n")
    deliver()
    assert "dev" not in b.hub.rooms            # nobody on b is in dev
    bob.read()
    bob.type("/join dev\n")
    lines = bob.lines()
    history = [line for line in lines if line.startswith("(history)")]
    assert [line.split("] ", 1)[1] for line in history] == [
        "-- alice changed the topic to: release on friday", "<alice> first in dev",
        "<alice> second in dev"]
    assert "*** Topic of dev: release on friday" in lines
    bob.type("back at you\n")
    deliver()
    assert alice.read().endswith("<bob> back at you\r\n")


def test_a_node_of_twenty_thousand_users_is_told_in_parts_that_each_fit_a_message():
    from types import SimpleNamespace

    from tekcos.federation.core import MAX_MESSAGE
    a, b, deliver, channel, logs = two_nodes()
    channel.extend(a.hub.federation.presence(0.0))     # the nodes know each other
    deliver()
    lobby = a.hub.lobby
    for i in range(20000):
        a.hub.nicks[f"user{i}"] = SimpleNamespace(nick=f"user{i}", rooms={lobby: None},
                                                  last_active=0.0, away="")
    parts = a.hub.federation.presence(0.0)
    assert len(parts) > 1 and all(len(p) <= MAX_MESSAGE for p in parts)
    # Until the round is whole, the table stays as it was; then it is all there.
    channel.extend(reversed(parts[1:]))
    deliver()
    assert b.hub.federation.holder("user19999") is None
    channel.append(parts[0])
    deliver()
    assert b.hub.federation.holder("user19999").node == "lab-a"
    assert b.hub.federation.holder("user0") is not None
    assert not any("malformed" in line for line in logs)
    # A part of another round, or a part number out of range, is not applied.
    channel.append(json.dumps({"v": 1, "node": "lab-a", "t": "presence", "round": 99,
                               "parts": 2, "part": 5, "members": []}).encode())
    deliver()
    assert b.hub.federation.dropped == 1 and b.hub.federation.holder("user5") is not None


def test_a_node_that_comes_late_is_told_who_is_where_at_once():
    a, b, deliver, channel, _ = two_nodes()
    alice = a.user("alice")
    channel.clear()                      # b was not listening when alice came
    bob = b.user("bob")
    deliver()                            # b's first words reach a; a answers with its users
    bob.read()
    bob.type("/msg alice hi\n")
    deliver()
    assert bob.read().endswith("-> *alice* hi\r\n")
    assert alice.read().endswith("*bob@lab-b* hi\r\n")


def test_a_round_made_before_a_nick_was_taken_does_not_forget_it():
    a, b, deliver, channel, _ = two_nodes()
    a.user("alice")
    deliver()
    old_round = a.hub.federation.presence(0.0)          # made before bob comes
    a.user("bob")
    deliver()                                           # bob's nick message
    assert b.hub.federation.holder("bob") is not None
    channel.extend(old_round)
    deliver(1.0)
    assert b.hub.federation.holder("bob") is not None   # kept: told of just now
    channel.extend(old_round)
    deliver(20.0)
    assert b.hub.federation.holder("bob") is None       # long since: the rounds rule


def test_a_file_for_a_user_of_another_node_is_offered_answered_and_fetched_from_its_node(
        tmp_path):
    from tekcos.delivery import OFFER_SILENCE, Deliveries
    a, b, deliver, channel, logs = two_nodes()
    for server, where in ((a, "10.0.0.1:9000"), (b, "10.0.1.1:9000")):
        server.hub.deliveries = Deliveries(server.hub, None, server.clock.seconds,
                                           str(tmp_path), node_where=where)
    alice, bob, carol = a.user("alice", host="127.0.0.7"), b.user("bob"), b.user("carol")
    channel.extend(b.hub.federation.presence(0.0))
    deliver()
    alice.read(), bob.read(), carol.read()

    def offer(recipient="bob", name="report.pdf"):
        return a.hub.deliveries.decide({"for": recipient, "name": name, "size": 3000,
                                        "sha256": "ab" * 32, "from": "alice"},
                                       "127.0.0.7", "client:1", a.clock.seconds())
    # The push arrives at node a; bob is on node b.
    assert offer() == ("wait", "waiting for bob to accept")
    deliver()
    text = bob.read()
    assert "*** alice offers you report.pdf (3.0 KB), kept on node lab-a. /accept 1 or " \
           "/decline 1" in text
    assert carol.read() == ""
    carol.type("/accept 1\r\n")
    assert "no offer 1 for you" in carol.read()
    bob.type("/accept 1\r\n")
    assert "Accepted report.pdf from alice" in bob.read()
    deliver()
    assert "*** bob accepted report.pdf" in alice.read()
    assert offer() == ("accepted", 1)
    # The whole file is on node a: bob is told to fetch it from there.
    a.hub.deliveries.delivered(1, ".for/report.pdf", 3000, a.clock.seconds())
    deliver()
    text = bob.read()
    assert "ready" in text, (text, logs)
    code = text.split("tekcos get ")[1].split()[0]
    assert f"*** report.pdf from alice is ready: tekcos get {code} --from 10.0.0.1:9000" in text
    assert a.hub.deliveries.lookup(code, a.clock.seconds()).name == "report.pdf"
    assert b.hub.deliveries.lookup(code, b.clock.seconds()) is None     # kept on a only
    bob.type("/files\r\n")
    assert f"tekcos get {code} --from 10.0.0.1:9000" in bob.read()
    # Another offer, withdrawn when its sender gives up: said on node b too.
    assert offer(name="draft.txt")[0] == "wait"
    deliver()
    assert "/accept 2" in bob.read()
    a.clock.advance(OFFER_SILENCE + 1)
    a.hub.deliveries.tick(a.clock.seconds())
    deliver()
    assert "*** alice withdrew the offer of draft.txt." in bob.read()
    bob.type("/accept 2\r\n")
    assert "no offer 2 for you" in bob.read()
    assert logs == [] or not any("malformed" in line for line in logs)


def test_a_file_for_a_room_asks_its_members_on_every_node(tmp_path):
    from tekcos.delivery import Deliveries
    a, b, deliver, channel, _ = two_nodes()
    for server in (a, b):
        server.hub.deliveries = Deliveries(server.hub, None, server.clock.seconds,
                                           str(tmp_path), node_where="10.0.0.1:9000")
    dan, bob = a.user("dan"), b.user("bob")
    channel.extend(b.hub.federation.presence(0.0))
    deliver()
    dan.read(), bob.read()
    verdict = a.hub.deliveries.decide({"for": "#lobby", "name": "notes.txt", "size": 10,
                                       "sha256": "ab" * 32, "from": "alice"},
                                      "127.0.0.7", "client:1", a.clock.seconds())
    assert verdict == ("wait", "waiting for #lobby to accept")
    deliver()
    assert "alice offers #lobby notes.txt" in dan.read()
    assert "alice offers #lobby notes.txt (10 bytes), kept on node lab-a." in bob.read()


def test_file_messages_from_the_channel_are_checked_like_input(tmp_path):
    from tekcos.delivery import Deliveries
    a, b, deliver, channel, logs = two_nodes()
    b.hub.deliveries = Deliveries(b.hub, None, b.clock.seconds, str(tmp_path))
    bob = b.user("bob")
    bob.read()
    base = {"v": 1, "node": "lab-a", "t": "file", "at": "lab-b", "to": "bob", "num": 1,
            "frm": "alice", "name": "x.bin", "size": 5, "code": "A" * 22,
            "where": "10.0.0.1:9000"}
    bad = [{"about": "ready", "where": "10.0.0.1:9000\r\nIAC"},
           {"about": "ready", "code": "short"},
           {"about": "ready", "where": "host:port"},
           {"about": "offer", "num": "1"},
           {"about": "offer", "size": -1},
           {"about": "offer", "room": 7},
           {"about": "sideways"},
           {"t": "answer", "accept": "yes"}]
    for change in bad:
        channel.append(json.dumps({**base, **change}).encode())
    deliver()
    assert b.hub.federation.dropped == len(bad)
    assert bob.read() == ""
    # A file message for another node is not ours to show.
    channel.append(json.dumps({**base, "about": "offer", "at": "lab-c"}).encode())
    # Control characters in a name arrive cleaned.
    channel.append(json.dumps({**base, "about": "offer", "name": "a\x1b[2Jb\xff.bin"}).encode())
    deliver()
    text = bob.read()
    assert text.count("offers you") == 1 and "\x1b" not in text and "a[2Jb\xff.bin" in text


def test_lines_kept_in_redis_are_adopted_where_nobody_here_is_in_the_room():
    a, _, deliver, channel, _ = two_nodes()
    kept = []
    a.hub.federation.on_keep = lambda room, text: kept.append(json.dumps([room, text]))
    alice = a.user("alice")
    alice.type("/join dev\nfirst\nsecond\n")
    deliver()
    said = [json.loads(k) for k in kept]
    assert [room for room, _ in said] == ["dev"] * len(said)
    assert said[-2][1].endswith("<alice> first") and said[-1][1].endswith("<alice> second")
    # A node that starts later: the lines come to it from Redis.
    late = Server()
    late.hub.federation = Federation(late.hub, "lab-c", lambda raw: None)
    bad = ["not json", json.dumps(["dev", 5]), json.dumps(["no such room name!", "x"])]
    assert late.hub.federation.adopt([kept + bad]) == len(kept)
    assert late.hub.federation.dropped == 3
    carol = late.user("carol")
    carol.type("/join dev\n")
    text = carol.read()
    assert "<alice> first" in text and "<alice> second" in text
    # Taken again (Redis came back): nothing twice; a newer line is added.
    assert late.hub.federation.adopt([kept]) == 0      # carol is in the room now
    carol.type("/part dev\n")
    newer = kept + [json.dumps(["dev", "[12:00] <alice> third"])]
    assert late.hub.federation.adopt([newer]) == 1
    carol.type("/join dev\n")
    text = carol.read()
    assert text.count("<alice> first") == 1 and text.count("<alice> third") == 1


def test_neighbors_shows_the_lan_of_every_node_that_scanned():
    from tekcos.scan.report import describe
    from tekcos.scan.service import Neighbourhood
    from tests.scan.test_service import FakeScanner, result
    a, b, deliver, channel, _ = two_nodes()
    for server in (a, b):
        hood = Neighbourhood(FakeScanner(), server.clock.seconds, lambda: None,
                             access="everyone")
        hood.ask_others = server.hub.federation.ask_neighbours
        server.hub.neighbourhood = hood
    a.hub.neighbourhood.last_report = describe(result())      # lab-a scanned its LAN
    bob = b.user("bob")
    bob.read()
    bob.type("/neighbors\n")
    deliver()
    lines = bob.lines()
    assert lines[0].startswith("*** No scan yet.")                 # lab-b's own
    assert lines[1] == "*** The LAN of node lab-a (its last scan):"
    assert lines[2].startswith("*** [lab-a] IP ") and "Apple" in lines[3]
    assert lines[-1].startswith("*** [lab-a] 2 hosts on 10.79.0.0/24 via eth1")
    # An answer that comes too late, or was not asked for, is not shown.
    b.clock.advance(6)
    channel.append(json.dumps({"v": 1, "node": "lab-a", "t": "hood", "at": "lab-b", "id": 1,
                               "lines": ["late"]}).encode())
    channel.append(json.dumps({"v": 1, "node": "lab-a", "t": "hood", "at": "lab-b", "id": 99,
                               "lines": ["\x1b[2J unasked"]}).encode())
    deliver()
    assert bob.read() == ""


def test_a_join_or_part_on_one_node_is_in_the_others_who_at_once():
    a, b, deliver, channel, logs = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    deliver()
    bob.type("/join #dev\n")
    deliver()                                # no presence round in between
    assert [r.nick for r in a.hub.federation.members_of("#dev")] == ["bob"]
    alice.read()
    alice.type("/who #dev\n")
    assert "bob" in alice.read()
    bob.type("/part #dev\n")
    deliver()
    assert a.hub.federation.members_of("#dev") == []
    # A hostile or broken rooms message is refused, counted, never applied.
    dropped = a.hub.federation.dropped
    for bad in ({"nick": "bob", "rooms": "#dev"}, {"nick": "bob", "rooms": ["#a\r\nIAC"]},
                {"nick": "bob", "rooms": ["#r"] * 1000}, {"nick": "\x1b[2J", "rooms": []}):
        a.hub.federation.received(json.dumps({"v": 1, "node": "lab-b", "t": "rooms",
                                              **bad}).encode(), 0.0)
    assert a.hub.federation.dropped == dropped + 4
    assert [r.rooms for r in a.hub.federation.nodes["lab-b"].members.values()] == [["lobby"]]


def test_a_new_user_of_another_node_is_in_its_lobby_from_the_nick_message_on():
    a, b, deliver, channel, logs = two_nodes()
    b.user("bob")
    sent = [json.loads(raw) for raw in channel]
    assert [m["t"] for m in sent if m["t"] in ("nick", "rooms")] == ["nick"]   # one message
    deliver()
    assert [r.nick for r in a.hub.federation.members_of("lobby")] == ["bob"]
    dropped = a.hub.federation.dropped
    a.hub.federation.received(json.dumps({"v": 1, "node": "lab-b", "t": "nick",
                                          "nick": "eve", "old": None,
                                          "rooms": "lobby"}).encode(), 0.0)
    assert a.hub.federation.dropped == dropped + 1
