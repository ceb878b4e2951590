"""The serving side's core (push/serve.py) without a network: what a GET
starts."""
from types import SimpleNamespace

import pytest

from tekcos.push import wire
from tekcos.push.serve import Outgoing

CLIENT = ("10.0.0.7", 40000)


def offered_payload(request: dict) -> int:
    kept = SimpleNamespace(path="/kept", name="f.bin", size=1 << 20, sha256="ab" * 32)
    outgoing = Outgoing(lookup=lambda code, now: kept if code == "c0de" else None,
                        open_file=lambda path: (lambda off, n: b"\0" * n, lambda: None),
                        on_fetched=lambda code: None)
    outgoing.receive_datagram(wire.encode_json(wire.GET, 5, request, pad_to=232), CLIENT, 0.0)
    [(offer, addr)] = outgoing.datagrams_to_send(0.0)
    kind, session, _, body = wire.decode(offer)
    assert (kind, session, addr) == (wire.OFFER, 5, CLIENT)
    return wire.decode_json(body)["payload"]


@pytest.mark.parametrize("asked, used", [
    (None, wire.DEFAULT_PAYLOAD),      # an older tekcos get says nothing
    (1448, 1448),                      # its path's: Ethernet
    (8948, 8948),                      # a jumbo-frame LAN
    (60000, wire.MAX_PAYLOAD),         # never more than we pick ourselves
    (8, wire.DEFAULT_PAYLOAD),         # nonsense
    ("9000", wire.DEFAULT_PAYLOAD),
])
def test_a_download_uses_the_packet_size_its_get_says_the_path_carries(asked, used):
    request = {"code": "c0de"} if asked is None else {"code": "c0de", "payload": asked}
    assert offered_payload(request) == used


def test_a_code_kept_by_another_node_is_answered_with_where():
    outgoing = Outgoing(lookup=lambda code, now: None, open_file=None,
                        on_fetched=lambda code: None,
                        elsewhere=lambda code: "10.0.0.1:9000" if code == "c0de" else None)
    for code in ("c0de", "other"):
        outgoing.receive_datagram(wire.encode_json(wire.GET, 5, {"code": code}, pad_to=232),
                                  CLIENT, 0.0)
    answers = [wire.decode_json(wire.decode(d)[3]) for d, _ in outgoing.datagrams_to_send(0.0)]
    assert answers == [{"error": "kept by another node of this hub, at 10.0.0.1:9000",
                        "moved": "10.0.0.1:9000"},
                       {"error": "no such file (wrong or expired code)"}]
