"""HELLO discovery against the real server on loopback."""
import time

from tekcos import hello
from tekcos.hello import hello_replies
from tekcos.push import wire
from tests.twistd import free_port


def test_hello_finds_a_tekcos_server_and_returns_once_all_answered(start):
    server = start()
    began = time.monotonic()
    # A generous deadline (a busy machine answers late), but no waiting once
    # every target has answered.
    [(ip, info)] = hello_replies(["127.0.0.1"], server.port, timeout=30)
    assert time.monotonic() - began < 30
    assert ip == "127.0.0.1"
    assert info["tekcos"] == 1 and info["chat_port"] == server.port and info["version"]


def test_nobody_listening_gives_nothing():
    assert hello_replies(["127.0.0.1"], free_port(), timeout=0.2) == []


def test_only_tekcos_replies_are_taken():
    assert hello.parse_reply(hello.reply({"server": "x"})) == {"tekcos": 1, "server": "x"}
    assert hello.parse_reply(wire.encode_json(wire.HELLO_REPLY, 0, {"tekcos": 2})) is None
    assert hello.parse_reply(wire.encode_json(wire.DONE, 0, {"tekcos": 1})) is None
    assert hello.parse_reply(b"\x00" * 30) is None
    assert len(hello.request()) == wire.HEADER_SIZE + hello.HELLO_MIN
