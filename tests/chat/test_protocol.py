"""Byte-level behaviour of the connection adapter (StringTransport)."""
from tests.memory import Server, matching

# What a client that speaks telnet is offered: WILL BINARY, ECHO and SGA.
OFFER = b"\xff\xfb\x00\xff\xfb\x01\xff\xfb\x03"


def test_lf_crlf_and_split_reads(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    for chunk in [b"one\r", b"\ntw", b"o\n", b"three\r\nfo", b"ur\n"]:
        b.type(chunk)
    said = [line.split("> ")[1] for line in matching(a.lines(), "<bob>")]
    assert said == ["one", "two", "three", "four"]


def test_telnet_commands_are_removed_and_answered(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.read()
    # Ctrl-C in telnet: IAC IP (the line being typed is dropped), then IAC DO
    # TIMING-MARK (answered, so that the client shows output again); the
    # sequences are split mid-way.
    b.type(b"hel\xff")
    assert b.transport.value() == OFFER       # it speaks telnet: the offer, once
    b.transport.clear()
    b.type(b"\xf4lo\xff\xfd")
    assert b.transport.value() == b""
    b.type(b"\x06\r\n")
    sent = b.transport.value()
    assert sent.startswith(b"\xff\xfb\x06") and sent.count(b"\xff") == 1   # WILL TM only
    [line] = a.lines()
    assert line.endswith("<bob> lo")
    assert not b.transport.disconnecting


def test_clients_whose_lines_end_in_lf_never_get_a_telnet_byte(server):
    a = server.connect()
    a.type(b"alice\n/help\r\nhi\r\n/who\n" + "한글 👍\r\n".encode())
    assert b"\xff" not in a.transport.value()


def test_a_first_line_in_crlf_gets_the_telnet_offer_once(server):
    a = server.connect()
    a.read()
    a.type(b"alice\r")
    assert a.transport.value() == b""        # no line end yet
    a.type(b"\n/who\r\n")
    sent = a.transport.value()
    # WILL BINARY, WILL ECHO, WILL SGA, before the answer to the nick.
    assert sent.startswith(b"\xff\xfb\x00\xff\xfb\x01\xff\xfb\x03*** You are in lobby")
    assert sent.count(b"\xff") == 3
    a.transport.clear()
    # A client that ignores the offer (nc -C, a script) is not asked again.
    a.type(b"hi\r\n/who\r\n")
    assert b"\xff" not in a.transport.value()


def test_debian_telnet_takes_the_offer_and_korean_arrives_whole(server):
    b = server.user("bob")
    a = server.connect()
    a.type(b"alice\r\n")
    a.read()
    # Debian telnet agrees to all; the server then asks for binary input.
    a.type(b"\xff\xfd\x00\xff\xfd\x01\xff\xfd\x03")
    assert a.transport.value() == b"\xff\xfd\x00"
    a.transport.clear()
    a.type(b"\xff\xfb\x00")
    text = "안녕하세요 여러분 👍"
    for byte in text.encode():           # character mode: a key at a time
        a.type(bytes([byte]))
    assert a.read() == text               # echoed by the server
    a.type(b"\r\0")
    assert b.lines()[-1].endswith(f"<alice> {text}")


def test_character_mode_echoes_edits_and_keeps_the_typed_line(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.read()
    b.type(b"\xff\xfd\x01\xff\xfd\x03")          # DO ECHO, DO SGA
    # WILL ECHO (the answer), then the rest of the offer (WILL SGA answered).
    assert b.transport.value() == b"\xff\xfb\x01\xff\xfb\x00\xff\xfb\x03"
    b.transport.clear()
    b.type(b"hellp")
    b.type(b"\x7f")                                 # backspace
    assert b.transport.value() == b"hellp\b \b"   # echoed, then erased
    b.transport.clear()
    a.type(b"meanwhile\r\n")                        # arrives while bob types
    a.read()
    shown = b.transport.value()
    assert shown.startswith(b"\r\x1b[K") and shown.endswith(b"meanwhile\r\nhell")
    b.transport.clear()
    b.type(b"o wor\x17world\r\0")                  # Ctrl-W, then Enter as CR NUL
    assert a.lines()[0].endswith("<bob> hello world")
    b.type(b"x\x15y\r\n")                            # Ctrl-U
    assert a.lines()[0].endswith("<bob> y")
    b.type(b"\r\n")                                   # an empty line says nothing
    assert a.lines() == []


def test_are_you_there_gets_a_visible_answer(server):
    a = server.user("alice")
    a.type(b"\xff\xf6")
    assert a.transport.value() == OFFER + b"*** Yes, test is here.\r\n"


def test_a_max_line_line_whose_crlf_is_split_is_accepted():
    server = Server(max_line=64)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type(b"x" * 64 + b"\r")
    b.type(b"\n")
    assert a.lines()[0].endswith("<bob> " + "x" * 64)
    assert not any("too long" in line for line in b.lines())


def test_telnet_bare_cr_ends_a_line(server):
    a = server.user("alice")
    a.type(b"hi\r\0")
    assert a.lines()[0].endswith("<alice> hi")


def test_over_long_line_is_refused_and_connection_stays():
    server = Server(max_line=100)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type(b"x" * 150 + b"\n" + b"short\n")
    assert b.lines()[0] == "*** Error: line too long (over 100 bytes); it was discarded."
    assert a.lines()[0].endswith("<bob> short")
    # Without a newline in sight: refused once, the tail up to the newline is dropped.
    b.type(b"y" * 80)
    b.type(b"y" * 80)
    b.type(b"y" * 80)
    b.type(b"y\nafter\n")
    lines = b.lines()
    assert len(matching(lines, "too long")) == 1
    assert not matching(lines, "yyyy")
    assert a.lines()[0].endswith("<bob> after")
    assert not b.transport.disconnecting


def test_exactly_max_line_is_accepted():
    server = Server(max_line=100)
    a = server.user("alice")
    a.type(b"z" * 100 + b"\r\n")
    assert a.lines()[0].endswith("z" * 100)


def test_slow_consumer_is_dropped_and_others_go_on():
    # Each delivered line is 125 bytes; 4096 bytes over the transport's own
    # 64 KiB is allowed.
    server = Server(rate=0, max_buffer=64 * 1024 + 4096)
    a, slow, c = server.user("alice"), server.user("slow"), server.user("carol")
    for client in (a, slow, c):
        client.read()
    # The transport reports its buffer is full: from now on output is counted.
    slow.protocol.pauseProducing()
    slow.protocol.pauseProducing()   # called again on every write while full
    line = "x" * 100 + "\n"
    a.type(line * 30)                # 3750 bytes: under the cap
    assert not slow.transport.disconnecting
    assert slow.transport.producer is slow.protocol
    a.type(line * 30)                # 7500 bytes: over it
    assert slow.transport.disconnecting
    assert slow.transport.producer is None
    assert "slow" not in server.hub.nicks
    lines = c.lines()
    assert len(matching(lines, "<alice> x")) == 60
    assert matching(lines, "-- slow has quit \\(not reading: output buffer full\\)")
    a.type("still here\n")
    assert c.lines()[0].endswith("<alice> still here")
    before = len(slow.transport.value())
    a.type("more\n")
    assert len(slow.transport.value()) == before   # nothing more queued for it


def test_slow_consumer_that_catches_up_is_kept():
    server = Server(rate=0, max_buffer=64 * 1024 + 4096)
    a, slow = server.user("alice"), server.user("slow")
    slow.protocol.pauseProducing()
    a.type(("x" * 100 + "\n") * 30)
    slow.protocol.resumeProducing()   # the client read its backlog
    a.type(("x" * 100 + "\n") * 30)
    assert not slow.transport.disconnecting
    assert len(matching(slow.lines(), "<alice> x")) == 60


def test_per_address_cap_refuses_with_a_reason():
    server = Server(max_per_ip=2)
    first, second = server.connect("127.0.0.5"), server.connect("127.0.0.5")
    third = server.connect("127.0.0.5")
    assert third.read() == "*** Error: too many connections from 127.0.0.5 (at most 2).\r\n"
    assert third.transport.disconnecting
    other = server.connect("127.0.0.6")
    assert "Welcome" in other.read()
    first.close()
    fourth = server.connect("127.0.0.5")
    assert "Welcome" in fourth.read()
    assert server.factory.per_host == {"127.0.0.5": 2, "127.0.0.6": 1}


def test_cap_zero_means_no_cap():
    server = Server(max_per_ip=0)
    clients = [server.connect("127.0.0.7") for _ in range(50)]
    assert all("Welcome" in c.read() for c in clients)


def test_a_telnet_command_flood_is_dropped_with_one_error(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    for _ in range(3):
        b.type(b"spam" + b"\xff\xfd\x06" * 1000 + b"\r\n")
    assert b.transport.value() == (OFFER + b"*** Error: too many telnet commands in your "
                                   b"input; it was discarded.\r\n")
    b.transport.clear()
    assert a.lines() == []
    b.type(b"fine\r\n")
    assert a.lines()[0].endswith("<bob> fine")


def test_a_client_that_shuts_its_side_gets_its_paste_out_first():
    # nc at the end of its input shuts down its sending side (a half-close).
    server = Server(rate=5, burst=3)
    a, b = server.user("alice"), server.user("bob")
    a.read()
    b.type("".join(f"line{i}\n" for i in range(10)))
    b.protocol.readConnectionLost()
    assert not b.transport.disconnecting            # 8 lines still wait
    server.clock.pump([0.2] * 10)
    lines = a.lines()
    assert [line.split()[-1] for line in matching(lines, "<bob>")] == \
        [f"line{i}" for i in range(10)]
    assert lines[-1].endswith("-- bob has quit (connection closed)")
    assert b.transport.disconnecting
    assert not server.clock.getDelayedCalls()
    # Nothing waiting: closed at once.
    c = server.user("carol")
    c.protocol.readConnectionLost()
    assert c.transport.disconnecting


def test_putty_and_windows_telnet_negotiation_then_korean_arrives_whole(server):
    text = "안녕하세요 여러분 👍"
    b = server.user("bob")
    # PuTTY's recorded first bytes, then its answers to the offer (it takes
    # BINARY both ways); Windows telnet's WILL NAWS, then DO ECHO/SGA/BINARY.
    for nick, first, answers in [
            ("putty", bytes.fromhex("fffb1ffffb20fffb18fffb27fffd01fffb03fffd03"),
             [b"\xff\xfd\x00", b"\xff\xfb\x00"]),
            ("win", b"\xff\xfb\x1f", [b"\xff\xfd\x01\xff\xfd\x03\xff\xfd\x00", b"\xff\xfb\x00"])]:
        c = server.connect()
        c.type(first)
        for answer in answers:
            c.type(answer)
        assert c.protocol.telnet.binary and c.protocol.editor is not None
        for key in (nick + "\r\n").encode():
            c.type(bytes([key]))
        c.read()
        for byte in text.encode():
            c.type(bytes([byte]))
        c.type(b"\r\0")
        assert b.lines()[-1].endswith(f"<{nick}> {text}")
