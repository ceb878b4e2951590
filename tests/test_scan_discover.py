"""HELLO discovery against the real server on loopback."""
from test_integration import free_port, start  # noqa: F401 (fixture)
from tekcos.scan.discover import hello_replies


def test_hello_finds_a_tekcos_server_and_nothing_else(start):
    server = start()
    [(ip, info)] = hello_replies(["127.0.0.1", "127.0.0.2"], server.port)
    assert ip == "127.0.0.1"
    assert info["tekcos"] == 1 and info["chat_port"] == server.port and info["version"]
    assert hello_replies(["127.0.0.1"], free_port(), timeout=0.2) == []
