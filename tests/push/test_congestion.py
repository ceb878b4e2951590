"""The congestion controller with explicit time (no network, no reactor)."""
import pytest

from tekcos.push.congestion import (
    BACKGROUND_GAIN,
    BACKGROUND_TARGET,
    BETA,
    BURST,
    INITIAL_WINDOW,
    LOSS_SAMPLE,
    MINIMUM_WINDOW,
    RECENT_SAMPLES,
    BackgroundController,
    Controller,
)


def warmed(cwnd=100.0, min_rtt=0.001):
    cc = Controller(maximum=10_000)
    cc.on_rtt(min_rtt, min_rtt)
    cc.cwnd = cwnd
    cc.ssthresh = 50.0            # congestion avoidance
    return cc


def test_slow_start_grows_by_what_is_acknowledged_then_one_packet_per_window():
    cc = Controller(maximum=10_000)
    assert cc.window == INITIAL_WINDOW and cc.in_slow_start
    cc.on_ack(INITIAL_WINDOW)                  # one round trip: doubled
    assert cc.window == 2 * INITIAL_WINDOW
    cc.ssthresh = cc.cwnd
    before = cc.cwnd
    cc.on_ack(int(before))                     # one round trip in congestion avoidance
    assert cc.cwnd == pytest.approx(before + 1, abs=0.05)


def test_slow_start_stops_when_the_round_trip_grows():
    cc = Controller(maximum=10_000)
    cc.on_rtt(0.001, 0.001)
    cc.on_ack(100)
    for _ in range(RECENT_SAMPLES):
        cc.on_rtt(0.030, 0.020)                # a queue is building
    assert not cc.in_slow_start


def test_one_late_answer_is_not_a_queue():
    cc = Controller(maximum=10_000)
    cc.on_rtt(0.001, 0.001)
    cc.on_ack(100)
    cc.on_rtt(0.030, 0.005)                    # a busy host answered late once
    cc.on_rtt(0.001, 0.005)
    assert cc.in_slow_start
    cc = warmed()
    cc.on_rtt(0.040)
    cc.on_ack(95)
    cc.on_loss(sent_at=1.0, now=1.5)           # random loss just after the spike
    assert cc.reductions == 0


def test_loss_with_a_queue_reduces_once_per_recovery_period():
    cc = warmed()
    for _ in range(RECENT_SAMPLES):
        cc.on_rtt(0.050)                       # every recent answer waited in a queue
    cc.on_loss(sent_at=1.0, now=2.0, srtt=0.050)
    assert cc.cwnd == pytest.approx(100 * BETA)
    cc.on_loss(sent_at=1.5, now=2.01, srtt=0.050)   # sent before the reduction: same event
    assert cc.cwnd == pytest.approx(100 * BETA)
    cc.on_loss(sent_at=2.05, now=2.1, srtt=0.050)   # sent after it: a new event
    assert cc.cwnd == pytest.approx(100 * BETA * BETA)
    assert cc.reductions == 2


def test_isolated_random_loss_on_an_idle_path_is_not_congestion():
    cc = warmed()
    for i in range(5):
        cc.on_ack(95)
        cc.on_loss(sent_at=float(i), now=i + 0.5, srtt=0.001)   # 5% lost, no queue
    assert cc.reductions == 0 and cc.cwnd > 100


def test_heavy_loss_is_congestion_even_without_a_queue():
    cc = warmed()
    cc.on_ack(200)
    for i in range(30):
        cc.on_loss(sent_at=float(i), now=i + 0.5, srtt=0.001)
    assert cc.reductions >= 1 and cc.cwnd < 100


def test_persistent_congestion_goes_back_to_the_minimum():
    cc = warmed()
    cc.on_persistent_congestion(now=3.0)
    assert cc.window == MINIMUM_WINDOW


