"""The sender's reading of the receiver's answers (push/handshake.py)."""
from tekcos.push import wire
from tekcos.push.handshake import Accepted, Busy, Rejected, Retry, read_answer


def read(kind, body, **kw):
    args = {"offered_payload": 1400, "window": 64, "size": 10_000, "resume": True, **kw}
    payload = wire.decode(wire.encode_json(kind, 1, body))[3] if isinstance(body, dict) \
        else body
    return read_answer(kind, payload, **args)


def test_an_accept_is_checked_and_what_was_kept_taken_only_when_it_fits():
    assert read(wire.ACCEPT, {"token": 5, "window": 8, "payload": 1000}) == \
        Accepted(5, 8, 1000, 0)
    assert read(wire.ACCEPT, {"token": 5}) == Accepted(5, 64, 1400, 0)     # our defaults
    assert read(wire.ACCEPT, {"token": 5, "payload": 1000, "have": 3000}).have == 3000
    for have in (2500, 10_000, -1000, True, "3000"):                      # not whole packets,
        assert read(wire.ACCEPT, {"token": 5, "payload": 1000, "have": have}).have == 0
    assert read(wire.ACCEPT, {"token": 5, "payload": 1000, "have": 3000},
                resume=False).have == 0
    for bad in ({"token": 0}, {"token": 1 << 64}, {"window": 1}, {"token": 5, "window": 0},
                {"token": 5, "payload": 1500}, {"token": "x"}):
        assert read(wire.ACCEPT, bad) is None, bad
    assert read(wire.ACCEPT, b"not json") is None


def test_a_reject_is_final_unless_it_says_when_to_offer_again():
    assert read(wire.REJECT, {"error": "too big"}) == Rejected("too big")
    assert read(wire.REJECT, {"error": "busy", "retry_after": 2}) == Busy("busy", 2.0)
    assert read(wire.REJECT, {"error": "asking", "retry_after": 1, "waiting": "bob"}) == \
        Busy("asking", 1.0, "bob")
    for retry in (0, 61, True, "2"):                  # out of range: final
        assert read(wire.REJECT, {"error": "x", "retry_after": retry}) == Rejected("x")


def test_a_retry_carries_a_cookie_of_bounded_size():
    assert read(wire.RETRY, {"cookie": "ab" * 16}) == Retry("ab" * 16)
    assert read(wire.RETRY, {"cookie": "x" * 65}) is None
    assert read(wire.RETRY, {"cookie": 5}) is None
