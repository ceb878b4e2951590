"""The sans-IO receiving endpoint, driven by hand."""
import hashlib
import os
import re
from concurrent.futures import Future

import pytest

from tekcos import hello
from tekcos.push import wire
from tekcos.push.receiver import Limits, Receiver
from tekcos.push.worker import DiskWorker
from tests.fakes import Disk

PEER = ("127.0.0.9", 5555)


def offer(offer_id=1, name="a.bin", data=b"", kind="file", sender="alice", payload=100,
          pad=200, **extra):
    body = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "kind": kind, "from": sender, "payload": payload, **extra}
    return wire.encode_json(wire.OFFER, offer_id, body, pad_to=pad)


@pytest.fixture
def ep(tmp_path):
    done = []
    endpoint = Receiver(Disk(tmp_path), Limits(max_file_size=10_000, max_sessions=2,
                                               max_pending=2, idle_timeout=5, linger=2,
                                               window=8, payload=100),
                        on_complete=done.append, server_info={"server": "test"},
                        token=iter(range(100, 200)).__next__)
    endpoint.completed = done
    endpoint.dir = tmp_path
    return endpoint


def out(ep, now=0.0):
    return [(wire.decode(d), addr) for d, addr in ep.datagrams_to_send(now)]


def answer(ep, now=0.0):
    [((kind, session, seq, payload), addr)] = out(ep, now)
    assert addr == PEER
    return kind, session, wire.decode_json(payload) if kind != wire.ACK else payload


def send_data(ep, token, data, seqs, payload=100, now=0.0):
    for seq in seqs:
        ep.receive_datagram(wire.encode(wire.DATA, token, seq,
                                        data[seq * payload:(seq + 1) * payload]), PEER, now)


def test_a_whole_file_in_disorder_arrives_verified(ep):
    data = os.urandom(750)
    ep.receive_datagram(offer(data=data), PEER, 0.0)
    kind, session, body = answer(ep)
    assert (kind, session, body) == (wire.ACCEPT, 1, {"token": 100, "window": 8, "payload": 100})
    send_data(ep, 100, data, [1, 3, 2, 7, 3, 0])
    [((kind, token, cum, payload), _)] = out(ep)
    assert (kind, token) == (wire.ACK, 100)
    assert wire.decode_ack(cum, payload) == (4, 8, 0, 0b100)   # 0-3 in order, 7 buffered
    [part] = os.listdir(ep.dir)                      # hidden until verified
    assert re.fullmatch(r"\.[0-9a-f]{16}\.part", part)
    send_data(ep, 100, data, [4, 5, 6])
    kind, _, body = answer(ep)
    assert kind == wire.DONE and body["name"] == "a.bin"
    assert (ep.dir / "a.bin").read_bytes() == data
    assert os.listdir(ep.dir) == ["a.bin"]
    [received] = ep.completed
    assert (received.kind, received.sender, received.name, received.size) == \
        ("file", "alice", "a.bin", 750)
    send_data(ep, 100, data, [6])                  # a late duplicate: DONE again
    assert answer(ep)[0] == wire.DONE


def test_checksum_mismatch_fails_and_leaves_nothing(ep):
    data = os.urandom(150)
    ep.receive_datagram(offer(data=data), PEER, 0.0)
    out(ep)
    bad = bytearray(data)
    bad[0] ^= 1
    send_data(ep, 100, bytes(bad), [0, 1])
    kind, _, body = answer(ep)
    assert kind == wire.FAIL and "SHA-256" in body["error"]
    assert os.listdir(ep.dir) == [] and ep.completed == []


