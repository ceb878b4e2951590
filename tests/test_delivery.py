"""Files addressed to people, driven by hand: asked, answered, kept,
fetched, expired."""
import pytest

from tekcos.delivery import ANSWERED_KEPT, OFFER_SILENCE, Deliveries, Ready
from tests.memory import Server

SHA = "ab" * 32


class Recorder:
    """Stands in for the store."""

    def __init__(self):
        self.rows = {}
        self.fetched = []
        self.removed = []

    def add_delivery(self, ready):
        self.rows[ready.code] = ready

    def mark_fetched(self, code):
        self.fetched.append(code)

    def remove_delivery(self, code):
        self.rows.pop(code, None)
        self.removed.append(code)


@pytest.fixture
def world(tmp_path):
    server = Server()
    store = Recorder()
    deliveries = Deliveries(server.hub, store, server.clock.seconds, str(tmp_path),
                            keep_days=1, quota=10_000, udp_port=9000)
    server.hub.deliveries = deliveries
    server.deliveries = deliveries
    server.store = store
    server.dir = tmp_path
    return server


def offer(world, recipient="bob", size=1000, owner="client:1", host="127.0.0.7",
          sha=SHA, name="report.pdf"):
    return world.deliveries.decide({"for": recipient, "name": name, "size": size,
                                    "sha256": sha, "from": "alice"}, host, owner,
                                   world.clock.seconds())


def number_in(text):
    return text.split("/accept ")[1].split()[0]


def test_the_recipient_is_asked_once_and_the_push_waits_for_the_answer(world):
    bob = world.user("bob")
    assert offer(world) == ("wait", "waiting for bob to accept")
    text = bob.read()
    assert "*** alice offers you report.pdf (1.0 KB). /accept 1 or /decline 1" in text
    assert offer(world) == ("wait", "waiting for bob to accept")     # a repeat: not asked again
    assert bob.read() == ""
    bob.type("/accept 1\r\n")
    assert "Accepted report.pdf from alice" in bob.read()
    assert offer(world) == ("accepted", 1)


def test_declined_is_said_to_every_repeat_then_forgotten(world):
    bob = world.user("bob")
    alice = world.user("alice", host="127.0.0.7")
    offer(world)
    bob.type("/decline 1\r\n")
    assert "*** bob declined report.pdf" in alice.read()
    assert offer(world) == ("refused", "bob declined report.pdf")
    assert offer(world) == ("refused", "bob declined report.pdf")
    world.clock.advance(ANSWERED_KEPT + 1)
    world.deliveries.tick(world.clock.seconds())
    assert offer(world) == ("wait", "waiting for bob to accept")     # a new offer: asked again


def test_nobody_there_or_over_quota_is_refused_before_anyone_is_asked(world):
    assert offer(world, "nobody") == ("refused", "no such nick: nobody (not connected)")
    assert offer(world, "#nowhere") == ("refused", "no such room: #nowhere")
    world.user("bob")
    verdict, why = offer(world, size=20_000)
    assert verdict == "refused" and why.startswith("over the quota")


def test_only_the_sessions_asked_may_answer_and_see_the_code(world):
    bob, carol = world.user("bob"), world.user("carol")
    offer(world)
    carol.type("/accept 1\r\n")
    assert "no offer 1 for you" in carol.read()
    bob.type("/accept 1\r\n")
    world.deliveries.delivered(1, ".for/report.pdf", 1000, world.clock.seconds())
    text = bob.read()
    code = text.split("tekcos get ")[1].split()[0]
    assert "*** report.pdf from alice is ready: tekcos get " in text
    assert text.split("tekcos get ")[1].split()[2] == "10.0.0.1:9000"   # the address it reached
    assert len(code) >= 22 and code in world.store.rows
    assert code not in carol.read()
    carol.type("/files\r\n")
    assert code not in carol.read()
    bob.type("/files\r\n")
    assert code in bob.read()
    # A later user taking the nick gets nothing.
    bob.close()
    again = world.user("bob")
    again.type("/files\r\n")
    assert code not in again.read()
    assert world.deliveries.lookup(code, world.clock.seconds()) is not None


