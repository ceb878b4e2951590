"""Sender and receiver over a simulated channel that drops, duplicates,
reorders and corrupts datagrams, over many seeded scenarios (hypothesis).

Every byte arrives exactly once and in order (the stored file equals the
source), or the session fails cleanly with an error; nothing is left behind.
"""
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tekcos.push.receiver import Limits, Receiver
from tests.fakes import Disk
from tests.push.simnet import Channel, make_sender, run

scenarios = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "size": st.integers(0, 40_000),
    "payload": st.sampled_from([16, 100, 512, 1400]),
    "window": st.integers(1, 64),
    "loss": st.sampled_from([0.0, 0.01, 0.05, 0.2, 0.4]),
    "dup": st.sampled_from([0.0, 0.05, 0.3]),
    "reorder": st.sampled_from([0.0, 0.1, 0.5]),
    "corrupt": st.sampled_from([0.0, 0.05, 0.2]),
    "background": st.booleans(),
})


def simulate(scenario: dict, directory):
    """Push ``scenario["size"]`` seeded bytes through the channel it describes."""
    rng = random.Random(scenario["seed"])
    data = rng.randbytes(scenario["size"])
    completed = []
    endpoint = Receiver(Disk(str(directory), reserve=0),
                        Limits(window=scenario["window"], payload=1400, idle_timeout=30, linger=5),
                        on_complete=completed.append)
    sender = make_sender(data, window=scenario["window"], payload=scenario["payload"],
                         timeout=30.0, background=scenario.get("background", False))
    channel = Channel(rng, loss=scenario["loss"], dup=scenario["dup"],
                      reorder=scenario["reorder"], corrupt=scenario["corrupt"])
    end = run(sender, endpoint, channel)
    return sender, endpoint, (data, completed, end)


# The number of examples comes from the profile (tests/conftest.py): 150 in
# CI, derandomised; HYPOTHESIS_PROFILE=deep for thousands.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_exactly_once_in_order_or_clean_failure(tmp_path_factory, scenario):
    directory = tmp_path_factory.mktemp("dl")
    sender, endpoint, (data, completed, end) = simulate(scenario, directory)
    assert sender.finished
    assert sender.get_timer() is None
    files = sorted(os.listdir(directory))
    if sender.status == "delivered":
        assert files == ["f.bin"]
        assert (directory / "f.bin").read_bytes() == data
        assert len(completed) == 1
    else:
        # A channel that loses nothing never defeats a 30 s silence timeout.
        assert scenario["loss"] + scenario["corrupt"] > 0, (sender.error, scenario)
        assert sender.status == "failed" and sender.error
        # Nothing under the final name unless the receiver verified it.
        assert files in ([], ["f.bin"]) or all(f.endswith((".part", ".resume")) for f in files)
        if files == ["f.bin"]:
            assert (directory / "f.bin").read_bytes() == data
    # Let the receiver's timers run out: nothing is left behind.
    endpoint.handle_timer(end + 3600)
    assert endpoint.sessions == {} and endpoint.get_timer() is None
    left = sorted(os.listdir(directory))
    kept = [f for f in left if f.startswith(".")]
    if kept:
        # Kept for a resumption: a part file whose checkpointed prefix is
        # exactly the start of the data.
        assert sender.status != "delivered" and len(kept) == 2, left
        checkpoint = endpoint.downloads.checkpoint(kept[0][1:17])
        assert checkpoint is not None and 0 < checkpoint.have < len(data)
        assert (directory / kept[0]).read_bytes()[:checkpoint.have] == data[:checkpoint.have]


def test_most_random_scenarios_deliver(tmp_path):
    # The property above accepts a clean failure; here a fixed sample of the
    # same scenario space must mostly deliver (94 of 100 with this seed).
    rng = random.Random(2026)
    delivered = 0
    for i in range(100):
        scenario = {"seed": rng.getrandbits(32), "size": rng.randint(0, 40_000),
                    "payload": rng.choice([16, 100, 512, 1400]), "window": rng.randint(1, 64),
                    "loss": rng.choice([0.0, 0.01, 0.05, 0.2, 0.4]),
                    "dup": rng.choice([0.0, 0.05, 0.3]), "reorder": rng.choice([0.0, 0.1, 0.5]),
                    "corrupt": rng.choice([0.0, 0.05, 0.2])}
        directory = tmp_path / str(i)
        directory.mkdir()
        sender, _, _ = simulate(scenario, directory)
        delivered += sender.status == "delivered"
    assert delivered >= 90, delivered


def test_heavy_but_finite_trouble_always_delivers(tmp_path):
    # 20% loss with duplicates, reordering and corruption: a 30 s silence
    # timeout is never reached, so every seed must deliver.
    # A background push (which backs off on delay) too.
    for seed, background in [(s, b) for s in range(20) for b in (False, True)]:
        rng = random.Random(seed)
        data = rng.randbytes(20_000)
        directory = tmp_path / f"{seed}-{background}"
        directory.mkdir()
        endpoint = Receiver(Disk(str(directory), reserve=0), Limits(window=32))
        sender = make_sender(data, window=32, payload=500, timeout=30.0, background=background)
        run(sender, endpoint, Channel(rng, loss=0.2, dup=0.1, reorder=0.2, corrupt=0.1))
        assert sender.status == "delivered", sender.error
        assert (directory / "f.bin").read_bytes() == data


def test_a_path_that_drops_jumbo_packets_gets_the_usual_size(tmp_path):
    # The sender's own link says 9000 bytes; somewhere on the way only 1500
    # pass, silently.  It offers again with 1400-byte packets and delivers.
    rng = random.Random(9)
    data = rng.randbytes(300_000)
    endpoint = Receiver(Disk(str(tmp_path), reserve=0), Limits(idle_timeout=30))
    sender = make_sender(data, window=256, payload=8948, timeout=30.0)
    channel = Channel(rng, max_size=1500 - 28)
    end = run(sender, endpoint, channel)
    assert sender.status == "delivered", sender.error
    assert (tmp_path / "f.bin").read_bytes() == data
    assert (sender.shrunk_from, sender.payload_size) == (8948, 1400)
    assert channel.too_large > 0
    assert end < 3.0      # about a second's patience, not the 30 s timeout


def test_jumbo_packets_that_get_through_stay_jumbo(tmp_path):
    rng = random.Random(10)
    data = rng.randbytes(300_000)
    endpoint = Receiver(Disk(str(tmp_path), reserve=0), Limits(idle_timeout=30))
    sender = make_sender(data, window=256, payload=8948, timeout=30.0)
    channel = Channel(rng, loss=0.05, max_size=9000 - 28)
    run(sender, endpoint, channel)
    assert sender.status == "delivered", sender.error
    assert (tmp_path / "f.bin").read_bytes() == data
    assert (sender.shrunk_from, sender.payload_size) == (0, 8948)
    assert channel.too_large == 0
