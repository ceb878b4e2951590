"""TelnetFilter: commands removed, negotiations answered (RFC 854/855/857/
858/860), commands split across reads, repeats answered once per read, floods
budgeted."""
import random

from tekcos.chat.telnet import (
    ARE_YOU_THERE,
    ECHO_OFF,
    ECHO_ON,
    FLOOD,
    INTERRUPT,
    TelnetFilter,
)

IAC, WILL, WONT, DO, DONT, SB, SE = 255, 251, 252, 253, 254, 250, 240
ECHO, SGA, TM, NAWS, TTYPE, BINARY = 1, 3, 6, 31, 24, 0
# What the server offers a client that speaks telnet: binary both ways
# (RFC 856), then character mode (echo and SGA).
# (DO BINARY follows the client's answer to WILL BINARY.)
OFFER = bytes([IAC, WILL, BINARY, IAC, WILL, ECHO, IAC, WILL, SGA])


def cmd(*codes: int) -> bytes:
    return bytes(codes)


def feed(f: TelnetFilter, data: bytes):
    text = f.feed(data)
    replies, events = f.take()
    return text, replies, events


def test_ctrl_c_from_debian_telnet_gets_its_timing_mark_every_time():
    f = TelnetFilter()
    for _ in range(3):   # every Ctrl-C, not only the first
        text, replies, events = feed(f, b"hi" + cmd(IAC, 244, IAC, DO, TM))
        assert text == b"hi"
        assert replies == cmd(IAC, WILL, TM)   # and nothing else: no mode change
        assert events == [INTERRUPT]


def test_character_mode_client_is_offered_binary_echo_and_sga():
    f = TelnetFilter()
    # What Windows telnet starts with: offers of its own options.
    text, replies, events = feed(f, cmd(IAC, WILL, NAWS, IAC, WILL, TTYPE) + b"x")
    assert text == b"x"
    assert replies == cmd(IAC, DONT, NAWS) + OFFER + cmd(IAC, DONT, TTYPE)
    assert not f.binary
    # The client agrees: the server asks for binary the other way too;
    # echo is on, and agreements are not answered (no loop).
    text, replies, events = feed(f, cmd(IAC, DO, BINARY, IAC, DO, ECHO, IAC, DO, SGA))
    assert (text, replies, events) == (b"", cmd(IAC, DO, BINARY), [ECHO_ON])
    assert not f.binary
    assert feed(f, cmd(IAC, WILL, BINARY)) == (b"", b"", [])
    assert f.binary
    # UTF-8 text passes whole, 0xFF doubled or not.
    assert feed(f, "요 👍".encode())[0] == "요 👍".encode()
    text, replies, events = feed(f, cmd(IAC, DONT, ECHO, IAC, WONT, BINARY))
    assert (replies, events) == (cmd(IAC, WONT, ECHO, IAC, DONT, BINARY), [ECHO_OFF])
    assert not f.binary


def test_putty_negotiation_recorded_bytes_get_binary_and_character_mode():
    f = TelnetFilter()
    # PuTTY 0.8x's first bytes (telnet.c: NAWS, TSPEED, TTYPE, NEW-ENVIRON
    # requested, DO ECHO, WILL SGA, DO SGA).
    putty = bytes.fromhex("fffb1ffffb20fffb18fffb27fffd01fffb03fffd03")
    text, replies, events = feed(f, putty)
    assert text == b"" and events == [ECHO_ON]
    assert cmd(IAC, WILL, BINARY) in replies and cmd(IAC, WILL, SGA) in replies
    assert cmd(IAC, WILL, ECHO) in replies
    assert replies.count(cmd(IAC, WILL, ECHO)) == 1          # offered once
    # PuTTY accepts BINARY when asked (its we_bin/they_bin start INACTIVE).
    assert feed(f, cmd(IAC, DO, BINARY)) == (b"", cmd(IAC, DO, BINARY), [])
    assert feed(f, cmd(IAC, WILL, BINARY)) == (b"", b"", [])
    assert f.binary


