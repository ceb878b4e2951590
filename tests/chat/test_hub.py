"""Hub tests with plain member objects: no transport involved."""
import time

from tekcos.chat.hub import Hub, format_idle


class Member:
    def __init__(self):
        self.nick = None
        self.room = None
        self.rooms = {}
        self.tags = False
        self.ids = False
        self.seen_ids = None
        self.peer = None
        self.last_active = 0.0
        self.operator = False
        self.away = ""
        self.ignored = set()
        self.out: list[str] = []

    def write(self, data: bytes) -> None:
        self.out.extend(data.decode().splitlines())

    def send(self, text: str) -> None:
        self.out.append(text)

    def write_lines(self, lines) -> None:
        self.out.extend(lines)


def make_hub(history=20):
    now = [1000.0]
    hub = Hub(lambda: now[0], history=history, localtime=time.gmtime)
    return hub, now


def test_stamp_is_hh_mm_and_follows_the_clock():
    hub, now = make_hub()
    now[0] = 14 * 3600 + 2 * 60 + 5
    assert hub.stamp() == "[14:02]"
    now[0] += 60
    assert hub.stamp() == "[14:03]"


def test_register_join_say_and_rooms_disappear_when_empty():
    hub, _ = make_hub()
    a, b = Member(), Member()
    assert hub.register(a, "alice") is None
    assert hub.register(b, "bob") is None
    assert a.out[-1] == "[00:16] -- bob joined lobby"
    assert hub.join(a, "dev") is None
    assert hub.part(a, "lobby") is None
    assert "[00:16] -- alice left lobby" in b.out
    assert [r for r, _, _ in hub.room_list()] == ["dev", "lobby"]
    hub.say(a, "hi")
    assert "[00:16] <alice> hi" in a.out and not any("hi" in line for line in b.out)
    assert hub.part(a) is None
    assert "*** You are in lobby (2 people here). /help lists commands." in a.out
    assert [r for r, _, _ in hub.room_list()] == ["lobby"]


def test_history_is_replayed_on_join_and_bounded():
    hub, _ = make_hub(history=2)
    a, b = Member(), Member()
    hub.register(a, "alice")
    for word in ["one", "two", "three"]:
        hub.say(a, word)
    hub.register(b, "bob")
    replay = [line for line in b.out if line.startswith("(history)")]
    assert replay == ["(history) [00:16] <alice> two", "(history) [00:16] <alice> three"]


def test_nick_rules():
    hub, _ = make_hub()
    a, b = Member(), Member()
    hub.register(a, "alice")
    assert "taken" in hub.register(b, "ALICE")
    assert "Invalid nick" in hub.register(b, "a b")
    assert b.room is None and b.nick is None
    assert hub.rename(a, "Alice") is None        # own nick in another case is fine
    assert a.out[-1].endswith("-- alice is now known as Alice")
    hub.register(b, "bob")
    assert "taken" in hub.rename(b, "alice")


def test_leave_frees_the_nick_and_tells_the_room():
    hub, _ = make_hub()
    a, b = Member(), Member()
    hub.register(a, "alice")
    hub.register(b, "bob")
    hub.leave(a, "quit: bye")
    assert b.out[-1].endswith("-- alice has quit (quit: bye)")
    c = Member()
    assert hub.register(c, "alice") is None


def test_batch_coalesces_and_keeps_order_with_direct_replies():
    hub, _ = make_hub()
    a, b = Member(), Member()
    hub.register(a, "alice")
    hub.register(b, "bob")
    writes = []
    b.write = lambda data: writes.append(data)
    with hub.batch():
        hub.say(a, "one")
        hub.say(a, "two")
        assert writes == []                     # queued until the batch ends
        hub.whisper(a, "bob", "psst")           # b.send: flushes first
        hub.say(a, "three")
    assert writes[0] == b"[00:16] <alice> one\r\n[00:16] <alice> two\r\n"
    assert b.out[-1] == "[00:16] *alice* psst"
    assert writes[1] == b"[00:16] <alice> three\r\n"


def test_join_inside_a_batch_does_not_see_earlier_lines():
    hub, _ = make_hub(history=0)
    a, b = Member(), Member()
    hub.register(a, "alice")
    hub.register(b, "bob")
    hub.join(b, "dev")
    hub.part(b, "lobby")
    b.out.clear()
    with hub.batch():
        hub.say(a, "before bob came back")
        hub.join(b, "lobby")
        hub.say(a, "after")
    assert not any("before bob" in line for line in b.out)
    assert b.out[-1] == "[00:16] <alice> after"