@pytest.mark.parametrize("make, reason", [
    (lambda: offer(data=b"x" * 10_001), "file too large"),
    (lambda: offer(name="../", data=b"x"), "invalid name"),
    (lambda: offer(name="a\x00b", data=b"x"), "invalid name"),
    (lambda: offer(kind="folder", data=b"x"), "unknown kind"),
    (lambda: offer(kind="message", data=b"x" * 5000), "message larger"),
    (lambda: offer(data=b"x", sha256="nothex"), "bad sha256"),
])
def test_refusals_come_before_any_data(ep, make, reason):
    ep.receive_datagram(make(), PEER, 0.0)
    kind, session, body = answer(ep)
    assert kind == wire.REJECT and reason in body["error"]
    assert os.listdir(ep.dir) == [] and ep.sessions == {}


def test_not_enough_disk_and_too_many_sessions(ep):
    ep.downloads.free = 100
    ep.receive_datagram(offer(data=b"x" * 500), PEER, 0.0)
    assert "not enough disk space" in answer(ep)[2]["error"]
    ep.downloads.free = 10 << 30
    for i in range(2):   # two different files (the same one twice: see test_resume.py)
        ep.receive_datagram(offer(offer_id=10 + i, data=b"xy"[i:i + 1] * 500), PEER, 0.0)
        kind, _, body = answer(ep)
        assert kind == wire.ACCEPT
        send_data(ep, body["token"], b"xy"[i:i + 1] * 500, [0])   # a real sender: validated
        out(ep)
    ep.receive_datagram(offer(offer_id=12, data=b"x" * 500), PEER, 0.0)
    kind, _, body = answer(ep)
    assert kind == wire.REJECT
    assert body == {"error": "busy: 2 transfers in progress; retry in 2 s", "retry_after": 2.0}


def test_a_flood_of_offers_cannot_lock_out_a_real_sender(ep):
    for i in range(50):
        flooder = ("127.0.0.13", 1 + i % 3)
        ep.receive_datagram(offer(offer_id=i, name="junk", data=b"x" * 500), flooder, 0.0)
    ep.datagrams_to_send(0.0)
    assert len(ep.sessions) == 2             # the pending table is full of unanswered offers
    assert os.listdir(ep.dir) == []          # nothing on disk for unanswered offers
    data = os.urandom(300)
    ep.receive_datagram(offer(offer_id=999, data=data), PEER, 0.1)
    kind, _, body = answer(ep, 0.1)
    assert kind == wire.ACCEPT
    send_data(ep, body["token"], data, [0, 1, 2], now=0.1)
    assert answer(ep, 0.1)[0] == wire.DONE
    assert (ep.dir / "a.bin").read_bytes() == data
    # Unanswered offers expire after the handshake timeout.
    ep.handle_timer(5.1)
    assert all(s.validated for s in ep.sessions.values())


def test_a_repeated_offer_gets_the_same_answer_not_a_new_session(ep):
    ep.receive_datagram(offer(data=b"x" * 500), PEER, 0.0)
    first = answer(ep)
    ep.receive_datagram(offer(data=b"x" * 500), PEER, 0.1)
    assert answer(ep) == first and len(ep.sessions) == 1


def test_never_more_than_three_times_the_bytes_received_to_an_unvalidated_address(ep):
    tiny = offer(data=b"x" * 500, pad=0)
    ep.receive_datagram(tiny, PEER, 0.0)
    accept = ep.datagrams_to_send(0.0)
    ep.server_info = {"server": "test", "version": "0.1.0", "chat_port": 9000}
    bare = wire.encode(wire.HELLO, 0, 0, b"")      # 24 bytes: the ~90-byte reply exceeds 72
    ep.receive_datagram(bare, ("127.0.0.10", 1), 0.0)
    assert ep.datagrams_to_send(0.0) == []
    padded = hello.request()
    ep.receive_datagram(padded, ("127.0.0.10", 1), 0.0)
    [(reply, addr)] = ep.datagrams_to_send(0.0)
    kind, _, _, payload = wire.decode(reply)
    assert kind == wire.HELLO_REPLY and wire.decode_json(payload)["server"] == "test"
    # A spoofed flood of offers from one address never gets more than 3x back.
    victim = ("127.0.0.11", 7)
    sent_in = sent_out = 0
    for i in range(50):
        d = offer(offer_id=1000 + i, name="../", data=b"x", pad=0)
        ep.receive_datagram(d, victim, 0.0)
        sent_in += len(d)
        sent_out += sum(len(x) for x, _ in ep.datagrams_to_send(0.0))
    assert 0 < sent_out <= 3 * sent_in
    assert len(accept[0][0]) <= 3 * len(tiny)


