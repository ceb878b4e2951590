from tekcos.chat.lineedit import ERASE_LINE, LineEditor


def test_typing_echoes_and_enter_yields_the_line():
    ed = LineEditor(prompt="> ")
    out, lines = ed.feed(b"hi there")
    assert out == "hi there" and lines == []
    out, lines = ed.feed(b"\r")
    assert lines == ["hi there"] and out == ERASE_LINE + "> "
    assert ed.buffer == ""


def test_incoming_text_keeps_the_unfinished_line():
    ed = LineEditor(prompt="> ")
    ed.feed("half a sen".encode())
    shown = ed.show("[12:00] <bob> hello\r\n")
    assert shown == ERASE_LINE + "[12:00] <bob> hello\n> half a sen"
    assert ed.buffer == "half a sen"


def test_editing_keys():
    ed = LineEditor()
    ed.feed(b"abc\x7f\x7fx")
    assert ed.buffer == "ax"
    ed.feed(b" two words\x17")
    assert ed.buffer == "ax two "
    ed.feed(b"\x15")
    assert ed.buffer == ""
    ed.feed(b"a\x1b[Db\x1bOAc")   # arrow keys are skipped, not typed
    assert ed.buffer == "abc"


def test_utf8_split_across_reads_and_wide_backspace():
    ed = LineEditor()
    data = "한글".encode()
    ed.feed(data[:2])
    ed.feed(data[2:])
    assert ed.buffer == "한글"
    out, _ = ed.feed(b"\x7f")
    assert ed.buffer == "한" and out == "\b\b  \b\b"


def test_ctrl_c_and_ctrl_d_on_empty_line_end_input():
    ed = LineEditor()
    ed.feed(b"text\x04")
    assert not ed.eof          # Ctrl-D with text typed does nothing
    ed.feed(b"\x03")
    assert ed.eof
