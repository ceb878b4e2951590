"""The receiver on an in-memory storage (tests/push/memstore.py): it needs
nothing from the file system beyond the interface its docstring names, and
its decisions (accept, refuse for space, verify, resume) hold there too."""
import hashlib
import os

from tekcos.push import wire
from tekcos.push.receiver import Limits, Receiver
from tests.push.memstore import MemoryStorage

PEER = ("10.0.0.9", 5555)


def offer(data: bytes, offer_id=1, name="a.bin", payload=100, **extra):
    body = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "file", "from": "alice", "payload": payload, **extra}
    return wire.encode_json(wire.OFFER, offer_id, body, pad_to=200)


def answers(ep, now=0.0):
    return [wire.decode(d) for d, _ in ep.datagrams_to_send(now)]


def push(ep, data, seqs, token, now=0.0, payload=100):
    for seq in seqs:
        ep.receive_datagram(wire.encode(wire.DATA, token, seq,
                                        data[seq * payload:(seq + 1) * payload]), PEER, now)


def test_a_file_arrives_verified_in_memory():
    store = MemoryStorage()
    done = []
    ep = Receiver(store, Limits(window=16, payload=100), on_complete=done.append)
    data = os.urandom(950)
    ep.receive_datagram(offer(data), PEER, 0.0)
    [(kind, _, _, body)] = answers(ep)
    token = wire.decode_json(body)["token"]
    push(ep, data, [3, 1, 0, 2, 9, 4, 5, 6, 7, 8], token)
    kinds = [a[0] for a in answers(ep)]
    assert wire.DONE in kinds
    assert store.files == {"a.bin": data}
    assert [r.name for r in done] == ["a.bin"]


def test_no_room_and_a_wrong_hash_in_memory():
    store = MemoryStorage(free=500)
    ep = Receiver(store, Limits(window=16, payload=100))
    ep.receive_datagram(offer(os.urandom(950)), PEER, 0.0)
    [(kind, _, _, body)] = answers(ep)
    assert kind == wire.REJECT and "not enough disk space" in wire.decode_json(body)["error"]
    store.free = 1 << 30
    data = os.urandom(300)
    lying = hashlib.sha256(b"else").hexdigest()
    ep.receive_datagram(wire.encode_json(wire.OFFER, 2, {
        "name": "b.bin", "size": 300, "sha256": lying, "kind": "file", "from": "x",
        "payload": 100}, pad_to=200), PEER, 0.0)
    [(kind, _, _, body)] = answers(ep)
    token = wire.decode_json(body)["token"]
    push(ep, data, [0, 1, 2], token)
    assert [a[0] for a in answers(ep)][-1] == wire.FAIL and store.files == {}


def test_an_interrupted_push_resumes_from_what_memory_kept():
    store = MemoryStorage()
    limits = Limits(window=16, payload=100, idle_timeout=5)
    ep = Receiver(store, limits)
    data = os.urandom(1000)
    ep.receive_datagram(offer(data, client="0" * 32), PEER, 0.0)
    token = wire.decode_json(answers(ep)[0][3])["token"]
    push(ep, data, range(6), token)
    answers(ep)
    ep.handle_timer(10.0)                      # the sender went silent: put away
    assert store.kept and not store.files
    again = Receiver(store, limits)            # a restart: only the storage remains
    again.receive_datagram(offer(data, offer_id=2, client="0" * 32), PEER, 20.0)
    accept = wire.decode_json(answers(again, 20.0)[0][3])
    assert accept["have"] == 600
    push(again, data, range(6, 10), accept["token"], now=20.0)
    answers(again, 20.0)
    assert store.files == {"a.bin": data}
