from tekcos.chat.telnet import DATA, strip_iac


def test_plain_data_passes_untouched():
    assert strip_iac(b"hello\r\n") == (b"hello\r\n", DATA)


def test_commands_are_removed():
    # IAC IP (Ctrl-C), IAC DO ECHO, IAC WILL NAWS, IAC SB NAWS ... IAC SE
    data = b"he\xff\xf4llo\xff\xfd\x01 wor\xff\xfb\x1fld\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0!"
    assert strip_iac(data) == (b"hello world!", DATA)


def test_escaped_iac_is_one_literal_byte():
    assert strip_iac(b"a\xff\xffb") == (b"a\xffb", DATA)


def test_sequences_split_across_chunks():
    data = b"ab\xff\xfd\x01cd\xff\xfa\x18\x00xterm\xff\xf0ef\xff\xf4gh"
    for cut in range(len(data) + 1):
        first, state = strip_iac(data[:cut])
        second, state = strip_iac(data[cut:], state)
        assert first + second == b"abcdefgh", cut
        assert state == DATA