def test_pacing_spreads_a_window_over_a_round_trip():
    cc = warmed(cwnd=100.0)
    srtt = 0.010                               # 1.25 * 100 / 10 ms = 12,500 packets/s
    assert cc.rate(srtt) == pytest.approx(12_500)
    assert cc.send_budget(0.0, srtt) == BURST  # a burst may leave at once
    cc.sent(BURST)
    assert cc.send_budget(0.0, srtt) == 0
    wake = cc.next_send_time(0.0, srtt)
    assert wake == pytest.approx(1 / 12_500)
    assert cc.send_budget(wake, srtt) == 1
    cc.sent(1)
    assert cc.send_budget(wake + 0.001, srtt) == 12   # 1 ms later: 12.5 more


def test_random_loss_in_a_small_window_does_not_spiral_down():
    # 5% of packets lost at random, no queue, window 20: in a sample of only
    # four windows 5% often looks like 10%; the share is measured over at
    # least LOSS_SAMPLE packets, so no cut.
    import random
    rng = random.Random(1)
    cc = warmed(cwnd=20.0)
    for i in range(5000):
        if rng.random() < 0.05:
            cc.on_loss(sent_at=i * 1e-3, now=i * 1e-3 + 5e-4)
        else:
            cc.on_ack(1)
    assert cc.reductions == 0 and cc.cwnd > 20
    assert LOSS_SAMPLE >= 1000


def test_a_cut_on_the_loss_share_alone_uses_that_evidence_up():
    # A burst of losses on an idle path (no queue): one cut.  The losses
    # that follow at once, while few new packets have been seen, do not cut
    # again round trip after round trip (the spiral a small window makes).
    cc = warmed(cwnd=200.0)
    cc.on_ack(200)
    for i in range(40):
        cc.on_loss(sent_at=1.0 + i * 1e-3, now=1.5)
    assert cc.reductions == 1
    for i in range(20):
        cc.on_ack(5)
        cc.on_loss(sent_at=2.0 + i, now=2.5 + i)    # each a new round trip
    assert cc.reductions == 1


def background(cwnd=100.0, min_rtt=0.001):
    cc = BackgroundController(maximum=10_000)
    cc.on_rtt(min_rtt)
    cc.cwnd = cwnd
    cc.ssthresh = 50.0
    return cc


def test_background_grows_while_the_path_shows_no_queue():
    cc = background()
    for _ in range(10):                        # ten round trips, no queue
        cc.on_rtt(0.001)
        cc.on_ack(int(cc.cwnd))
    assert cc.cwnd == pytest.approx(100 + 10 * BACKGROUND_GAIN, abs=0.5)


def test_background_holds_at_its_target_queue():
    cc = background()
    for _ in range(RECENT_SAMPLES):
        cc.on_rtt(0.001 + BACKGROUND_TARGET)     # exactly the target
    cc.on_ack(100)
    assert cc.cwnd == pytest.approx(100)


def test_background_gives_way_within_a_few_round_trips_of_a_full_queue():
    # A TCP stream filled the bottleneck's 50 ms queue.
    cc = background(cwnd=400.0)
    for _ in range(RECENT_SAMPLES):
        cc.on_rtt(0.051)
    for _ in range(8):                         # eight round trips
        cc.on_ack(int(cc.cwnd))
    assert cc.window == MINIMUM_WINDOW
    normal = warmed(cwnd=400.0)                # a normal push would not yield
    for _ in range(RECENT_SAMPLES):
        normal.on_rtt(0.051)
    normal.on_ack(400)
    assert normal.cwnd > 400


def test_background_leaves_slow_start_at_half_its_target():
    cc = BackgroundController(maximum=10_000)
    cc.on_rtt(0.001)
    cc.on_ack(100)
    assert cc.in_slow_start
    for _ in range(RECENT_SAMPLES):
        cc.on_rtt(0.001 + 0.6 * BACKGROUND_TARGET)
    assert not cc.in_slow_start


def test_background_paces_at_its_window_without_probing_above_it():
    cc = background(cwnd=100.0)
    assert cc.rate(0.010) == pytest.approx(100 / 0.010)
