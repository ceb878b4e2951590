"""Room operators, bans, invitations, ignore lists, away, /kill and /wall
(chat/moderation.py), through the commands people type."""
from tests.memory import Server, matching


def room_with(server, *nicks, room="dev"):
    """Users that joined ``room`` in order (the first one created it) and
    left the lobby."""
    users = [server.user(nick, host=f"10.0.0.{i + 1}") for i, nick in enumerate(nicks)]
    for user in users:
        user.type(f"/join {room}\n/part lobby\n")
    for user in users:
        user.read()
    return users


def test_the_creator_of_a_room_kicks_and_the_kicked_goes_to_the_lobby():
    server = Server()
    alice, bob, carol = room_with(server, "alice", "bob", "carol")
    bob.type("/kick carol\n")
    assert bob.lines() == ["*** Error: only the operators of dev may /kick (whoever created it)."]
    alice.type("/kick carol spamming\n")
    assert "*** You were kicked from dev by alice (spamming)." in carol.lines()
    assert carol.protocol.session.room.name == "lobby"
    assert matching(bob.lines(), "-- carol was kicked by alice \\(spamming\\)")
    carol.type("/join dev\n")                       # a kick is not a ban
    assert carol.protocol.session.room.name == "dev"


def test_refusals_say_why():
    server = Server()
    alice, bob = room_with(server, "alice", "bob")
    lobby = server.user("lou")
    for line, why in [
        ("/kick alice", "you cannot /kick yourself."),
        ("/kick lou", "lou is not in dev."),
        ("/ban lou", "lou is not in dev."),
        ("/kick nobody", "no such nick: nobody."),
        ("/kick", "usage: /kick NICK"),
        ("/mode +k", "usage: /mode +i (invite-only) or /mode -i; no other mode exists."),
    ]:
        alice.type(line + "\n")
        assert alice.lines() == [f"*** Error: {why}"], line
    alice.type("/op bob\n")
    assert matching(alice.lines(), "alice made bob an operator of dev")
    bob.read()
    bob.type("/kick alice\n")                       # operators cannot kick operators
    assert bob.lines() == ["*** Error: alice is an operator of dev."]
    lobby.type("/kick alice\n")
    assert "only the operators of lobby" in lobby.lines()[0]


def test_a_ban_keeps_the_nick_its_look_alikes_and_its_address_out_until_unban():
    server = Server()
    alice, bob = room_with(server, "alice", "bob")
    alice.type("/ban bob\n")
    assert "*** You were banned from dev by alice." in bob.lines()
    bob.type("/join dev\n")
    assert bob.lines() == ["*** Error: You are banned from dev."]
    # Another nick from bob's address, and a look-alike from elsewhere.
    again = server.user("robert", host="10.0.0.2")
    again.type("/join dev\n")
    assert again.lines() == ["*** Error: You are banned from dev."]
    bob.close()
    look = server.user("b0b", host="10.0.0.9")
    look.type("/nick bоb\n")                         # Cyrillic о
    look.read()
    look.type("/join dev\n")
    assert "banned" in look.lines()[0]
    alice.type("/unban bob\n")
    assert matching(alice.lines(), "alice lifted the ban on bob")
    again.type("/join dev\n")
    assert matching(again.lines(), "You are in dev")


def test_a_ban_ends_when_the_room_empties():
    server = Server()
    alice, bob = room_with(server, "alice", "bob")
    alice.type("/ban bob\n/part\n")
    bob.type("/join dev\n")
    assert matching(bob.lines(), "You are in dev")
    assert server.hub.rooms["dev"].rules.ops == {bob.protocol.session}   # it is bob's now


