"""What tekcos chat knows of the room's nicks, for Tab (chat/terminal.py);
the keys themselves are driven in a pty in test_client.py."""
from tekcos.chat.terminal import Members


def test_members_follow_who_joins_quits_renames_and_speakers():
    m = Members()
    for line in ["*** You are in dev (3 people here). /help lists commands.",
                 "*** dev (3): @alice (idle 0s), bob (idle 3m02s, away: lunch), Bé (idle 1s)",
                 "[14:02] -- carol joined dev",
                 "[14:03] -- bob has quit (connection lost)",
                 "[14:03] -- alice is now known as alicia",
                 "[14:04] <dave> hi",
                 "[14:04] * erin waves",
                 "[14:05] -- carol was kicked by alicia (spam)"]:
        m.seen(line)
    assert m.nicks == {"alicia", "Bé", "dave", "erin"}
    assert m.completing("b") == ["Bé"] and m.completing("") == sorted(m.nicks)
    m.seen("*** dev (2): @alicia bob")           # /names
    assert m.nicks == {"alicia", "bob"}
    m.seen("*** You are in lobby (you are alone here). /help lists commands.")
    assert m.nicks == set()


def test_members_of_other_rooms_come_from_tagged_lines():
    m = Members()
    m.seen("[14:02] #dev -- dora joined dev")
    m.seen("[14:02] #lobby <lou> lunch?")
    m.seen("[14:02] #dev * dora waves")
    assert m.completing("") == ["dora", "lou"]
    m.seen("[14:02] #dev -- dora is now known as dot")
    assert m.completing("d") == ["dot"]
    m.seen("[14:02] #dev -- dot left dev")        # she may still share this room
    assert m.completing("d") == ["dot"]
