"""The sans-IO sender, driven by hand with explicit time."""
import hashlib

import pytest

from tekcos.push import wire
from tekcos.push.sender import (
    CONFIRMING,
    TAIL_PROBE_MIN,
    DELIVERED,
    FAILED,
    SENDING,
    Sender,
)

TOKEN = 0xABCDEF


def make(size=1000, payload=100, window=4, timeout=10.0):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    s = Sender(offer_id=42, name="f.bin", size=size, sha256=hashlib.sha256(data).hexdigest(),
               kind="file", read=lambda off, n: data[off:off + n], payload_size=payload,
               window=window, timeout=timeout)
    return s


def decoded(datagrams):
    return [wire.decode(d) for d in datagrams]


def accept(s, now, window=64, payload=100):
    s.receive_datagram(wire.encode_json(wire.ACCEPT, s.offer_id, {
        "token": TOKEN, "window": window, "payload": payload}), now)


def sending(size, window, rtt):
    """A sender whose offer was accepted after ``rtt`` seconds."""
    s = make(size=size, window=window)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, rtt)
    return s


def ack(s, cum, trigger, bits=0, window=64, now=0.0):
    s.receive_datagram(wire.encode_ack(TOKEN, cum, window, trigger, bits), now)


def test_window_is_respected_and_slides():
    s = make(window=4)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, 0.001, window=3)                        # receiver allows only 3
    sent = decoded(s.datagrams_to_send(0.001))
    assert [(k, t, q) for k, t, q, _ in sent] == [(wire.DATA, TOKEN, q) for q in range(3)]
    assert s.datagrams_to_send(0.001) == []
    ack(s, 2, 1, window=3, now=0.002)                 # 0 and 1 arrived
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.002))] == [3, 4]
    ack(s, 2, 4, bits=0b11, window=100, now=0.003)    # 3, 4 arrived; 2 missing
    # own window (4) now limits: base 2 .. 5
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.003))] == [5]


def test_a_timeout_sends_new_data_as_a_probe_and_its_answer_tells_what_is_lost():
    s = sending(size=1000, window=8, rtt=0.010)
    rto = s.rtt.rto
    s.burst = 3
    s.datagrams_to_send(0.010)                        # packets 0, 1, 2
    ack(s, 0, 2, bits=0b10, now=0.015)                # 2 arrived only
    assert s.get_timer() == 0.010 + rto
    s.handle_timer(0.010 + rto)
    s.burst = 1
    probe = decoded(s.datagrams_to_send(0.010 + rto))
    assert [q for _, _, q, _ in probe] == [3]         # new data: its ACK is not ambiguous
    assert (s.retransmits, s.probes, s.cc.lost) == (0, 1, 0)
    # 0 and 1 wait one more timeout for the probe's answer.
    assert s.get_timer() == 0.010 + rto + s.rtt.rto
    # Its answer: 3 arrived, 0 and 1 did not although sent well before it.
    ack(s, 0, 3, bits=0b110, now=0.011 + rto)
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.011 + rto))][:2] == [0, 1]
    assert s.cc.lost == 2


def test_with_no_room_for_new_data_the_oldest_is_the_probe():
    s = sending(size=1000, window=3, rtt=0.010)
    rto = s.rtt.rto
    s.datagrams_to_send(0.010)                        # 0, 1, 2: the window is full
    s.handle_timer(0.010 + rto)
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.010 + rto))] == [0]
    assert (s.retransmits, s.probes, s.cc.lost) == (1, 1, 0)
    # The probe backs off on its own: twice the RTO; 1 and 2 wait one more.
    assert (0.010 + rto + 2 * s.rtt.rto, 0, 1) in s.timers
    assert s.get_timer() == 0.010 + rto + s.rtt.rto


def test_an_ack_for_a_resent_packet_does_not_date_it_by_the_copy():
    # Packet 0 is probed; the ACK that comes back at once is for the first
    # copy.  Packets sent between the two copies are still on their way:
    # they are not lost.
    s = sending(size=1000, window=3, rtt=0.010)
    rto = s.rtt.rto
    s.burst = 1
    s.datagrams_to_send(0.010)                        # 0
    s.datagrams_to_send(0.015)                        # 1
    s.datagrams_to_send(0.020)                        # 2
    s.handle_timer(0.010 + rto)                       # window full: 0 is the probe
    s.datagrams_to_send(0.010 + rto)
    ack(s, 1, 0, now=0.0105 + rto)                    # 0 (the first copy) arrived
    sent = [q for _, _, q, _ in decoded(s.datagrams_to_send(0.0105 + rto))]
    assert 1 not in sent and 2 not in sent
    assert (s.cc.lost, s.retransmits) == (0, 1)


