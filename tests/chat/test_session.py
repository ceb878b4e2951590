"""A user's life through the protocol adapter on a StringTransport."""
import re

import pytest

from tekcos.chat.session import clean_text, text_encoding
from tests.memory import STAMP, Server, matching


def test_greeting_then_nick_prompt_and_first_line_is_the_nick():
    server = Server(motd="be nice\nno spam")
    c = server.connect()
    lines = c.lines()
    assert lines[0].startswith("*** Welcome to test")
    assert lines[1:3] == ["*** be nice", "*** no spam"]
    assert "Choose a nick" in lines[-1]
    c.type("alice\n")
    assert "*** You are in lobby (you are alone here). /help lists commands." in c.lines()


def test_taken_and_invalid_nicks_get_a_reason_and_another_prompt(server):
    server.user("alice")
    c = server.connect()
    c.read()
    c.type("Alice\n")
    lines = c.lines()
    assert lines == ["*** Error: The nick Alice is taken; choose another.", "*** Choose a nick:"]
    c.type("bad nick!\n")
    assert "Invalid nick" in c.lines()[0]
    c.type("/nick bob\n")   # IRC habit works too
    assert any("You are in lobby" in line for line in c.lines())


def test_lines_go_to_the_room_with_stamp_and_nick(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("hello there\r\n")
    for client in (a, b):
        assert re.fullmatch(STAMP + r" <bob> hello there", client.lines()[0])


def test_me_msg_topic_history_who_rooms(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("/me waves\n")
    assert re.fullmatch(STAMP + r" \* bob waves", a.lines()[0])
    b.read()
    b.type("/msg ALICE secret\n")
    assert re.fullmatch(STAMP + r" \*bob\* secret", a.lines()[0])
    assert re.fullmatch(STAMP + r" -> \*alice\* secret", b.lines()[0])
    b.type("/msg nobody x\n")
    assert "No such nick: nobody" in b.lines()[0]
    b.type("/topic Friday release\n")
    assert a.lines()[0].endswith("-- bob changed the topic to: Friday release")
    b.read()
    a.type("/topic\n")
    assert a.lines() == ["*** Topic of lobby: Friday release"]
    a.type("/history 2\n")
    lines = a.lines()
    assert lines[0] == "*** Last 2 lines of lobby:"
    assert lines[1].startswith("(history) ") and lines[1].endswith("* bob waves")
    assert lines[2].endswith("bob changed the topic to: Friday release")
    a.type("/who\n")
    assert a.lines() == ["*** lobby (2): alice (idle 0s), bob (idle 0s)"]
    a.type("/join dev\n/part lobby\n")
    a.type("/rooms\n")
    assert a.lines()[-2:] == ["***   dev (1)", "***   lobby (1): Friday release"]


def test_join_replays_history_marked_and_part_returns_to_lobby(server):
    a, b = server.user("alice"), server.user("bob")
    a.type("/join dev\nfirst\nsecond\n")
    b.read()
    b.type("/join DEV\n")
    lines = b.lines()
    assert lines[0] == "*** Last 2 lines of dev:"
    assert re.fullmatch(r"\(history\) " + STAMP + " <alice> first", lines[1])
    assert lines[3] == "*** End of history."
    assert "*** You are in dev (2 people here). /help lists commands." in lines
    assert a.lines()[-1].endswith("-- bob joined dev")
    b.type("/part\n")
    assert a.lines()[-1].endswith("-- bob left dev")
    assert b.lines()[-1] == "*** You left dev; now talking in lobby."
    b.type("/part\n")
    assert "lobby already" in b.lines()[-1]


def test_nick_change_is_announced(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("/nick robert\n")
    assert a.lines()[0].endswith("-- bob is now known as robert")
    a.type("/msg robert hi\n")
    assert "*alice* hi" in b.lines()[-1]


def test_unknown_command_points_at_help(server):
    a = server.user("alice")
    a.type("/frobnicate now\n")
    assert a.lines() == ["*** Error: unknown command /frobnicate. Type /help for the list."]
    a.type("/help\n")
    help_text = "\n".join(a.lines())
    for cmd in ["/nick", "/who", "/rooms", "/join", "/part", "/msg", "/me", "/topic",
                "/history", "/quit", "/charset"]:
        assert cmd in help_text


def test_double_slash_sends_a_literal_slash(server):
    a = server.user("alice")
    a.type("//etc/hosts is a file\n")
    assert a.lines()[0].endswith("<alice> /etc/hosts is a file")


def test_quit_tells_the_room_and_closes(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("/quit off to lunch\nthis is never said\n")
    assert b.lines() == ["*** Bye."]
    assert b.transport.disconnecting
    # The line typed after /quit never reaches the room.
    seen = a.lines()
    assert seen and seen[-1].endswith("-- bob has quit (quit: off to lunch)")
    assert not any("never said" in line for line in seen)
    b.close()


def test_quit_notice_reaches_the_room(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("/quit off to lunch\n")
    lines = a.lines()
    assert len(lines) == 1 and lines[0].endswith("-- bob has quit (quit: off to lunch)")
    b.close()
    assert a.lines() == []   # no second notice when the socket then closes


def test_lost_connection_is_announced_and_frees_the_nick(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.close()
    assert a.lines()[0].endswith("-- bob has quit (connection lost)")
    again = server.user("bob")
    assert again.protocol.session.nick == "bob"


def test_invalid_utf8_is_replaced_and_the_sender_told_once(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type(b"caf\xe9\n")
    lines = b.lines()
    assert "not valid utf-8" in lines[0] and "/charset" in lines[0]
    assert lines[1].endswith("<bob> caf\ufffd")
    b.type(b"\xff\xfe again\n")   # 0xFF 0xFE: "IAC DONT" would eat 2 bytes; use others
    b.type(b"\xc3\x28 again\n")
    assert not matching(b.lines(), "not valid")
    assert a.lines()[0].endswith("<bob> caf\ufffd")


@pytest.mark.parametrize("raw, advice", [
    ("안녕하세요 여러분".encode("cp949"), "It looks like cp949: type /charset cp949."),
    # What Debian telnet sent without BINARY: 0x85 dropped, 0x9A turned into
    # IAC SUSP IAC DO TIMING-MARK (whose bytes the server removed).
    (b"\xec\x95\x88\xeb\x95\xed\x95\x98\xec\x84\xb8\xec\x94 \xf0\x9f\x91\x8d",
     "Some bytes were lost on the way"),
    (b"caf\xe9", "If your terminal uses another encoding, type /charset NAME"),
])
def test_the_charset_hint_names_the_charset_the_bytes_are_in(server, raw, advice):
    b = server.user("bob")
    b.type(raw + b"\n")
    hint = b.lines()[0]
    assert advice in hint
    if "cp949" not in advice:
        assert "cp949" not in hint    # never advice that would make things worse


def test_charset_cp949_both_ways(server):
    a, b = server.user("alice"), server.user("bob")
    b.type("/charset cp949\n")
    assert b.lines() == ["*** Charset set to cp949 for what you send and receive."]
    a.read()
    b.type("안녕하세요\n".encode("cp949"))
    assert a.lines()[0].endswith("<bob> 안녕하세요")
    assert b.read("cp949").endswith("<bob> 안녕하세요\r\n")
    a.type("반가워요\n")
    assert b.read("cp949").endswith("<alice> 반가워요\r\n")


def test_unsuitable_charsets_are_refused(server):
    a = server.user("alice")
    for name in ["klingon", "utf-16", "rot13", "base64"]:
        a.type(f"/charset {name}\n")
        assert "unknown or unsuitable charset" in a.lines()[0], name


def test_control_characters_never_reach_others(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("\x1b[2Jclear\x07 me\u009b\tnow\n")
    assert a.lines()[0].endswith("<bob> [2Jclear me now")


def test_bidi_controls_and_unicode_line_breaks_never_reach_others(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("pay \u202efdp.exe\u202c and\u2028more \u2067x\u2069 \u200fy\n")
    b.type("/topic \u202eevil\n")
    b.type("/me \u2029waves\n")
    lines = a.lines()
    assert lines[0].endswith("<bob> pay fdp.exe andmore x y")
    assert lines[1].endswith("-- bob changed the topic to: evil")
    assert lines[2].endswith("* bob waves")


def test_backspaces_edit_the_line():
    assert clean_text("helo\x08lo") == "hello"
    assert clean_text("\x7f\x7fab\x7f") == "a"


def test_text_encoding():
    assert text_encoding("latin-1") == "iso8859-1"
    assert text_encoding("UTF8") == "utf-8"
    assert text_encoding("utf-32") is None


def test_a_paste_over_the_rate_arrives_whole_in_order_and_paced():
    server = Server(rate=5, burst=3)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    # bob used one token for his nick: 2 lines go at once, the rest wait.
    b.type("".join(f"line{i}\n" for i in range(200)))
    said = matching(a.lines(), "<bob>")
    assert [line.split()[-1] for line in said] == ["line0", "line1"]
    assert len(matching(b.lines(), "Pacing your lines")) == 1     # told once
    b.type("/me is still pasting\n")                              # waits its turn too
    seen = []
    for _ in range(250):      # 198 waiting lines at 5 a second: 40 s
        server.clock.advance(0.2)
        seen += matching(a.lines(), "<bob>|\\* bob")
    assert [line.split()[-1] for line in seen][:198] == [f"line{i}" for i in range(2, 200)]
    assert seen[-1].endswith("* bob is still pasting")
    assert server.hub.dropped_flood == 0
    assert not server.clock.getDelayedCalls()
    b.type("later\n")
    assert a.lines()[-1].endswith("<bob> later")
    assert not matching(b.lines(), "Pacing")        # nothing waits: no notice


def test_beyond_the_waiting_room_lines_are_dropped_with_one_notice_and_a_count():
    server = Server(rate=5, burst=3, paste_lines=10)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("".join(f"line{i}\n" for i in range(100)))
    # Later reads while the room is full are counted without being split
    # (a partial line held from before goes with them).
    b.type("par")
    b.type("tial\n" + "".join(f"more{i}\n" for i in range(50)) + "tail")
    notices = b.lines()
    assert len(matching(notices, "Too much at once")) == 1
    server.clock.pump([0.2] * 25)
    said = [line.split()[-1] for line in matching(a.lines(), "<bob>")]
    assert said == [f"line{i}" for i in range(12)]      # 2 at once, 10 waited
    assert "*** 139 line(s) were dropped: too many were waiting." in b.lines()
    assert server.hub.dropped_flood == 139
    b.type("\n")                                      # "tail" was kept: it is a line
    assert a.lines()[-1].endswith("<bob> tail")
    assert not server.clock.getDelayedCalls()


def test_a_user_who_leaves_with_lines_waiting_leaves_no_timer_behind():
    server = Server(rate=5, burst=3)
    a, b = server.user("alice"), server.user("bob")
    b.type("".join(f"line{i}\n" for i in range(50)) + "/quit\n")
    assert server.clock.getDelayedCalls()
    b.close()
    assert not server.clock.getDelayedCalls()
    server.clock.advance(60)
    assert not matching(a.lines(), "<bob> line9")


def test_quit_waits_its_turn_behind_a_paste():
    server = Server(rate=5, burst=3)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("".join(f"line{i}\n" for i in range(10)) + "/quit bye\n")
    server.clock.pump([0.2] * 15)
    lines = a.lines()
    assert lines[-2].endswith("<bob> line9") and lines[-1].endswith("bob has quit (quit: bye)")
    assert not server.clock.getDelayedCalls()


def test_rate_zero_turns_flood_control_off():
    server = Server(rate=0, burst=1)
    a = server.user("alice")
    a.type("".join(f"l{i}\n" for i in range(500)))
    assert len(matching(a.lines(), "<alice>")) == 500


def test_files_does_not_suggest_tekcos_push_when_udp_is_off(server):
    a = server.user("alice")
    a.type("/files\n")
    assert a.lines() == ["*** No files received yet. Send one with: tekcos push FILE --to HOST"]
    server.hub.pushes_enabled = False
    a.type("/files\n")
    assert a.lines() == ["*** No files: this server does not receive pushes (UDP is off)."]


def test_help_lists_every_command():
    from tekcos.chat import commands
    listed = {usage.split()[0][1:] for usage, _ in commands.HELP}
    assert listed == set(commands._HANDLERS) - {"neighbours"}   # the British alias


def test_a_telnet_client_gets_byte_255_doubled_in_a_single_byte_charset(server):
    # latin-1 "ÿ" is the byte 0xFF, which a telnet client reads as IAC.
    a, b = server.user("a"), server.user("b")
    b.type(b"\xff\xfb\x18" + b"/charset latin-1\r\n")    # IAC WILL TTYPE: speaks telnet
    b.read("latin-1")
    a.type("caf\u00e9 na\u00efve \u00ff\r\n".encode())
    raw = b.transport.value()
    assert b"na\xefve \xff\xff\r\n" in raw                # IAC IAC: the data byte 255
    b.transport.clear()
    # nc (no telnet) gets the byte as it is.
    c = server.user("c")
    c.type("/charset latin-1\r\n")
    c.read("latin-1")
    a.type("\u00ff\r\n".encode())
    assert c.transport.value().endswith(b"<a> \xff\r\n")
