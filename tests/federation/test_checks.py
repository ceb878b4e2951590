"""What a node takes from the channel is checked as a client's input."""
import pytest

from tekcos.federation.checks import Malformed, answer_fields, checked_text, file_fields

READY = {"about": "ready", "to": "bob", "num": 3, "frm": "alice", "name": "r.pdf",
         "size": 10, "code": "abcdEFGH_-123456", "where": "[fd00::1]:9000"}


def test_a_well_formed_file_message_comes_out_as_fields():
    assert file_fields(READY) == ("ready", "bob", {
        "num": 3, "frm": "alice", "name": "r.pdf", "size": 10, "code": "abcdEFGH_-123456",
        "where": "[fd00::1]:9000"})
    about, nick, fields = file_fields({"about": "offer", "to": "bob", "num": 1, "frm": "",
                                       "name": "x", "size": 0, "room": "#dev"})
    assert (about, fields["frm"], fields["room"]) == ("offer", "someone", "#dev")
    assert answer_fields({"num": 3, "nick": "bob", "accept": False}) == (3, "bob", False)


@pytest.mark.parametrize("change", [
    {"about": None}, {"num": 0}, {"num": True}, {"num": 1 << 40}, {"size": 1.5},
    {"to": "two words"}, {"to": 5}, {"name": "x" * 256}, {"frm": ["alice"]},
    {"code": "abcdEFGH_-123456\n"}, {"code": "tiny"}, {"where": "a.example:port"},
    {"where": "host:9000 rm -rf"}, {"where": "[fd00::1:9000"},
])
def test_anything_else_is_malformed(change):
    with pytest.raises(Malformed):
        file_fields({**READY, **change})


def test_text_loses_its_control_characters():
    assert checked_text("a\x1b[2J\r\n\xffb") == "a[2J\xffb"
    with pytest.raises(Malformed):
        answer_fields({"num": 3, "nick": "bob", "accept": 1})
