"""The desktop window's models, without a display: server lines filed in
tabs, what is typed turned into lines to send, history and completion."""
from __future__ import annotations

from tekcos.gui.model import SERVER, ChatModel, InputLine, links


def joined(nick="gina", room="lobby") -> ChatModel:
    model = ChatModel(nick)
    model.feed("*** Welcome to lab (tekcos 0.1.0), a LAN chat hub.")
    model.feed(f"*** You are in {room} (2 people here). /help lists commands.")
    return model


def texts(model, key):
    return [line.text for line in model.tabs[key].lines]


def test_the_greeting_stays_in_the_server_tab_and_a_room_gets_a_tab_of_its_own():
    model = joined()
    assert list(model.tabs) == [SERVER, "#lobby"]
    assert texts(model, SERVER) == ["*** Welcome to lab (tekcos 0.1.0), a LAN chat hub."]
    assert model.current == model.selected == "#lobby"
    assert model.feed("[10:00] <tom> hi") == "#lobby"


def test_lines_of_another_room_go_to_its_tab_and_count_as_unread_with_mentions():
    model = joined()
    model.feed("*** Last 1 lines of dev:")
    model.feed("(history) [09:00] <ann> earlier")
    model.feed("*** End of history.")
    model.feed("*** You are in dev (3 people here). /help lists commands.")
    assert model.current == model.selected == "#dev"
    assert texts(model, "#dev")[0] == "[09:00] <ann> earlier"
    assert model.tabs["#dev"].lines[0].kind == "history"
    model.feed("[10:01] #lobby <tom> lunch?")
    model.feed("[10:02] #lobby <tom> gina: you coming")
    model.feed("[10:02] #lobby <tom> ginas are not gina-like")   # not a mention of gina
    lobby = model.tabs["#lobby"]
    assert (lobby.unread, lobby.mentions) == (3, 1)
    assert lobby.title == "#lobby (3, @1)"
    assert [line.kind for line in lobby.lines[-3:]] == ["said", "mention", "said"]
    model.select("#lobby")
    assert (lobby.unread, lobby.mentions, lobby.title) == (0, 0, "#lobby")


def test_private_messages_both_ways_share_the_other_persons_tab():
    model = joined()
    assert model.feed("[10:03] *tom* psst") == "tom"
    assert model.feed("[10:04] -> *tom* yes?") == "tom"
    tab = model.tabs["tom"]
    assert tab.kind == "private" and [line.kind for line in tab.lines] == ["private", "mine"]
    assert (tab.unread, tab.mentions) == (1, 1)      # our own echo is not news


def test_what_is_typed_goes_to_the_tab_it_was_typed_in():
    model = joined()
    model.feed("*** You are in dev (2 people here). /help lists commands.")
    model.feed("[10:03] *tom* psst")
    assert model.typed("hello") == ["hello"]                       # #dev, the current room
    model.select("#lobby")
    assert model.typed("back here") == ["/switch #lobby", "back here"]
    model.select("tom")
    assert model.typed("hi tom") == ["/msg tom hi tom"]
    assert model.typed("/whois tom") == ["/whois tom"]              # commands as typed
    assert model.typed("   ") == []


def test_leaving_a_room_closes_its_tab_and_the_server_says_where_we_talk_now():
    model = joined()
    model.feed("*** You are in dev (2 people here). /help lists commands.")
    assert model.close("#dev") == ["/part #dev"]
    model.feed("*** You left dev; now talking in lobby.")
    assert "#dev" not in model.tabs and model.current == model.selected == "#lobby"
    assert model.close(SERVER) == []


def test_offers_are_kept_until_answered():
    model = joined()
    model.feed("*** tom offers you report.pdf (3.0 MB). /accept 7 or /decline 7")
    model.feed("*** ann offers #lobby slides v2.odp (12 MB). /accept 8 or /decline 8")
    assert model.offers[7].text == "tom offers you report.pdf (3.0 MB)"
    assert model.offers[8].text == "ann offers you slides v2.odp (12 MB) in #lobby"
    assert model.answered(7).name == "report.pdf"
    assert list(model.offers) == [8] and model.answered(7) is None


def test_the_member_list_is_asked_for_quietly_on_entering_a_room():
    model = joined()
    assert model.ask_who() == "/who" and model.ask_who() is None
    assert model.feed("*** lobby (2): gina (idle 0s), @tom (idle 3s)") is None
    assert model.members.nicks == {"gina", "tom"}
    # Who speaks in another room is not a member of this one.
    model.feed("[10:00] #dev <ann> hi")
    assert model.members.nicks == {"gina", "tom"}
    # One the user asks for is shown.
    assert model.feed("*** lobby (2): gina (idle 0s), tom (idle 5s)") == "#lobby"


def test_a_tab_keeps_the_last_lines_only():
    from tekcos.gui import model as module
    model = joined()
    for i in range(module.MAX_LINES + 5):
        model.feed(f"[10:00] <tom> line {i}")
    tab = model.tabs["#lobby"]
    assert len(tab.lines) == module.MAX_LINES and tab.dropped == 6
    assert tab.lines[-1].text.endswith(f"line {module.MAX_LINES + 4}")


def test_links_are_found_without_their_trailing_punctuation():
    text = "see https://example.org/a?b=1, or (http://x.test/y)."
    assert [text[a:b] for a, b in links(text)] == ["https://example.org/a?b=1",
                                                   "http://x.test/y"]


def test_the_input_remembers_lines_and_completes_nicks():
    model = joined()
    model.feed("*** lobby (3): gina (idle 0s), tomas (idle 1s), tommy (idle 1s)")
    line = InputLine(model.members)
    for text in ("one", "two", "two"):
        line.entered(text)
    assert line.history == ["one", "two"]
    assert line.up("draft") == "two" and line.up("two") == "one" and line.up("one") == "one"
    assert line.down("one") == "two" and line.down("two") == "draft"
    assert line.complete("gi") == "gina: "
    assert line.complete("hi to") == "hi tom"                 # the common start of two
    assert line.complete("hi tomm") == "hi tommy "
    assert line.complete("/jo") == "/jo" and line.complete("xyz") == "xyz"

