"""Files sent to people, end to end with real processes: ``twistd tekcos``,
``tekcos push --for``, chat users on sockets, ``tekcos get``."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.twistd import CLEAN_EXIT, REPO, User, wait_until

TEKCOS = [sys.executable, "-m", "tekcos.cli"]
READY = re.compile(rb"tekcos get (\S+) --from (\S+)")


def tekcos(*args, timeout=60):
    return subprocess.run([*TEKCOS, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def push_for(server, path, recipient, *extra):
    return subprocess.Popen([*TEKCOS, "push", str(path), "--to", f"127.0.0.1:{server.port}",
                             "--for", recipient, "--as", "alice", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def kept_for_bob(server, bob, src, data: bytes | None = None):
    """``src`` (written with ``data`` if given) pushed --for bob, who
    accepts; the push is waited for.  Returns the CODE and HOST:PORT bob is
    told."""
    if data is not None:
        src.write_bytes(data)
    push = push_for(server, src, "bob", "-q")
    code, where = accept(bob)
    assert push.wait(timeout=120) == 0, push.stderr.read()
    return code, where


def accept(user) -> tuple[str, str]:
    """Accept the offer shown to ``user``; the CODE and HOST:PORT it is
    then told."""
    offered = user.expect(rb"/accept (\d+) or /decline")
    number = re.search(rb"/accept (\d+) or", offered).group(1)
    user.send(b"/accept " + number + b"\r\n")
    ready = user.expect(READY)
    code, where = READY.search(ready).groups()
    return code.decode(), where.decode()


def test_a_file_sent_to_bob_reaches_bob_and_nobody_else(start, tmp_path):
    server = start()
    bob = User(server.port, "bob")
    alice = User(server.port, "alice")        # the sender, in the chat too
    carol = User(server.port, "carol")
    data = os.urandom(3_000_000)
    src = tmp_path / "report.pdf"
    src.write_bytes(data)
    push = push_for(server, src, "bob", "--json")
    code, where = accept(bob)
    out, err = push.communicate(timeout=60)
    assert push.returncode == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["status"] == "delivered" and record["for"] == "bob"
    # Its rate is the data's: not the wait for bob's answer.
    assert 0 < record["sending_seconds"] < record["seconds"]
    rate = len(data) / record["sending_seconds"] / 1e6
    assert abs(record["mb_per_s"] - rate) < 0.01 * rate
    alice.expect(rb"\*\*\* bob accepted report\.pdf")
    alice.expect(rb"\*\*\* bob can fetch report\.pdf now")
    # Nobody else was told, nor sees it: not in the lobby, not in /files.
    carol.send(b"/files\r\n")
    seen = carol.expect(rb"No files received yet")
    assert code.encode() not in seen and b"report.pdf" not in seen
    # A wrong code: one line, exit 1.
    wrong = tekcos("get", "x" * 22, "--from", where, "-o", str(tmp_path / "carol"))
    assert wrong.returncode == 1 and wrong.stderr == "tekcos get: no such file (wrong or " \
                                                     "expired code)\n"
    got = tekcos("get", code, "--from", where, "-o", str(tmp_path / "bob"), "--json")
    assert got.returncode == 0, got.stderr
    record = json.loads(got.stdout)
    assert record["status"] == "delivered" and record["name"] == "report.pdf"
    assert (tmp_path / "bob" / "report.pdf").read_bytes() == data
    alice.expect(rb"\*\*\* bob has fetched report\.pdf")
    # Fetched again (another device): never overwrites.
    again = tekcos("get", code, "--from", where, "-o", str(tmp_path / "bob"), "-q")
    assert again.returncode == 0
    assert (tmp_path / "bob" / "report-1.pdf").read_bytes() == data
    assert server.stop()[0] in CLEAN_EXIT


def test_declined_unknown_and_messages_are_refused_before_any_data(start, tmp_path):
    server = start()
    bob = User(server.port, "bob")
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(10_000))
    push = push_for(server, src, "bob")
    offered = bob.expect(rb"/accept (\d+) or /decline")
    number = re.search(rb"/accept (\d+) or", offered).group(1)
    bob.send(b"/decline " + number + b"\r\n")
    out, err = push.communicate(timeout=60)
    assert push.returncode == 1 and "rejected: bob declined a.bin" in err
    nobody = tekcos("push", str(src), "--to", f"127.0.0.1:{server.port}", "--for", "nobody")
    assert nobody.returncode == 1 and "no such nick: nobody (not connected)" in nobody.stderr
    message = tekcos("push", "--message", "hi", "--to", f"127.0.0.1:{server.port}",
                     "--for", "bob")
    assert message.returncode == 2 and message.stderr.startswith("tekcos push: --for:")
    assert os.listdir(server.downloads) == []
    assert server.stop()[0] in CLEAN_EXIT


def test_a_file_waits_for_its_recipient_across_a_restart(start, tmp_path):
    state, downloads = str(tmp_path / "state"), str(tmp_path / "dl")
    server = start("--state-dir", state, downloads=downloads)
    bob = User(server.port, "bob")
    data = os.urandom(500_000)
    code, where = kept_for_bob(server, bob, tmp_path / "photo.jpg", data)
    assert server.stop()[0] in CLEAN_EXIT
    again = start("--state-dir", state, downloads=downloads)
    got = tekcos("get", code, "--from", f"127.0.0.1:{again.port}", "-o", str(tmp_path / "got"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "got" / "photo.jpg").read_bytes() == data
    assert again.stop()[0] in CLEAN_EXIT


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_an_interrupted_get_run_again_continues_where_it_stopped(start, tmp_path, how):
    server = start()
    bob = User(server.port, "bob")
    size = 96 << 20
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    code, where = kept_for_bob(server, bob, src)
    out = tmp_path / "out"
    first = subprocess.Popen([*TEKCOS, "get", code, "--from", where, "-o", str(out), "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)

    def kept() -> int:
        """Bytes a checkpoint (or, on Ctrl-C, the part file) says are safe."""
        for path in glob.glob(str(out / ".*.resume")):
            try:
                return json.load(open(path))["have"]
            except (OSError, ValueError):
                pass
        return 0
    if how == signal.SIGKILL:
        wait_until(lambda: kept() >= size // 2 or first.poll() is not None, timeout=60,
                   what="half of the file checkpointed")
    else:
        wait_until(lambda: sum(os.path.getsize(p) for p in glob.glob(str(out / ".*.part")))
                   >= size // 2 or first.poll() is not None, timeout=60, what="half received")
    first.send_signal(how)
    code_first = first.wait(timeout=30)
    assert code_first in ((-signal.SIGKILL,) if how == signal.SIGKILL else (130,))
    assert kept() >= size // 2
    second = tekcos("get", code, "--from", where, "-o", str(out), "--json", timeout=120)
    assert second.returncode == 0, second.stderr
    record = json.loads(second.stdout)
    assert record["resumed_bytes"] >= size // 2          # fetched 50% or less the second time
    with open(out / "big.bin", "rb") as got, open(src, "rb") as want:
        data = want.read()
        assert got.read() == data
    assert record["sha256"] == hashlib.sha256(data).hexdigest()     # of the whole file
    assert sorted(os.listdir(out)) == ["big.bin"]
    assert server.stop()[0] in CLEAN_EXIT


def test_a_full_disk_on_the_fetching_side_is_told_and_exits_one(start, tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail("TEKCOS_REQUIRE_NETNS=1 but not root (a tmpfs in a mount namespace)")
        pytest.skip("needs root for a small tmpfs in a mount namespace")
    server = start()
    bob = User(server.port, "bob")
    code, where = kept_for_bob(server, bob, tmp_path / "big.bin", os.urandom(3_000_000))
    small = tmp_path / "small"
    small.mkdir()
    # A 1 MiB filesystem of the command's own: the 3 MB file cannot fit.
    got = subprocess.run(["unshare", "-m", "sh", "-c",
                          f"mount -t tmpfs -o size=1m tekcos-test {small} && exec \"$@\"", "sh",
                          *TEKCOS, "get", code, "--from", where, "-o", str(small)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert got.returncode == 1, got.stderr
    assert got.stderr.startswith("tekcos get: cannot take the file here: not enough disk "
                                 "space: 3000000 bytes offered")
    assert got.stderr.count("\n") == 1


def test_the_time_of_a_get_ends_with_the_verified_file_not_the_linger(tmp_path):
    # A push's figure ends with its DONE; a get's with the file verified and
    # stored.  The linger after it (for a lost DONE) is not the transfer's.
    from twisted.internet.task import Clock
    from twisted.internet.testing import FakeDatagramTransport

    from tekcos.push.get import LINGER, FetchProtocol
    from tekcos.push.receiver import Limits, Receiver
    from tests.fakes import Disk
    clock = Clock()
    clock.advance(100)
    fetching = FetchProtocol(Receiver(Disk(tmp_path), Limits()), clock, "c" * 22, 30.0)
    fetching.makeConnection(FakeDatagramTransport())
    fetching.begin()
    clock.advance(2.0)
    fetching.completed(object())
    clock.advance(LINGER)
    assert fetching.done.called
    assert fetching.elapsed() == 2.0
    assert not clock.getDelayedCalls()