def test_data_from_another_address_or_token_is_ignored(ep):
    data = os.urandom(200)
    ep.receive_datagram(offer(data=data), PEER, 0.0)
    out(ep)
    ep.receive_datagram(wire.encode(wire.DATA, 100, 0, data[:100]), ("127.0.0.66", 1), 0.0)
    ep.receive_datagram(wire.encode(wire.DATA, 999, 0, data[:100]), PEER, 0.0)
    ep.receive_datagram(wire.encode(wire.DATA, 100, 0, data[:99]), PEER, 0.0)   # wrong length
    assert ep.sessions[100].cum == 0


def test_one_address_holds_at_most_four_unanswered_offers(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32))
    for i in range(10):
        ep.receive_datagram(offer(offer_id=i, data=b"x" * 500), PEER, 0.0)
    replies = [wire.decode(d) for d, _ in ep.datagrams_to_send(0.0)]
    assert [r[0] for r in replies] == [wire.ACCEPT] * 4 + [wire.REJECT] * 6
    assert len(ep.sessions) == 4
    # Told to offer again (busy), not refused: the sender waits and retries.
    assert all(wire.decode_json(r[3])["retry_after"] == 1.0 for r in replies[4:])


def test_silent_sender_is_cleaned_up(ep):
    ep.receive_datagram(offer(data=b"x" * 500), PEER, 0.0)
    out(ep)
    assert ep.get_timer() == 5.0        # handshake timeout until the token comes back
    send_data(ep, 100, b"x" * 500, [0], now=1.0)
    assert ep.get_timer() == 6.0
    ep.handle_timer(6.0)
    assert ep.sessions == {} and ep.get_timer() is None
    # What arrived is kept for the same push run again (see test_resume.py) ...
    [checkpoint] = [n for n in os.listdir(ep.dir) if n.endswith(".resume")]
    assert sorted(os.listdir(ep.dir)) == [checkpoint[:-len("resume")] + "part", checkpoint]
    assert ep.downloads.checkpoint(checkpoint[1:17]).have == 100


def test_silent_sender_leaves_nothing_when_resuming_is_off(tmp_path):
    endpoint = Receiver(Disk(tmp_path), Limits(idle_timeout=5, payload=100, resume_seconds=0),
                        token=iter(range(100, 200)).__next__)
    endpoint.receive_datagram(offer(data=b"x" * 500), PEER, 0.0)
    endpoint.datagrams_to_send(0.0)
    send_data(endpoint, 100, b"x" * 500, [0], now=1.0)
    endpoint.handle_timer(6.0)
    assert endpoint.sessions == {} and os.listdir(tmp_path) == []


def test_message_is_reported_with_its_text(ep):
    text = "hello there\nsecond line".encode()
    ep.receive_datagram(offer(kind="message", name="", data=text), PEER, 0.0)
    assert answer(ep)[0] == wire.ACCEPT
    send_data(ep, 100, text, [0])
    assert answer(ep)[0] == wire.DONE
    [received] = ep.completed
    assert (received.kind, received.text) == ("message", "hello there\nsecond line")
    assert os.listdir(ep.dir) == []


def test_empty_file_completes_on_probe(ep):
    ep.receive_datagram(offer(data=b""), PEER, 0.0)
    assert answer(ep)[0] == wire.ACCEPT
    ep.receive_datagram(wire.encode(wire.PROBE, 100, 0), PEER, 0.1)
    assert answer(ep)[0] == wire.DONE
    assert (ep.dir / "a.bin").read_bytes() == b""