def test_a_room_is_asked_and_every_member_told(world):
    bob, carol = world.user("bob"), world.user("carol")
    for user in (bob, carol):
        user.type("/join games\r\n")
    world.user("dave")    # in the lobby: not asked
    assert offer(world, "#games")[0] == "wait"
    assert "offers #games report.pdf" in carol.read()
    bob.type("/accept 1\r\n")
    assert offer(world, "#games") == ("accepted", 1)
    world.deliveries.delivered(1, ".for/report.pdf", 1000, world.clock.seconds())
    assert "is ready: tekcos get" in bob.read() and "is ready: tekcos get" in carol.read()


def test_a_recipient_who_leaves_withdraws_the_offer(world):
    bob = world.user("bob")
    offer(world)
    bob.close()
    assert offer(world) == ("refused", "bob left before answering")


def test_a_silent_sender_withdraws_its_offer(world):
    bob = world.user("bob")
    offer(world)
    bob.read()
    world.clock.advance(OFFER_SILENCE + 1)
    world.deliveries.tick(world.clock.seconds())
    assert "alice withdrew the offer of report.pdf" in bob.read()
    bob.type("/accept 1\r\n")
    assert "no offer 1 for you" in bob.read()


def test_expired_files_go_with_their_rows_and_codes(world):
    bob = world.user("bob")
    offer(world)
    bob.type("/accept 1\r\n")
    (world.dir / ".for").mkdir()
    (world.dir / ".for" / "report.pdf").write_bytes(b"x" * 1000)
    world.deliveries.delivered(1, ".for/report.pdf", 1000, world.clock.seconds())
    [code] = world.store.rows
    world.clock.advance(86400 - 1)
    assert world.deliveries.tick(world.clock.seconds()) == 0
    world.clock.advance(2)
    assert world.deliveries.lookup(code, world.clock.seconds()) is None
    assert world.deliveries.tick(world.clock.seconds()) == 1
    assert world.store.rows == {} and not (world.dir / ".for" / "report.pdf").exists()


def test_codes_that_are_not_codes_are_not_looked_up(world):
    world.deliveries.restore([Ready("A" * 22, ".for/x", "x", 1, SHA, "alice", "h", "bob",
                                    0.0, 1e12)])
    now = world.clock.seconds()
    assert world.deliveries.lookup("A" * 22, now) is not None
    for bad in (None, 5, "", "A" * 21 + "!", "A" * 65, "../../etc/passwd"):
        assert world.deliveries.lookup(bad, now) is None


def test_a_fetch_is_recorded_and_the_sender_told(world):
    alice = world.user("alice", host="127.0.0.7")
    world.deliveries.restore([Ready("B" * 22, ".for/x", "x.bin", 1, SHA, "alice", "127.0.0.7",
                                    "bob", 0.0, 1e12)])
    world.deliveries.fetched("B" * 22)
    assert world.store.fetched == ["B" * 22]
    assert "*** bob has fetched x.bin" in alice.read()


def test_a_file_the_operator_removed_stops_counting(world):
    bob = world.user("bob")
    (world.dir / ".for").mkdir()
    for name in ("a.bin", "b.bin"):
        (world.dir / ".for" / name).write_bytes(b"x")
    world.deliveries.restore([Ready(code, f".for/{name}", name, 6000, SHA, "alice", "127.0.0.7",
                                    "bob", 0.0, 1e12)
                              for code, name in (("C" * 22, "a.bin"), ("D" * 22, "b.bin"))])
    assert offer(world, size=1000)[1].startswith("over the quota")
    (world.dir / ".for" / "a.bin").unlink()
    assert world.deliveries.tick(world.clock.seconds()) == 1
    assert offer(world, size=1000) == ("wait", "waiting for bob to accept")
    assert "D" * 22 in world.deliveries.ready and "C" * 22 not in world.deliveries.ready
    assert world.store.removed == ["C" * 22]
    bob.read()


def test_a_code_never_reads_as_an_option(monkeypatch):
    import secrets

    from tekcos import delivery
    from tekcos.cli import build_parser
    made = iter(["-startsWithDash_xxxxx", "AfterTheDash-xxxxxxx"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(made))
    code = delivery.new_code()
    assert code == "AfterTheDash-xxxxxxx"
    args = build_parser().parse_args(["get", code, "--from", "h:9000"])
    assert args.code == code
