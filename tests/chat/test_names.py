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


def test_invisible_and_filler_characters_are_never_part_of_a_name():
    for nick in ["\u3164", "alice\u3164", "\u115f\u1160", "a\u200bb", "\uffa0x"]:
        assert "invisible" in nick_error(nick), repr(nick)
    assert room_error("lobby\u3164") is not None


def test_look_alike_names_share_a_key():
    from tekcos.chat.names import look_keys
    assert set(look_keys("\u0430lice")) & set(look_keys("alice"))       # Cyrillic а
    assert set(look_keys("b\u03bfb")) & set(look_keys("bob"))           # Greek ο
    assert set(look_keys("paypal")) & set(look_keys("\u0440\u0430\u0443\u0440\u0430l"))
    assert not set(look_keys("alice")) & set(look_keys("alina"))
    assert not set(look_keys("김철수")) & set(look_keys("김영희"))