def test_abort_discards(ep):
    ep.receive_datagram(offer(data=b"x" * 500), PEER, 0.0)
    out(ep)
    ep.receive_datagram(wire.encode_json(wire.ABORT, 100, {"error": "user"}), PEER, 0.1)
    assert ep.sessions == {} and os.listdir(ep.dir) == []


def test_hostile_json_and_huge_names_get_a_bounded_refusal_not_an_exception(ep):
    # Correct checksums, hostile contents: deep nesting, a 60 kB name, a huge body.
    for offer_id, payload in enumerate([b"[" * 2000, b"{" * 5000 + b"}" * 5000,
                                        b"x" * 60_000], start=10):
        ep.receive_datagram(wire.encode(wire.OFFER, offer_id, 0, payload), PEER, 0.0)
        kind, session, body = answer(ep)
        assert (kind, session) == (wire.REJECT, offer_id)
        assert body["error"] in ("JSON nested too deeply", "JSON too large")
    ep.receive_datagram(offer(offer_id=20, name="n" * 2000, pad=0), PEER, 0.0)
    kind, _, body = answer(ep)
    assert kind == wire.REJECT and body["error"] == "name longer than 1024 characters"
    ep.receive_datagram(offer(offer_id=21, name="\x00" + "é" * 700, pad=0), PEER, 0.0)
    kind, _, body = answer(ep)
    assert kind == wire.REJECT and len(body["error"]) <= 300


class FullDisk(Disk):
    """Writes fail with ENOSPC once ``room`` bytes have been written."""

    def __init__(self, path, room):
        super().__init__(path)
        self.room = room

    def open_part(self, name, tag, *resuming):
        part = super().open_part(name, tag, *resuming)
        disk = self
        write = part._write

        def limited_write(data):   # what the disk worker does, up to the room left
            if len(data) > disk.room:
                import errno
                part._failed = OSError(errno.ENOSPC, "No space left on device")
                return
            disk.room -= len(data)
            write(data)
        part._write = limited_write
        return part


def test_a_disk_that_fills_up_fails_the_push_at_once_and_removes_the_part(tmp_path):
    from tekcos.push import storage
    endpoint = Receiver(FullDisk(tmp_path, room=1000), Limits(window=64, payload=100),
                        token=iter(range(100, 200)).__next__)
    data = os.urandom(3000)
    original = storage.FLUSH_AT
    storage.FLUSH_AT = 500            # flush often, so the failure shows mid-file
    try:
        endpoint.receive_datagram(offer(data=data), PEER, 0.0)
        endpoint.datagrams_to_send(0.0)
        send_data(endpoint, 100, data, range(30))
        sent = [wire.decode(d) for d, _ in endpoint.datagrams_to_send(0.0)]
    finally:
        storage.FLUSH_AT = original
    fails = [wire.decode_json(p) for kind, _, _, p in sent if kind == wire.FAIL]
    # Told at once (and once per DATA datagram that arrives after it).
    assert fails and all(f == {"error": "cannot store the file: No space left on device"}
                         for f in fails)
    assert not any(kind == wire.ACK for kind, _, _, _ in sent)
    assert os.listdir(tmp_path) == []                 # the .part went at once
    # A retransmission gets the same answer (it raised KeyError before).
    send_data(endpoint, 100, data, [12])
    [(kind, _, _, body)] = [wire.decode(d) for d, _ in endpoint.datagrams_to_send(1.0)]
    assert kind == wire.FAIL and b"No space left" in body


def test_an_offer_pushed_out_of_the_pending_table_is_told_to_retry(ep):
    ep.receive_datagram(offer(offer_id=7, data=b"x" * 500), PEER, 0.0)
    token = answer(ep)[2]["token"]
    for i in range(2):     # a flood from two other addresses pushes it out
        ep.receive_datagram(offer(offer_id=50 + i, name="junk", data=b"x" * 500),
                            ("127.0.0.13", 1 + i), 0.1)
    ep.datagrams_to_send(0.1)
    assert token not in ep.sessions
    send_data(ep, token, b"x" * 500, [0], now=0.2)   # it echoes its token after all
    kind, session, body = answer(ep, 0.2)
    assert (kind, session) == (wire.REJECT, 7) and body["retry_after"] == 2.0
    send_data(ep, token, b"x" * 500, [1], now=0.2)   # told once
    assert out(ep, 0.2) == []


