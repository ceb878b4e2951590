"""The sender's offer side (push/offering.py): the OFFER and its repeats,
the receiver's answers, waiting for a busy receiver, RETRY cookies; driven
by hand with explicit time, as in test_sender.py."""
import pytest

from tekcos.push import wire
from tekcos.push.sender import CONFIRMING, HANDSHAKE_RTO, INITIAL_RTO, REJECTED, SENDING, WAITING
from tests.push.test_sender import accept, decoded, make


def busy(s, offer_id, retry_after=2.0):
    return wire.encode_json(wire.REJECT, offer_id, {"error": "busy: 32 transfers in progress; "
                                                    "retry in 2 s", "retry_after": retry_after})


def test_offer_is_padded_and_retransmitted_with_backoff():
    s = make()
    s.start(0.0)
    [(kind, session, _, payload)] = decoded(s.datagrams_to_send(0.0))
    assert (kind, session) == (wire.OFFER, 42) and len(payload) >= 200
    offer = wire.decode_json(payload)
    assert offer["name"] == "f.bin" and offer["size"] == 1000 and offer["kind"] == "file"
    assert s.get_timer() == HANDSHAKE_RTO             # no round trip known yet
    s.handle_timer(HANDSHAKE_RTO)
    assert [d[0] for d in decoded(s.datagrams_to_send(HANDSHAKE_RTO))] == [wire.OFFER]
    assert s.get_timer() == 3 * HANDSHAKE_RTO         # backed off
    s.handle_timer(2.5 * HANDSHAKE_RTO)
    assert s.datagrams_to_send(2.5 * HANDSHAKE_RTO) == []   # not yet


def test_a_repeated_offer_gives_no_round_trip_and_the_data_starts_from_the_initial_rto():
    s = make(window=4)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    s.handle_timer(HANDSHAKE_RTO)
    s.datagrams_to_send(HANDSHAKE_RTO)
    accept(s, 0.08)          # the answer to the first or the second copy?
    assert s.rtt.srtt is None
    assert len(s.datagrams_to_send(0.08)) == 4
    assert s.get_timer() == pytest.approx(0.08 + INITIAL_RTO)


def test_once_a_round_trip_is_known_a_busy_receiver_is_offered_again_on_its_timeout():
    s = make()
    s.start(0.0)
    s.datagrams_to_send(0.0)
    s.receive_datagram(wire.encode_json(wire.REJECT, 42, {"error": "busy", "retry_after": 1.0}),
                       0.004)
    s.handle_timer(1.004)
    assert [d[0] for d in decoded(s.datagrams_to_send(1.004))] == [wire.OFFER]
    assert s.get_timer() == pytest.approx(1.004 + s.rtt.rto) and s.rtt.rto >= 0.02


def test_reject_finishes_with_the_reason():
    s = make()
    s.start(0.0)
    s.receive_datagram(wire.encode_json(wire.REJECT, 42, {"error": "file too large"}), 0.01)
    assert (s.status, s.error) == (REJECTED, "file too large")
    assert s.get_timer() is None


def test_answers_for_another_offer_or_garbage_are_ignored():
    s = make()
    s.start(0.0)
    s.receive_datagram(wire.encode_json(wire.REJECT, 41, {"error": "x"}), 0.01)
    s.receive_datagram(b"\x00" * 40, 0.01)
    assert s.status is None


def test_empty_file_goes_straight_to_confirmation():
    s = make(size=0)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, 0.01)
    assert s.state == CONFIRMING
    assert [k for k, *_ in decoded(s.datagrams_to_send(0.01))] == [wire.PROBE]


def test_a_busy_receiver_is_asked_again_later_under_a_new_offer_id():
    s = make(timeout=10.0)
    s.start(0.0)
    [(kind, first_id, _, _)] = decoded(s.datagrams_to_send(0.0))
    s.receive_datagram(busy(s, first_id), 0.1)
    assert s.state == WAITING and s.get_timer() == 2.1
    assert s.datagrams_to_send(0.5) == []
    s.handle_timer(1.0)
    assert s.datagrams_to_send(1.0) == []            # not before it was told
    s.handle_timer(2.1)
    [(kind, second_id, _, _)] = decoded(s.datagrams_to_send(2.1))
    assert kind == wire.OFFER and second_id != first_id
    s.receive_datagram(busy(s, first_id), 2.2)       # a late answer to the old offer
    assert s.state == "offering"
    accept(s, 2.3)
    assert s.state == SENDING


def test_busy_after_accept_before_any_data_was_taken_waits_too():
    s = make()
    s.start(0.0)
    accept(s, 0.1)
    s.datagrams_to_send(0.1)
    s.receive_datagram(busy(s, s.offer_id), 0.2)      # no slot once the token came back
    assert s.state == WAITING and s.sent_at == {} and s.token == 0


def test_waiting_gives_up_with_a_clear_reason_after_the_timeout():
    s = make(timeout=5.0)
    s.start(0.0)
    now = 0.0
    while not s.finished:
        offer_id = decoded(s.datagrams_to_send(now))[0][1]
        s.receive_datagram(busy(s, offer_id), now + 0.01)
        now = s.get_timer() if not s.finished else now
        s.handle_timer(now)
    assert s.status == REJECTED
    assert s.error == ("busy: 32 transfers in progress; retry in 2 s "
                       "(gave up after waiting 5 s for a slot)")
    assert now <= 5.0


def test_a_retry_sends_the_offer_again_at_once_with_its_cookie():
    s = make()
    s.start(0.0)
    s.datagrams_to_send(0.0)
    s.receive_datagram(wire.encode_json(wire.RETRY, 41, {"cookie": "c" * 32}), 0.001)
    assert s.datagrams_to_send(0.001) == []          # another offer's RETRY: ignored
    s.receive_datagram(wire.encode_json(wire.RETRY, 42, {"cookie": "c" * 32}), 0.002)
    [(kind, session, _, payload)] = decoded(s.datagrams_to_send(0.002))
    assert (kind, session) == (wire.OFFER, 42)
    assert wire.decode_json(payload)["cookie"] == "c" * 32
    accept(s, 0.004)
    assert s.state == SENDING
    # Offered again under a new id (after a busy answer): the old cookie goes.
    s2 = make()
    s2.start(0.0)
    s2.datagrams_to_send(0.0)
    s2.receive_datagram(wire.encode_json(wire.RETRY, 42, {"cookie": "d" * 32}), 0.001)
    s2.datagrams_to_send(0.001)
    s2.receive_datagram(wire.encode_json(wire.REJECT, 42, {"error": "busy", "retry_after": 1}),
                        0.002)
    s2.handle_timer(1.01)
    [(kind, session, _, payload)] = decoded(s2.datagrams_to_send(1.01))
    assert kind == wire.OFFER and session == 43 and "cookie" not in wire.decode_json(payload)


def test_endless_retries_do_not_make_the_sender_offer_without_pause():
    s = make()
    s.start(0.0)
    s.datagrams_to_send(0.0)
    sent = 0
    for i in range(20):
        s.receive_datagram(wire.encode_json(wire.RETRY, 42, {"cookie": f"{i:032d}"}), 0.001 * i)
        sent += len(s.datagrams_to_send(0.001 * i))
    assert sent == 4