def test_who_reports_idle_time():
    hub, now = make_hub()
    a = Member()
    hub.register(a, "alice")
    a.last_active = now[0]
    now[0] += 125
    assert list(hub.who(hub.lobby)) == ["alice (idle 2m05s)"]


def test_format_idle():
    assert format_idle(5) == "5s"
    assert format_idle(3661) == "1h01m"
    assert format_idle(90000) == "1d01h"


def test_a_nick_that_looks_like_one_in_use_is_refused_and_freed_with_it():
    hub, _ = make_hub()
    alice, fake = Member(), Member()
    assert hub.register(alice, "alice") is None
    error = hub.register(fake, "\u0430lice")                 # Cyrillic а
    assert error == "The nick \u0430lice looks like alice, who is here; choose another."
    assert hub.register(fake, "b\u03bfb") is None           # nobody looks like it yet
    assert "looks like" in hub.register(Member(), "bob")
    assert hub.rename(fake, "mallory") is None              # the old look is released
    assert hub.register(Member(), "bob") is None
    hub.leave(alice, "quit")
    assert hub.register(Member(), "\u0430lice") is None


def test_a_crowded_room_summarises_joins_and_quits_before_its_next_line():
    now = [1000.0]
    hub = Hub(lambda: now[0], localtime=time.gmtime, crowd=3)
    members = [Member() for _ in range(6)]
    for i, m in enumerate(members[:3]):
        hub.register(m, f"m{i}")
    first = members[0]
    first.out.clear()
    for i, m in enumerate(members[3:], 3):
        hub.register(m, f"m{i}")                 # the room has 3 or more: no notice
    hub.leave(members[4], "quit")
    assert first.out == []
    hub.say(members[1], "hello")
    assert first.out == ["[00:16] -- 3 joined, 1 left (5 here now)", "[00:16] <m1> hello"]
    first.out.clear()
    hub.say(members[1], "again")
    assert first.out == ["[00:16] <m1> again"]    # told once


def test_history_is_bounded_in_bytes_as_well_as_lines():
    now = [1000.0]
    hub = Hub(lambda: now[0], history=100, localtime=time.gmtime, history_bytes=1000)
    talker = Member()
    hub.register(talker, "t")
    for i in range(50):
        hub.say(talker, f"{i:02d}" + "x" * 98)
    kept = list(hub.lobby.history)
    assert sum(len(line) for line in kept) <= 1000
    assert kept[-1].endswith("49" + "x" * 98) and len(kept) == 8
    assert hub.lobby.history_bytes == sum(len(line) for line in kept)


def test_pushed_lines_are_rate_limited_per_sender_address():
    from tekcos.push.receiver import Received
    now = [1000.0]
    hub = Hub(lambda: now[0], localtime=time.gmtime, push_rate=1, push_burst=3)
    reader = Member()
    hub.register(reader, "reader")
    reader.out.clear()
    for i in range(10):
        hub.push_received(Received("message", "bot", ("10.0.0.7", 5), "", 3, f"m{i}"))
    hub.push_received(Received("message", "other", ("10.0.0.8", 5), "", 2, "ok"))
    assert [line.split("> ")[1] for line in reader.out] == ["m0", "m1", "m2", "ok"]
    assert hub.dropped_push_lines == 7
    now[0] += 1
    hub.push_received(Received("message", "bot", ("10.0.0.7", 5), "", 3, "later"))
    assert reader.out[-1].endswith("<bot@10.0.0.7> later")


def test_bidi_controls_never_reach_others_in_pushed_names_and_lines():
    from tekcos.push.receiver import Received
    hub, _ = make_hub()
    reader = Member()
    hub.register(reader, "reader")
    reader.out.clear()
    hub.push_received(Received("file", "ev\u202eil", ("10.0.0.7", 5), "invoice\u202efdp.exe",
                               10))
    hub.push_received(Received("message", "x", ("10.0.0.7", 5), "", 3, "a\u2066b\u2028c"))
    text = "\n".join(reader.out)
    assert not any(ch in text for ch in "\u202e\u2066\u2028")
    assert "evil@10.0.0.7 pushed invoicefdp.exe" in text