def test_transfers_under_way_are_never_evicted_and_one_address_is_capped(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=4, max_per_address=2, max_pending=1,
                                         payload=100), token=iter(range(100, 200)).__next__)
    tokens = []
    for i in range(2):   # two different files
        ep.receive_datagram(offer(offer_id=i, data=b"xy"[i:i + 1] * 500), PEER, 0.0)
        tokens.append(answer(ep)[2]["token"])
        send_data(ep, tokens[-1], b"xy"[i:i + 1] * 500, [0])
        out(ep)
    ep.receive_datagram(offer(offer_id=9, data=b"x" * 500), PEER, 0.0)
    kind, _, body = answer(ep)
    assert kind == wire.REJECT and body["error"].startswith(
        "busy: 2 transfers from your address in progress")
    for i in range(20):   # a flood from elsewhere churns the pending table only
        ep.receive_datagram(offer(offer_id=100 + i, name="junk", data=b"x" * 500),
                            ("127.0.0.13", i), 0.0)
    ep.datagrams_to_send(0.0)
    assert all(t in ep.sessions for t in tokens)


def test_reordering_memory_is_capped_across_transfers(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_buffered=300, window=64, payload=100),
                  token=iter(range(100, 200)).__next__)
    data = os.urandom(1000)
    ep.receive_datagram(offer(data=data), PEER, 0.0)
    token = answer(ep)[2]["token"]
    send_data(ep, token, data, [1, 2, 3, 4, 5])      # only three fit
    assert ep.buffered == 300 and sorted(ep.sessions[token].buffer) == [1, 2, 3]
    send_data(ep, token, data, [0, 4, 5, 6, 7, 8, 9])
    assert ep.buffered == 0
    assert [k for (k, *_), _ in out(ep)][-1] == wire.DONE
    assert (tmp_path / "a.bin").read_bytes() == data


class HeldWorker(DiskWorker):
    """Runs disk jobs only when the test says so (a slow disk)."""

    def __init__(self):
        super().__init__(threaded=False)
        self.held = []

    def submit(self, job, *args):
        future = Future()
        self.held.append((future, job, args))
        return future

    def run_all(self):
        while self.held:
            future, job, args = self.held.pop(0)
            future.set_result(job(*args))


def held(disk):
    """A receiver on ``disk`` whose disk jobs run when the test says so."""
    disk.worker = worker = HeldWorker()
    return worker, Receiver(disk, Limits(window=8, payload=100))