def test_an_offer_made_by_the_server_is_made_once():
    f = TelnetFilter()
    f.offer()
    assert f.take() == (OFFER, [])
    f.offer()
    assert feed(f, cmd(IAC, WILL, NAWS)) == (b"", cmd(IAC, DONT, NAWS), [])
    # A client that refuses everything stays in its mode; nothing loops.
    text, replies, events = feed(f, cmd(IAC, DONT, BINARY, IAC, DONT, ECHO, IAC, DONT, SGA))
    # Refused WILL BINARY: the server still asks the other direction once.
    assert (text, replies) == (b"", cmd(IAC, DO, BINARY))
    assert feed(f, cmd(IAC, WONT, BINARY)) == (b"", b"", [])
    assert not f.binary


def test_a_client_asking_for_echo_gets_it_and_the_rest_of_the_offer():
    f = TelnetFilter()
    text, replies, events = feed(f, cmd(IAC, DO, ECHO))
    assert replies == cmd(IAC, WILL, ECHO, IAC, WILL, BINARY, IAC, WILL, SGA)
    assert events == [ECHO_ON]


def test_unsupported_options_are_refused_and_ayt_answered():
    f = TelnetFilter()
    assert feed(f, cmd(IAC, DO, 24))[1].startswith(cmd(IAC, WONT, 24))
    assert feed(f, cmd(IAC, 246)) == (b"", b"", [ARE_YOU_THERE])
    assert feed(f, cmd(IAC, WONT, 5)) == (b"", b"", [])   # nothing to refuse


def test_iac_iac_is_a_literal_byte_and_subnegotiations_vanish():
    f = TelnetFilter()
    data = b"a" + cmd(IAC, IAC) + b"b" + cmd(IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE) + b"c"
    assert feed(f, data)[0] == b"a\xffbc"
    assert feed(f, b"x" + cmd(IAC, 0x41) + b"y")[0] == b"xy"   # unknown command: dropped


def test_commands_split_anywhere_across_reads():
    stream = (b"one" + cmd(IAC, 244, IAC, DO, TM) + b"two" + cmd(IAC, IAC) + b"three"
              + cmd(IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE) + b"four" + cmd(IAC, WILL, NAWS))
    whole = TelnetFilter()
    expected = feed(whole, stream)
    for cut in range(1, len(stream)):
        f = TelnetFilter()
        a = feed(f, stream[:cut])
        b = feed(f, stream[cut:])
        assert (a[0] + b[0], a[1] + b[1], a[2] + b[2]) == expected, cut


def test_random_bytes_never_raise_and_match_one_whole_read():
    rng = random.Random(7)
    for _ in range(300):
        data = bytes(rng.choice([IAC, IAC, DO, WILL, SB, SE, 244, 246, 0x41, 10, 13])
                     for _ in range(rng.randint(1, 80)))
        pieces, f = [], TelnetFilter()
        at = 0
        while at < len(data):
            step = rng.randint(1, 9)
            pieces.append(f.feed(data[at:at + step]))
            f.take()
            at += step
        whole = TelnetFilter().feed(data + b"x")
        # Split reads give what one read gives (a held tail comes out later).
        assert b"".join(pieces) + f.feed(b"x") == whole


def test_repeated_commands_are_answered_once_per_read():
    f = TelnetFilter()
    text, replies, events = feed(f, b"a" + cmd(IAC, DO, TM) * 60 + b"b")
    assert text == b"ab" and replies == cmd(IAC, WILL, TM)


def test_a_flood_of_commands_is_dropped_whole_and_said_once():
    f = TelnetFilter()
    text, replies, events = feed(f, b"hidden" + cmd(IAC, DO, TM) * 20_000)
    assert (text, replies, events) == (b"", b"", [FLOOD])
    # Escaped 0xFF bytes are data, not commands: any number of them passes.
    assert feed(f, b"x" + cmd(IAC, IAC) * 20_000)[0] == b"x" + b"\xff" * 20_000


def test_commands_are_budgeted_per_connection_over_time():
    f = TelnetFilter(now=0.0)
    burst = cmd(IAC, WILL, NAWS) * 32
    assert feed(f, burst)[2] != [FLOOD]
    f.feed(burst, 0.0)
    f.take()
    # 64 spent: the next commands must wait for the budget to refill (10/s).
    assert f.feed(b"x" + cmd(IAC, DO, TM), 0.01) == b""
    assert f.take() == (b"", [FLOOD])
    assert f.feed(b"y" + cmd(IAC, DO, TM), 1.0) == b"y"   # a Ctrl-C a second later is fine
    assert f.take()[0] == cmd(IAC, WILL, TM)
