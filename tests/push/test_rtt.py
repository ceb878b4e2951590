import pytest

from tekcos.push.rtt import RttEstimator


def test_first_sample_then_smoothing_rfc6298():
    rtt = RttEstimator(initial_rto=1.0, min_rto=0.0, max_rto=60)
    assert rtt.rto == 1.0
    rtt.sample(0.100)
    assert rtt.srtt == pytest.approx(0.100)
    assert rtt.rttvar == pytest.approx(0.050)
    assert rtt.rto == pytest.approx(0.100 + 4 * 0.050)
    rtt.sample(0.200)
    assert rtt.rttvar == pytest.approx(0.75 * 0.050 + 0.25 * 0.100)
    assert rtt.srtt == pytest.approx(0.875 * 0.100 + 0.125 * 0.200)
    assert rtt.rto == pytest.approx(rtt.srtt + 4 * rtt.rttvar)


def test_floor_ceiling_and_per_packet_backoff():
    rtt = RttEstimator(min_rto=0.02, max_rto=1.0)
    rtt.sample(0.0001)
    assert rtt.rto == 0.02
    assert [rtt.backoff(n) for n in range(4)] == [0.02, 0.04, 0.08, 0.16]
    assert rtt.backoff(20) == 1.0