def test_the_last_ack_goes_out_while_the_file_is_still_being_published(tmp_path):
    worker, ep = held(Disk(tmp_path))
    data = os.urandom(250)
    ep.receive_datagram(offer(data=data), PEER, 0.0)
    worker.run_all()                                  # the offer's disk look
    token = wire.decode_json(wire.decode(ep.datagrams_to_send(0.0)[0][0])[3])["token"]
    send_data(ep, token, data, [0, 1, 2])
    # Written, hashed and fsynced later: the sender still learns at once
    # that nothing is missing, so it does not wait and resend.
    [((kind, _, cum, payload), _)] = out(ep)
    assert (kind, wire.decode_ack(cum, payload)[0]) == (wire.ACK, 3)
    assert ep.publishing
    worker.run_all()
    ep.poll(0.01)
    [((kind, _, _, body), _)] = out(ep, 0.01)
    assert kind == wire.DONE and wire.decode_json(body)["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_offer_is_answered_once_the_disk_thread_has_looked(tmp_path):
    # Free space and a kept checkpoint are read on the disk thread, never
    # on the reactor's; the sender's repeated OFFERs meanwhile start no
    # second look, and the answer comes when the look is done.
    worker, ep = held(Disk(tmp_path))
    data = os.urandom(250)
    for _ in range(3):
        ep.receive_datagram(offer(data=data), PEER, 0.0)
        assert ep.datagrams_to_send(0.0) == []
    assert len(worker.held) == 1
    worker.run_all()
    ep.poll(0.01)
    [((kind, _, _, body), _)] = out(ep, 0.01)
    assert kind == wire.ACCEPT and wire.decode_json(body)["token"]
    ep.receive_datagram(offer(data=data), PEER, 0.02)          # its ACCEPT was lost
    [((kind, _, _, _), _)] = out(ep, 0.02)
    assert kind == wire.ACCEPT and not worker.held


def test_an_offer_the_disk_cannot_hold_is_refused_after_the_look(tmp_path):
    class Tiny(Disk):
        def free_bytes(self):
            return 100

    worker, ep = held(Tiny(tmp_path))
    ep.receive_datagram(offer(data=os.urandom(250)), PEER, 0.0)
    assert ep.datagrams_to_send(0.0) == []
    worker.run_all()
    [((kind, _, _, body), _)] = out(ep, 0.01)
    assert kind == wire.REJECT and "not enough disk space" in wire.decode_json(body)["error"]


def test_caps_count_a_host_not_its_sockets(tmp_path):
    # One host with many sockets (ports) holds four unanswered offers in
    # all, as one socket would; another host is answered at once.
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32))
    for port in range(10):
        ep.receive_datagram(offer(offer_id=port, data=b"x" * 500), ("127.0.0.9", 1000 + port),
                            0.0)
    kinds = [wire.decode(d)[0] for d, _ in ep.datagrams_to_send(0.0)]
    assert kinds == [wire.ACCEPT] * 4 + [wire.REJECT] * 6
    ep.receive_datagram(offer(offer_id=77, data=b"x" * 500), ("127.0.0.8", 1), 0.0)
    assert [wire.decode(d)[0] for d, _ in ep.datagrams_to_send(0.0)] == [wire.ACCEPT]


def test_an_ipv6_host_is_counted_on_its_slash_64(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32))
    for i in range(6):   # temporary addresses (RFC 8981): one host, many addresses
        ep.receive_datagram(offer(offer_id=i, data=b"x" * 500),
                            (f"2001:db8:0:1::{i + 1:x}", 5000, 0, 0), 0.0)
    kinds = [wire.decode(d)[0] for d, _ in ep.datagrams_to_send(0.0)]
    assert kinds == [wire.ACCEPT] * 4 + [wire.REJECT] * 2


def test_transfers_per_address_count_a_host_not_its_sockets(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=8, max_per_address=2, payload=100),
                  token=iter(range(100, 200)).__next__)
    tokens = {}
    for i in range(3):   # three sockets of one host offer, then all start at once
        addr = ("127.0.0.9", 2000 + i)
        ep.receive_datagram(offer(offer_id=i, data=bytes([i]) * 500), addr, 0.0)
        [(accept, _)] = ep.datagrams_to_send(0.0)
        tokens[addr] = wire.decode_json(wire.decode(accept)[3])["token"]
    kinds = []
    for i, (addr, token) in enumerate(tokens.items()):
        ep.receive_datagram(wire.encode(wire.DATA, token, 0, bytes([i]) * 100), addr, 0.0)
        [(reply, _)] = ep.datagrams_to_send(0.0)
        kinds.append(wire.decode(reply)[0])
        if kinds[-1] == wire.REJECT:
            assert wire.decode_json(wire.decode(reply)[3])["error"].startswith(
                "busy: 2 transfers from your address in progress")
    assert kinds == [wire.ACK, wire.ACK, wire.REJECT]
    ep.receive_datagram(offer(offer_id=9, data=b"z" * 500), ("127.0.0.9", 3000), 0.0)
    [(reply, _)] = ep.datagrams_to_send(0.0)
    assert wire.decode(reply)[0] == wire.REJECT