def test_invite_only_rooms_take_invited_nicks_only():
    server = Server()
    alice, bob = room_with(server, "alice", "bob")
    carol, dave = server.user("carol"), server.user("dave")
    carol.read()
    bob.type("/mode +i\n")
    assert bob.lines() == ["*** Error: only the operators of dev may change its modes."]
    alice.type("/mode +i\n")
    assert matching(alice.lines(), "alice made dev invite-only")
    carol.type("/join dev\n")
    assert carol.lines() == ["*** Error: Dev is invite-only; ask a member for an /invite."]
    bob.read()
    bob.type("/invite carol\n")
    assert bob.lines() == ["*** Error: only the operators of invite-only dev may /invite."]
    alice.type("/invite carol\n")
    assert carol.lines() == ["*** alice invites you to dev: /join dev"]
    carol.type("/join dev\n")
    assert matching(carol.lines(), "You are in dev")
    dave.read()
    dave.type("/join dev\n")
    assert "invite-only" in dave.lines()[0]
    alice.read()
    alice.type("/mode\n")
    assert alice.lines() == ["*** Modes of dev: +i (invite-only). /mode +i or -i changes it."]


def test_server_operators_run_every_room_kill_and_wall():
    server = Server()
    server.hub.oper_password = "sesame"
    alice, bob = room_with(server, "alice", "bob")
    oper = server.user("root")
    oper.type("/kill bob\n")
    assert "only server operators may /kill" in oper.lines()[0]
    oper.type("/oper sesame\n")
    assert oper.lines() == ["*** You are now an operator."]
    oper.type("/join dev\n")
    oper.read()
    oper.type("/kick alice\n")                     # even the room's creator
    assert matching(alice.lines(), "You were kicked from dev by root")
    oper.type("/wall restart at noon\n")
    for user in (alice, bob, oper):
        assert "*** Notice from root to everyone: restart at noon" in user.lines()
    oper.type("/kill bob flooding\n")
    assert "*** You were disconnected by root (flooding)." in bob.lines()
    assert bob.transport.disconnecting
    assert server.hub.member("bob") is None


def test_ignore_hides_lines_and_messages_from_the_nick_and_its_look_alikes():
    server = Server()
    alice, bob, carol = room_with(server, "alice", "bob", "carol")
    alice.type("/ignore bob\n")
    assert alice.lines() == ["*** You no longer see what bob (or a look-alike) says."]
    bob.type("hello\n/msg alice psst\n/me waves\n")
    carol.type("hi all\n")
    seen = alice.lines()
    assert not matching(seen, "bob") and matching(seen, "<carol> hi all")
    assert matching(carol.lines(), "<bob> hello")      # others still see bob
    bob.type("/nick bоb\n")                             # Cyrillic о: still ignored? no,
    bob.read()                                          # the skeleton of bоb is bob's
    bob.type("sneaky\n")
    assert not matching(alice.lines(), "sneaky")
    alice.type("/ignore\n")
    assert alice.lines() == ["*** You ignore: bob"]
    alice.type("/unignore bob\n")
    alice.read()
    bob.type("again\n")
    assert matching(alice.lines(), "again")
    alice.type("/unignore bob\n")
    assert alice.lines() == ["*** Error: you do not ignore bob."]


def test_ignore_lists_are_bounded():
    server = Server(rate=0)
    alice = server.user("alice")
    for i in range(100):
        alice.type(f"/ignore spammer{i}\n")
    alice.read()
    alice.type("/ignore one_more\n")
    assert alice.lines() == ["*** Error: you ignore 100 nicks already; /unignore one first."]
    alice.type("/ignore alice\n")
    assert alice.lines() == ["*** Error: you cannot ignore yourself."]


def test_away_shows_in_who_whois_and_to_whoever_writes():
    server = Server()
    alice, bob = server.user("alice"), server.user("bob")
    alice.read()
    alice.type("/away at lunch\n")
    assert alice.lines() == ["*** You are marked away: at lunch"]
    bob.type("/msg alice are you there\n")
    assert bob.lines()[-1] == "*** alice is away: at lunch"
    bob.type("/who\n")
    assert "alice (idle 0s, away: at lunch)" in bob.lines()[0]
    bob.type("/whois alice\n")
    lines = bob.lines()
    assert lines[0].startswith("*** alice: in lobby, idle 0s, connected since")
    assert "***   away: at lunch" in lines
    assert not matching(lines, "address")            # only for server operators
    assert matching(alice.lines(), r"\*bob\* are you there")   # away still receives
    alice.type("/away\n")
    assert alice.lines() == ["*** You are back."]