def test_the_speaker_sees_its_own_line_first_and_everyone_once():
    hub, _ = make_hub()
    order = []

    class Logged(Member):
        def write(self, data):
            order.append(self.nick)
            super().write(data)

    members = [Logged() for _ in range(4)]
    for i, m in enumerate(members):
        hub.register(m, f"m{i}")
    order.clear()
    hub.say(members[2], "hi")
    assert order == ["m2", "m0", "m1", "m3"]
    order.clear()
    with hub.batch():                  # coalesced output keeps the same rule
        hub.say(members[3], "one")
        hub.say(members[3], "two")
    assert order == ["m3", "m0", "m1", "m2"]
    assert members[0].out[-2:] == ["[00:16] <m3> one", "[00:16] <m3> two"]


# -- many rooms at once ---------------------------------------------------------------
def test_join_adds_a_room_and_other_rooms_lines_arrive_tagged():
    hub, now = make_hub()
    now[0] = 14 * 3600 + 2 * 60
    a, b, c = Member(), Member(), Member()
    for member, nick in ((a, "alice"), (b, "bob"), (c, "carol")):
        hub.register(member, nick)
    hub.join(a, "dev")
    hub.join(b, "dev")
    assert list(a.rooms) == [hub.lobby, hub.rooms["dev"]] and a.room is hub.rooms["dev"]
    a.out.clear(), b.out.clear(), c.out.clear()
    hub.say(c, "lunch?")                  # the lobby: alice and bob are there too
    hub.say(b, "build is green")          # dev, bob's current room
    assert a.out == ["[14:02] #lobby <carol> lunch?", "[14:02] <bob> build is green"]
    assert c.out == ["[14:02] <carol> lunch?"]     # carol never joined a second room
    assert hub.switch(a, "lobby") is None
    assert a.out[-1] == "*** Now talking in lobby (3 here)."
    a.out.clear()
    hub.say(a, "yes")
    hub.say(b, "deploying")
    assert a.out == ["[14:02] <alice> yes", "[14:02] #dev <bob> deploying"]
    assert "[14:02] <alice> yes" in c.out


def test_join_of_a_room_one_is_in_switches_and_part_names_a_room():
    hub, _ = make_hub()
    a, b = Member(), Member()
    hub.register(a, "alice")
    hub.register(b, "bob")
    hub.join(a, "dev")
    hub.join(a, "ops")
    assert hub.join(a, "DEV") is None and a.room is hub.rooms["dev"]
    assert hub.join(a, "dev") == "You are already talking in dev."
    assert hub.switch(a, "nowhere") == "You are not in nowhere; /join nowhere first."
    assert hub.part(a, "ops") is None
    assert a.out[-1] == "*** You left ops." and a.room is hub.rooms["dev"]
    assert "ops" not in hub.rooms                  # its last member left
    assert hub.part(a) is None                     # dev, the current room
    assert a.out[-1] == "*** You left dev; now talking in lobby." and a.room is hub.lobby
    assert hub.part(a, "dev") == "You are not in dev."
    assert "no other room" in hub.part(a)


def test_nobody_is_left_in_no_room_and_the_room_cap_holds():
    hub, _ = make_hub()
    hub.max_rooms = 3
    a = Member()
    hub.register(a, "alice")
    hub.join(a, "dev")
    assert hub.part(a, "lobby") is None
    assert list(a.rooms) == [hub.rooms["dev"]]
    assert hub.part(a) is None                     # the only room: back to the lobby
    assert list(a.rooms) == [hub.lobby] and a.room is hub.lobby
    hub.join(a, "one")
    hub.join(a, "two")
    assert hub.join(a, "three") == "You are in 3 rooms, the most allowed here; /part one first."
    assert "three" not in hub.rooms and a.room is hub.rooms["two"]


