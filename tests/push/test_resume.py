"""Resumption: a push run again continues from what the server kept.

Sender and receiver run over the simulated channel (tests/push/simnet.py);
the sender is "killed" by stopping the simulation half-way.
"""
import hashlib
import json
import os
import random

from tekcos.push import resume, storage, wire
from tekcos.push.receiver import Limits, Receiver
from tests.fakes import Disk
from tests.push.simnet import CLIENT, Channel, make_sender, run

SIZE = 60_000
PAYLOAD = 100


def endpoint_in(directory, **limits):
    completed, logged = [], []
    limits = {"window": 16, "payload": PAYLOAD, "idle_timeout": 30, "linger": 5, **limits}
    endpoint = Receiver(Disk(directory), Limits(**limits),
                        on_complete=completed.append, log=lambda text: logged.append(text))
    endpoint.completed = completed
    endpoint.logged = logged
    return endpoint


def channel(seed=1, loss=0.0):
    return Channel(random.Random(seed), loss=loss)


def kill_half_way(endpoint, data, offer_id=7):
    """A push of ``data`` stopped once half of it is acknowledged; returns
    the simulated time then."""
    sender = make_sender(data, window=16, payload=PAYLOAD, timeout=30.0, offer_id=offer_id)
    now = run(sender, endpoint, channel(loss=0.02), until=lambda: sender.bytes_acked >= len(data) // 2)
    assert not sender.finished and sender.bytes_acked >= len(data) // 2
    return now


def push_again(endpoint, data, now, offer_id=8, resume=True, loss=0.02):
    sender = make_sender(data, window=16, payload=PAYLOAD, timeout=30.0, offer_id=offer_id,
                         resume=resume)
    run(sender, endpoint, channel(seed=2, loss=loss), now=now)
    return sender


def files(directory):
    return sorted(os.listdir(directory))


def test_a_push_run_again_after_a_timeout_sends_only_the_rest(tmp_path):
    data = random.Random(5).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)             # the server gives up on the silent push
    assert endpoint.sessions == {}
    part, state = files(tmp_path)                 # kept, hidden, for a later run
    assert part.endswith(".part") and state == part[:-len("part")] + "resume"
    sender = push_again(endpoint, data, now + 40)
    assert sender.status == "delivered", sender.error
    assert SIZE // 2 <= sender.resumed_bytes < SIZE and sender.resumed_bytes % PAYLOAD == 0
    assert sender.sent_bytes <= 0.55 * SIZE
    assert (tmp_path / "f.bin").read_bytes() == data
    assert files(tmp_path) == ["f.bin"]          # part and checkpoint gone
    [received] = endpoint.completed
    assert received.size == SIZE


def test_run_again_at_once_takes_over_the_killed_transfer(tmp_path):
    data = random.Random(6).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    [old] = endpoint.sessions.values()
    # Right away, long before the server's own timeout: told to wait a
    # second, then the silent transfer is continued.
    sender = push_again(endpoint, data, now + 0.01)
    assert sender.status == "delivered", sender.error
    assert sender.resumed_bytes >= SIZE // 2
    assert old.token not in endpoint.sessions or endpoint.sessions[old.token] is not old
    assert (tmp_path / "f.bin").read_bytes() == data and files(tmp_path) == ["f.bin"]


def test_the_same_file_pushed_twice_at_once_is_not_taken_over(tmp_path):
    data = random.Random(4).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    sha = hashlib.sha256(data).hexdigest()
    body = {"name": "f.bin", "size": SIZE, "sha256": sha, "kind": "file", "payload": 100}
    second = ("127.0.0.2", 40001)

    def offer(offer_id, addr, now):
        endpoint.receive_datagram(wire.encode_json(wire.OFFER, offer_id, body, pad_to=200),
                                  addr, now)
        [(d, to)] = endpoint.datagrams_to_send(now)
        kind, _, _, payload = wire.decode(d)
        return kind, wire.decode_json(payload)

    kind, accept = offer(1, CLIENT, 0.0)
    token = accept["token"]
    endpoint.receive_datagram(wire.encode(wire.DATA, token, 0, data[:100]), CLIENT, 0.1)
    endpoint.datagrams_to_send(0.1)
    # A second run from the same host: perhaps the first was killed just now.
    kind, busy = offer(2, second, 0.2)
    assert kind == wire.REJECT and busy["retry_after"] == 1.0
    # The first one is still sending when the second asks again: both go on.
    endpoint.receive_datagram(wire.encode(wire.DATA, token, 1, data[100:200]), CLIENT, 0.9)
    endpoint.datagrams_to_send(0.9)
    kind, accept2 = offer(3, second, 1.2)
    assert kind == wire.ACCEPT and "have" not in accept2
    assert {s.addr for s in endpoint.sessions.values()} == {CLIENT, second}