def flood(ep, count, now, first_id=10_000):
    """``count`` offers from as many spoofed addresses; the answers are
    thrown away (a spoofer never sees them)."""
    for i in range(count):
        ep.receive_datagram(offer(offer_id=first_id + i, name="junk", data=b"x" * 500),
                            (f"127.1.{i // 250}.{i % 250 + 1}", 4000), now)
    return ep.datagrams_to_send(now)


def test_an_offer_flood_gets_cookies_not_state_and_a_real_sender_gets_through(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32, max_pending=256, payload=100))
    answers = flood(ep, 1000, 0.0)
    kinds = [wire.decode(d)[0] for d, _ in answers]
    # The first ones are checked in full; past the rate, a RETRY and no state.
    assert kinds.count(wire.RETRY) >= 700
    assert len(ep.sessions) <= 256 and ep.stats["retries"] == kinds.count(wire.RETRY)
    # The real sender is in the same flood: its first offer gets a cookie,
    # the offer again with it is checked and accepted.
    data = os.urandom(300)
    ep.receive_datagram(offer(offer_id=5, data=data), PEER, 0.0)
    kind, _, body = answer(ep, 0.0)
    assert kind == wire.RETRY
    ep.receive_datagram(offer(offer_id=5, data=data, cookie=body["cookie"]), PEER, 0.0)
    kind, _, body = answer(ep, 0.0)
    assert kind == wire.ACCEPT
    send_data(ep, body["token"], data, [0, 1, 2], now=0.03)
    assert answer(ep, 0.03)[0] == wire.DONE


def test_a_cookie_is_good_only_for_its_address_and_offer_and_for_a_while(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32, payload=100))
    flood(ep, 400, 0.0)
    ep.receive_datagram(offer(offer_id=5, data=b"x" * 500), PEER, 0.0)
    [(retry, _)] = ep.datagrams_to_send(0.0)
    cookie = wire.decode_json(wire.decode(retry)[3])["cookie"]
    flood(ep, 400, 1.0, first_id=20_000)
    for offer_id, addr, now in [(6, PEER, 1.0), (5, ("127.0.0.9", 5556), 1.0), (5, PEER, 25.0)]:
        if now > 20:
            flood(ep, 400, now, first_id=30_000)
        ep.receive_datagram(offer(offer_id=offer_id, data=b"x" * 500, cookie=cookie), addr, now)
        [(reply, _)] = ep.datagrams_to_send(now)
        assert wire.decode(reply)[0] == wire.RETRY, (offer_id, addr, now)


def test_a_host_with_a_cookie_still_gets_only_its_share_of_checks(tmp_path):
    ep = Receiver(Disk(tmp_path), Limits(max_sessions=32, payload=100))
    answers = []
    for i in range(200):   # one real host offering as fast as it can
        ep.receive_datagram(offer(offer_id=i, data=b"x" * 500, resume=False), PEER, 0.0)
        answers += ep.datagrams_to_send(0.0)
    errors = [wire.decode_json(wire.decode(d)[3]).get("error", "") for d, _ in answers]
    assert sum("too many offers from your address" in e for e in errors) >= 150


@pytest.mark.parametrize("asked, payload, window", [
    (1400, 1400, 8192),            # the window is counted in packets of 1400 bytes
    (1448, 1448, 7920),            # the same memory in packets of another size
    (8948, 8948, 1281),
    (60000, wire.MAX_PAYLOAD, 1281),   # never more than we take by default
])
def test_the_window_holds_the_same_bytes_whatever_the_packet_size(tmp_path, asked, payload,
                                                                    window):
    endpoint = Receiver(Disk(tmp_path), Limits(), token=iter(range(100, 200)).__next__)
    endpoint.receive_datagram(offer(data=b"x" * 100_000, payload=asked), PEER, 0.0)
    kind, _, body = answer(endpoint)
    assert (kind, body["payload"], body["window"]) == (wire.ACCEPT, payload, window)