def test_quit_and_rename_reach_every_room_and_the_page_gets_every_line_tagged():
    hub, _ = make_hub()
    a, b, page = Member(), Member(), Member()
    page.tags = True
    hub.register(a, "alice")
    hub.register(page, "pat")
    hub.register(b, "bob")
    hub.join(a, "dev")
    hub.join(page, "dev")
    page.out.clear(), b.out.clear()
    hub.say(a, "hi")
    assert page.out == ["[00:16] #dev <alice> hi"]            # its current room, tagged too
    hub.rename(a, "ally")
    assert page.out[-2:] == ["[00:16] #lobby -- alice is now known as ally",
                             "[00:16] #dev -- alice is now known as ally"]
    assert b.out[-1] == "[00:16] -- alice is now known as ally"
    hub.leave(a, "bye")
    assert page.out[-2:] == ["[00:16] #lobby -- ally has quit (bye)",
                             "[00:16] #dev -- ally has quit (bye)"]
    assert "dev" in hub.rooms and a not in hub.rooms["dev"].members


def test_history_replayed_to_the_page_is_tagged_and_batches_tag_per_member():
    hub, _ = make_hub()
    a, page = Member(), Member()
    page.tags = True
    hub.register(a, "alice")
    hub.join(a, "dev")
    hub.say(a, "first")
    hub.register(page, "pat")
    hub.join(page, "dev")
    assert "(history) [00:16] #dev <alice> first" in page.out
    page.out.clear(), a.out.clear()
    hub.switch(a, "lobby")
    a.out.clear()
    with hub.batch():
        hub.say(page, "one")
        hub.say(page, "two")
    assert a.out == ["[00:16] #dev <pat> one", "[00:16] #dev <pat> two"]
    assert page.out == ["[00:16] #dev <pat> one", "[00:16] #dev <pat> two"]


def test_kick_takes_one_out_of_that_room_only():
    hub, _ = make_hub()
    a, b = Member(), Member()
    hub.register(a, "alice")
    hub.register(b, "bob")
    hub.join(a, "dev")
    hub.join(b, "dev")
    from tekcos.chat import moderation
    assert moderation.kick(hub, a, "bob", "spam") is None
    assert list(b.rooms) == [hub.lobby] and b.room is hub.lobby
    assert "*** You were kicked from dev by alice (spam)." in b.out
    hub.join(b, "ops")
    hub.part(b, "lobby")
    hub.join(b, "dev")
    moderation.kick(hub, a, "bob", "")
    assert list(b.rooms) == [hub.rooms["ops"]]     # still in ops: not sent to the lobby


def test_a_page_learns_the_newest_line_id_and_after_a_restart_gets_only_what_it_missed():
    hub, _ = make_hub()
    a, b, page = Member(), Member(), Member()
    page.tags = page.ids = True
    hub.register(a, "alice")
    hub.register(b, "bob")
    hub.register(page, "pat")
    page.out.clear(), b.out.clear()
    hub.say(a, "one")
    with hub.batch():
        hub.say(a, "two")
        hub.say(a, "three")
    markers = [line for line in page.out if line.startswith("\x1f")]
    last = hub.lobby.last_id
    assert markers[-1] == f"\x1f#lobby {last}" and len(markers) == 2   # one per write
    assert not any("\x1f" in line for line in b.out + a.out)           # telnet users: never
    # The same page after a restart of the server: it saw up to "two".
    restarted, _ = make_hub()
    restarted.restore(snapshot_of(hub))
    again = Member()
    again.tags = again.ids = True
    again.seen_ids = {"#lobby": last - 1}
    restarted.register(again, "pat")
    assert [line for line in again.out if line.startswith("(history)")] == \
        ["(history) [00:16] #lobby <alice> three"]
    assert again.out[again.out.index("*** End of history.") + 1] == f"\x1f#lobby {last}"
    # Nothing new: no history block at all.  No ids: all of it, as before.
    quiet, fresh = Member(), Member()
    quiet.tags = quiet.ids = True
    quiet.seen_ids = {"#lobby": last}
    restarted.register(quiet, "quiet")
    assert not any(line.startswith("(history)") for line in quiet.out)
    restarted.register(fresh, "fresh")
    assert sum(line.startswith("(history)") for line in fresh.out) >= 3


def snapshot_of(hub):
    """What a store would give back of ``hub``'s rooms (tekcos.store.Snapshot)."""
    from tekcos.store import Snapshot
    snapshot = Snapshot(epoch=hub.history_epoch, last_id=hub.next_line_id - 1)
    for key, room in hub.rooms.items():
        lines, ids = room.kept()
        snapshot.rooms[key] = (room.name, room.topic, lines)
        snapshot.line_ids[key] = ids
    return snapshot