def test_the_server_restarted_in_between(tmp_path):
    data = random.Random(7).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    kill_half_way(endpoint, data)
    endpoint.close()                                # server stopped
    endpoint.downloads.worker.close()
    restarted = endpoint_in(tmp_path)
    assert restarted.downloads.sweep(3600, at_start=True) == 0   # kept: it can be resumed
    sender = push_again(restarted, data, 0.0)
    assert sender.status == "delivered" and sender.resumed_bytes >= SIZE // 2
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_killed_server_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(resume, "CHECKPOINT_EVERY", 10_000)
    monkeypatch.setattr(storage, "FLUSH_AT", 2_000)
    data = random.Random(8).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    kill_half_way(endpoint, data)
    # No close(): the process died.  What was written after the last
    # checkpoint is cut away, the rest is continued.
    [checkpoint] = [f for f in files(tmp_path) if f.endswith(".resume")]
    kept = json.loads((tmp_path / checkpoint).read_text())["have"]
    assert 20_000 <= kept <= SIZE // 2 + 16 * PAYLOAD
    sender = push_again(endpoint_in(tmp_path), data, 0.0)
    assert sender.status == "delivered" and sender.resumed_bytes == kept
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_damaged_partial_file_is_detected_and_the_push_starts_over(tmp_path):
    data = random.Random(9).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    [part] = [tmp_path / f for f in files(tmp_path) if f.endswith(".part")]
    raw = bytearray(part.read_bytes())
    raw[123] ^= 0xFF                                 # one flipped byte on the server's disk
    part.write_bytes(bytes(raw))
    sender = push_again(endpoint, data, now + 40)
    # The receiver re-hashed what it kept, refused it, and the sender sent it all.
    assert sender.status == "delivered", sender.error
    assert sender.resumed_bytes == 0 and sender.sent_bytes >= SIZE
    assert (tmp_path / "f.bin").read_bytes() == data and files(tmp_path) == ["f.bin"]
    assert any("cannot resume: the partial file on the server is damaged" in line
               for line in endpoint.logged), endpoint.logged


def test_no_resume_sends_everything_and_drops_what_was_kept(tmp_path):
    data = random.Random(10).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    sender = push_again(endpoint, data, now + 40, resume=False, loss=0.0)
    assert sender.status == "delivered" and sender.resumed_bytes == 0
    assert sender.sent_bytes == SIZE
    assert files(tmp_path) == ["f.bin"]


def test_another_host_or_another_file_does_not_continue_it(tmp_path):
    data = random.Random(11).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    sha = hashlib.sha256(data).hexdigest()
    base = {"name": "f.bin", "size": SIZE, "sha256": sha, "kind": "file", "payload": PAYLOAD}
    other_host = ("127.0.0.3", 40000)
    endpoint.receive_datagram(wire.encode_json(wire.OFFER, 1, base, pad_to=200), other_host,
                              now + 40)
    changed = dict(base, sha256=hashlib.sha256(data[:-1] + b"!").hexdigest())
    endpoint.receive_datagram(wire.encode_json(wire.OFFER, 2, changed, pad_to=200), CLIENT,
                              now + 40)
    accepts = [wire.decode_json(wire.decode(d)[3]) for d, _ in endpoint.datagrams_to_send(now + 40)]
    assert [("have" in a) for a in accepts] == [False, False]
    assert resume.key_for(sha, SIZE, "127.0.0.2") != resume.key_for(sha, SIZE, "127.0.0.3")


def test_space_is_checked_for_what_is_missing_only(tmp_path):
    data = random.Random(12).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    endpoint.downloads.free = SIZE // 2 + 100        # room for the rest, not for all of it
    sender = push_again(endpoint, data, now + 40)
    assert sender.status == "delivered", sender.error


def test_sweep_expires_old_checkpoints_and_keeps_fresh_ones(tmp_path):
    data = random.Random(13).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    downloads = endpoint.downloads
    assert downloads.sweep(3600) == 0 and len(files(tmp_path)) == 2
    [state] = [tmp_path / f for f in files(tmp_path) if f.endswith(".resume")]
    os.utime(state, (state.stat().st_atime, state.stat().st_mtime - 7200))
    key = state.name[1:17]
    assert downloads.sweep(3600, in_use=frozenset({key})) == 0   # a live transfer's
    assert downloads.sweep(3600) == 1 and files(tmp_path) == []


def test_a_checkpoint_that_is_not_ours_is_ignored(tmp_path):
    key = "0123456789abcdef"
    (tmp_path / f".{key}.part").write_bytes(b"x" * 300)
    for text in ("[" * 3000, "{}", '{"sha256": 1}', json.dumps({
            "sha256": "a" * 64, "size": 1000, "name": "f", "payload": 100, "have": 400,
            "prefix_sha256": "b" * 64})):     # the last one claims more than the part holds
        (tmp_path / f".{key}.resume").write_text(text)
        assert resume.read(str(tmp_path), key) is None


