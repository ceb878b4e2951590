"""What a push has in flight, driven by hand (no sender, no network)."""
import random

import pytest

from tekcos.push.congestion import Controller
from tekcos.push.flight import Flight, _ones
from tekcos.push.rtt import RttEstimator


def flight(total=100, sent=10, at=1.0):
    rtt = RttEstimator(initial_rto=0.2)
    rtt.sample(0.001)
    f = Flight(rtt, Controller(maximum=1000))
    f.cc.on_rtt(0.001)
    f.reset(total, 0)
    f.sent(0, sent, at)
    return f


def test_ones_lists_the_set_bits_of_masks_of_any_width():
    rng = random.Random(7)
    assert list(_ones(0, 5)) == []
    for _ in range(500):
        mask = rng.getrandbits(rng.randint(1, 3000)) << rng.randint(0, 400)
        assert list(_ones(mask, 5)) == [5 + i for i in range(mask.bit_length()) if mask >> i & 1]


def test_an_ack_retires_what_it_covers_cumulatively_and_selectively():
    f = flight()
    # 0-2 in order, then 4 and 6 (bit j = packet cumulative + 1 + j).
    assert f.on_ack(3, 0b101, now=1.002)
    assert (f.base, f.in_flight) == (3, 5)
    assert sorted(f.sent_at) == [3, 5, 7, 8, 9]
    assert f.resend == [] and f.cc.lost == 0     # one above each hole: not lost yet
    assert not f.on_ack(3, 0b101, now=1.003)     # the same ACK again: nothing new


def test_three_above_a_hole_make_it_lost_once():
    f = flight()
    f.on_ack(1, 0b111, now=1.002)                 # 0, then 2, 3, 4: 1 is missing
    assert f.resend == [1] and f.cc.lost == 1
    f.on_ack(1, 0b1111, now=1.003)                # more above it: not lost twice
    assert f.resend == [1] and f.cc.lost == 1
    assert f.take_resends(1.003) == [1] and f.retries == {1: 1}


def test_a_timeout_is_a_probe_not_a_loss():
    f = flight(sent=4)
    f.on_timer(1.0 + f.rtt.rto, room=True, silent_for=f.rtt.rto)
    assert f.probe_new and f.resend == [] and f.probes == 1 and f.cc.lost == 0
    f = flight(sent=4)
    f.on_timer(1.0 + f.rtt.rto, room=False, silent_for=f.rtt.rto)
    assert f.resend == [0] and f.probes == 1 and f.cc.lost == 0


def test_a_resent_packet_that_times_out_again_is_lost():
    f = flight(sent=1)
    f.on_timer(1.0 + f.rtt.rto, room=False, silent_for=f.rtt.rto)
    [seq] = f.take_resends(1.0 + f.rtt.rto)
    when = f.deadline()
    assert when == pytest.approx(1.0 + 3 * f.rtt.rto)    # backed off: twice the RTO
    f.on_timer(when, room=False, silent_for=when - 1.0)
    assert f.resend == [seq] and f.cc.lost == 1
