from tekcos.chat.names import name_key, nick_error, room_error


def test_nicks_of_any_script_and_allowed_punctuation():
    for nick in ["alice", "김철수", "Ærøskøbing", "x_-[]9", "a" * 24, "Δ"]:
        assert nick_error(nick) is None, nick


def test_bad_nicks_get_a_reason():
    assert "empty" in nick_error("")
    assert "at most 24" in nick_error("a" * 25)
    assert "'!'" in nick_error("bob!")
    assert "U+0020" in nick_error("two words")
    assert "U+001B" in nick_error("esc\x1b")


def test_keys_fold_case_and_compatibility_forms():
    assert name_key("Alice") == name_key("ALICE") == name_key("ａｌｉｃｅ")
    assert name_key("Straße") == name_key("STRASSE")


def test_room_names():
    assert room_error("#dev.ops") is None
    assert room_error("no spaces") is not None
    assert "at most 32" in room_error("r" * 33)
