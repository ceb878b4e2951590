"""The receiving side's control plane (push/offers.py), time passed in."""
import pytest

from tekcos.push.offers import (ABORTS_ALLOWED, CHECK, COOKIE_PERIOD, OFFERS_PER_HOST,
                                OFFERS_PER_SECOND, RETRY, TOO_MANY, AbortHistory, OfferGate,
                                Refusal, offer_fields, owner_of)

ADDR = ("10.0.0.7", 40000)


def test_past_the_global_rate_only_offers_with_their_own_cookie_are_checked():
    gate = OfferGate(0.0, secret=b"k" * 32)
    hosts = [(f"10.1.{i // 250}.{i % 250}", 1000) for i in range(int(OFFERS_PER_SECOND) + 1)]
    verdicts = [gate.admit({}, 1, addr, addr[0], 0.0) for addr in hosts]
    assert verdicts[:-1] == [CHECK] * int(OFFERS_PER_SECOND) and verdicts[-1] == RETRY
    cookie = gate.cookie(ADDR, 7, 0.0)
    assert gate.admit({"cookie": cookie}, 7, ADDR, ADDR[0], 0.0) == CHECK
    # Not for another address, offer or much later.
    assert gate.admit({"cookie": cookie}, 7, ("10.0.0.8", 40000), "10.0.0.8", 0.0) == RETRY
    assert gate.admit({"cookie": cookie}, 8, ADDR, ADDR[0], 0.0) == RETRY
    assert gate.cookie_valid(cookie, ADDR, 7, COOKIE_PERIOD * 1.5)
    assert not gate.cookie_valid(cookie, ADDR, 7, COOKIE_PERIOD * 2.5)


def test_one_host_gets_its_own_rate_of_full_checks():
    gate = OfferGate(0.0)
    verdicts = [gate.admit({}, i, ADDR, "h", 0.0) for i in range(int(2 * OFFERS_PER_HOST) + 1)]
    assert verdicts.count(CHECK) == int(2 * OFFERS_PER_HOST) and verdicts[-1] == TOO_MANY
    assert gate.admit({}, 99, ("10.0.0.9", 1), "other", 0.0) == CHECK


def test_resumed_pushes_cut_off_again_and_again_wait_longer():
    history = AbortHistory()
    for i in range(ABORTS_ALLOWED - 1):
        history.count("h", float(i))
    assert history.backoff("h", 3.0) == 0.0
    history.count("h", 3.0)
    assert history.backoff("h", 3.0) == 2.0
    history.count("h", 4.0)
    assert history.backoff("h", 4.0) == 4.0
    assert history.backoff("h", 200.0) == 0.0       # a minute later: forgiven


def test_offer_fields_and_owner():
    good = {"kind": "file", "size": 10, "sha256": "a" * 64, "from": "bob"}
    assert offer_fields(good)["size"] == 10
    for bad, why in [({"kind": "x"}, "unknown kind"), ({"size": -1}, "bad size"),
                     ({"sha256": "z"}, "bad sha256"), ({"from": "x" * 65}, "bad sender"),
                     ({"payload": 8}, "bad payload"), ({"name": "n" * 2000}, "longer than")]:
        with pytest.raises(Refusal, match=why):
            offer_fields({**good, **bad})
    assert owner_of({"client": "0" * 32}, ADDR) == "client:" + "0" * 32
    assert owner_of({"client": "../x"}, ADDR) == ADDR[0]
