"""Byte-level behaviour of the connection adapter (StringTransport)."""
from tests.memory import Server, matching


def test_lf_crlf_and_split_reads(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    for chunk in [b"one\r", b"\ntw", b"o\n", b"three\r\nfo", b"ur\n"]:
        b.type(chunk)
    said = [line.split("> ")[1] for line in matching(a.lines(), "<bob>")]
    assert said == ["one", "two", "three", "four"]


def test_telnet_commands_are_removed_and_harmless(server):
    a, b = server.user("alice"), server.user("bob")
    a.read()
    # Ctrl-C in telnet: IAC IP, then IAC DO TIMING-MARK; split mid-sequence.
    b.type(b"hel\xff")
    b.type(b"\xf4lo\xff\xfd")
    b.type(b"\x06\r\n")
    assert a.lines()[0].endswith("<bob> hello")
    assert not b.transport.disconnecting


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