def resumed_offer(endpoint, data, offer_id, addr, now, **extra):
    """Offer ``data`` again from ``addr``; returns (kind, answer body)."""
    body = {"name": "f.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "file", "payload": PAYLOAD, **extra}
    endpoint.receive_datagram(wire.encode_json(wire.OFFER, offer_id, body, pad_to=200), addr, now)
    [(d, _)] = endpoint.datagrams_to_send(now)
    kind, _, _, payload = wire.decode(d)
    return kind, wire.decode_json(payload)


def counting_reads(monkeypatch):
    """Bytes the storage module reads back from part files."""
    read = {"bytes": 0}
    real_open = open

    def counting_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if "b" in mode and "r" in mode and str(path).endswith(".part"):
            real_read = f.read

            def reading(n=-1):
                chunk = real_read(n)
                read["bytes"] += len(chunk)
                return chunk
            f.read = reading
        return f
    monkeypatch.setattr(storage, "open", counting_open, raising=False)
    return read


def test_a_sender_that_resumes_and_aborts_in_a_loop_is_backed_off_and_costs_no_rereads(
        tmp_path, monkeypatch):
    data = random.Random(9).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    reads = counting_reads(monkeypatch)
    now += 40
    answers = []
    for i in range(12):   # offer, accepted with the kept prefix, one packet, abort
        kind, body = resumed_offer(endpoint, data, 100 + i, CLIENT, now)
        answers.append((kind, body))
        if kind == wire.ACCEPT:
            assert body["have"] >= SIZE // 2
            seq = body["have"] // PAYLOAD + 3          # out of order: nothing to write
            endpoint.receive_datagram(wire.encode(wire.DATA, body["token"], seq,
                                                  data[seq * PAYLOAD:(seq + 1) * PAYLOAD]),
                                      CLIENT, now)
            endpoint.receive_datagram(wire.encode_json(wire.ABORT, body["token"], {}), CLIENT, now)
            endpoint.datagrams_to_send(now)
        now += 0.05
    kinds = [k for k, _ in answers]
    assert kinds[:4] == [wire.ACCEPT] * 4
    busy = [b for k, b in answers if k == wire.REJECT]
    assert busy and all("keep being cut off" in b["error"] and b["retry_after"] >= 1 for b in busy)
    # The kept prefix was put away by this process and not touched since:
    # it is never read back, however often the loop comes round.
    assert reads["bytes"] == 0
    # Once the backoff is over, the real push continues from the kept bytes.
    sender = push_again(endpoint, data, now + 120, offer_id=500)
    assert sender.status == "delivered", sender.error
    assert sender.resumed_bytes >= SIZE // 2
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_part_file_changed_behind_the_servers_back_is_read_again(tmp_path, monkeypatch):
    data = random.Random(10).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    now = kill_half_way(endpoint, data)
    endpoint.handle_timer(now + 31)
    [part] = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    os.utime(part, ns=(0, 0))                     # touched: no longer known to be as left
    reads = counting_reads(monkeypatch)
    sender = push_again(endpoint, data, now + 40)
    assert sender.status == "delivered" and sender.resumed_bytes >= SIZE // 2
    assert reads["bytes"] == sender.resumed_bytes


def test_a_client_id_keeps_the_partial_across_addresses_and_from_other_clients(tmp_path):
    data = random.Random(11).randbytes(SIZE)
    endpoint = endpoint_in(tmp_path)
    owner = "a" * 32
    sender = make_sender(data, window=16, payload=PAYLOAD, timeout=30.0, client=owner)
    now = run(sender, endpoint, channel(), until=lambda: sender.bytes_acked >= SIZE // 2)
    endpoint.handle_timer(now + 31)
    # Someone else at the same address who knows the file: a fresh start,
    # and the owner's partial is untouched.
    kind, body = resumed_offer(endpoint, data, 50, CLIENT, now + 40, client="b" * 32)
    assert kind == wire.ACCEPT and "have" not in body
    kind, body = resumed_offer(endpoint, data, 51, CLIENT, now + 40)
    assert kind == wire.ACCEPT and "have" not in body
    endpoint.close()
    # The owner, from another address (a laptop moved to cable), continues.
    moved = ("127.0.0.77", 40000)
    kind, body = resumed_offer(endpoint, data, 52, moved, now + 41, client=owner)
    assert kind == wire.ACCEPT and body["have"] >= SIZE // 2


def test_what_was_kept_goes_on_in_the_packet_size_it_came_in(tmp_path):
    # The first run used small packets (a path that dropped larger ones);
    # the next offers larger ones: the rest comes in the first run's size,
    # from where it stopped, whether this process or a restarted one has it.
    for restart in (False, True):
        directory = tmp_path / str(restart)
        directory.mkdir()
        data = random.Random(8).randbytes(SIZE)
        endpoint = endpoint_in(directory, payload=400)
        now = kill_half_way(endpoint, data)
        endpoint.handle_timer(now + 31)             # the server gives up on the silent push
        if restart:
            endpoint.close()
            endpoint.downloads.worker.close()
            endpoint = endpoint_in(directory, payload=400)
        sender = make_sender(data, window=16, payload=400, timeout=30.0, offer_id=9)
        run(sender, endpoint, channel(seed=3), now=now + 40)
        assert sender.status == "delivered", sender.error
        assert sender.payload_size == PAYLOAD
        assert sender.resumed_bytes >= SIZE // 2
        assert (directory / "f.bin").read_bytes() == data