def test_a_lost_last_packet_is_probed_after_two_round_trips_not_a_timeout():
    s = sending(size=300, window=8, rtt=0.001)
    s.datagrams_to_send(0.001)                        # 0, 1, 2: everything
    ack(s, 2, 1, now=0.002)                           # 2, the last, is lost
    srtt = s.rtt.srtt
    assert s.get_timer() == pytest.approx(0.002 + max(2 * srtt, TAIL_PROBE_MIN))
    assert s.get_timer() < 0.001 + s.rtt.rto          # well before its own timeout
    s.handle_timer(s.get_timer())
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(s.get_timer()))] == [2]
    assert (s.probes, s.cc.lost) == (1, 0)


def test_a_lost_ack_for_a_whole_flight_costs_one_probe_and_no_cut():
    s = sending(size=1000, window=16, rtt=0.010)
    cwnd = s.cc.cwnd
    s.datagrams_to_send(0.010)                        # 0..9, their one ACK is lost
    now = s.get_timer()
    s.handle_timer(now)
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(now))] == [0]
    s.handle_timer(now + 0.001)                       # the others wait for the answer
    assert s.datagrams_to_send(now + 0.001) == []
    ack(s, 10, 0, now=now + 0.002)                    # everything had arrived
    assert s.state == CONFIRMING
    assert (s.retransmits, s.cc.lost, s.cc.reductions) == (1, 0, 0)
    assert s.cc.cwnd >= cwnd


def test_packets_sent_well_before_an_acknowledged_one_are_lost_at_once():
    s = sending(size=1000, window=16, rtt=0.010)
    s.burst = 4
    s.datagrams_to_send(0.010)                        # 0..3
    s.datagrams_to_send(0.013)                        # 4..7, 3 ms later
    ack(s, 0, 4, bits=0b1000, now=0.014)              # only 4 arrived
    # One packet above the holes (not three), but sent well after them.
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.014))][:4] == [0, 1, 2, 3]
    assert s.retransmits == 4


def test_karn_no_rtt_sample_from_a_retransmitted_packet():
    s = make(size=100, window=8)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, 0.010)
    s.datagrams_to_send(0.010)
    srtt = s.rtt.srtt
    s.handle_timer(5.0)
    s.datagrams_to_send(5.0)                          # packet 0 resent
    ack(s, 1, 0, now=5.001)                           # ambiguous: original or copy?
    assert s.rtt.srtt == srtt


def test_fast_retransmit_after_three_later_packets():
    s = make(size=1000, window=16)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, 0.010)
    s.datagrams_to_send(0.010)                        # 0..9
    # bit j of an ACK = packet cum + 1 + j
    ack(s, 1, 2, bits=0b1, now=0.011)                 # 0, 2 (1 missing)
    ack(s, 1, 3, bits=0b11, now=0.011)                # + 3
    assert s.datagrams_to_send(0.011) == []           # two above the hole: not yet
    ack(s, 1, 4, bits=0b111, now=0.012)               # + 4: three above
    assert [q for _, _, q, _ in decoded(s.datagrams_to_send(0.012))] == [1]
    ack(s, 1, 5, bits=0b1111, now=0.013)              # no second fast resend
    assert s.datagrams_to_send(0.013) == []


def test_done_and_fail_and_silence():
    s = make(size=100, window=8)
    s.start(0.0)
    s.datagrams_to_send(0.0)
    accept(s, 0.01)
    s.datagrams_to_send(0.01)
    ack(s, 1, 0, now=0.02)
    assert s.state == CONFIRMING
    [(kind, _, _, _)] = decoded(s.datagrams_to_send(0.02))
    assert kind == wire.PROBE
    s.receive_datagram(wire.encode_json(wire.DONE, TOKEN, {"name": "f-1.bin"}), 0.03)
    assert (s.status, s.stored_name, s.get_timer()) == (DELIVERED, "f-1.bin", None)

    s = make(size=100)
    s.start(0.0)
    accept(s, 0.01)
    s.receive_datagram(wire.encode_json(wire.FAIL, TOKEN, {"error": "SHA-256 mismatch"}), 0.02)
    assert (s.status, s.error, s.failed_by_peer) == (FAILED, "SHA-256 mismatch", True)

    s = make(size=1000, timeout=3.0)
    s.start(0.0)
    accept(s, 0.01)
    assert s.state == SENDING
    now = 0.01
    while not s.finished:
        now = s.get_timer()
        s.handle_timer(now)
        s.datagrams_to_send(now)
    assert s.status == FAILED and "stopped answering" in s.error
    assert now == 0.01 + 3.0 and not s.failed_by_peer


def test_selective_acknowledgement_bits_are_listed_for_masks_of_any_width():
    import random

    from tekcos.push.sender import _ones
    rng = random.Random(7)
    assert list(_ones(0, 5)) == []
    for _ in range(500):
        mask = rng.getrandbits(rng.randint(1, 3000)) << rng.randint(0, 400)
        assert list(_ones(mask, 5)) == [5 + i for i in range(mask.bit_length()) if mask >> i & 1]
