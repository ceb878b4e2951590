"""``tekcos push`` through the real ``twistd tekcos`` on loopback."""
from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from tekcos.hello import hello_replies
from tekcos.push import wire
from tests.twistd import CLEAN_EXIT, User, free_port

pytestmark = pytest.mark.slow   # tekcos push processes against a real twistd

TEKCOS = [sys.executable, "-m", "tekcos.cli"]


def push(*args, timeout=120):
    result = subprocess.run(TEKCOS + ["push", *args], capture_output=True, text=True,
                            timeout=timeout)
    return result


def records(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_push_files_and_a_message_announced_in_the_chat(start, tmp_path):
    server = start()
    watcher = User(server.port, "watcher")
    src = tmp_path / "report.pdf"
    data = os.urandom(3_000_000)
    src.write_bytes(data)
    result = push(str(src), str(src), "--to", f"127.0.0.1:{server.port}", "--json",
                  "--as", "bob")
    assert result.returncode == 0, result.stderr
    first, second = records(result)
    assert first["status"] == "delivered" and first["name"] == "report.pdf"
    assert second["name"] == "report-1.pdf"          # never overwritten
    for key in ["file", "name", "bytes", "seconds", "mb_per_s", "sha256", "retransmits",
                "status", "error"]:
        assert key in first
    assert first["bytes"] == len(data) and first["error"] is None
    for name in ["report.pdf", "report-1.pdf"]:
        with open(os.path.join(server.downloads, name), "rb") as f:
            assert f.read() == data
    assert sorted(os.listdir(server.downloads)) == ["report-1.pdf", "report.pdf"]
    watcher.expect(rb"-- bob@127\.0\.0\.1 pushed report\.pdf \(3\.0 MB\)")
    watcher.expect(rb"-- bob@127\.0\.0\.1 pushed report-1\.pdf")
    result = push("--message", "deploy done \x1b[2J", "--to", f"127.0.0.1:{server.port}",
                  "--as", "ci")
    assert result.returncode == 0, result.stderr
    watcher.expect(rb"<ci@127\.0\.0\.1> deploy done \[2J\r\n")
    watcher.send(b"/files\n")
    seen = watcher.expect(rb"report-1\.pdf \(3\.0 MB\) from bob@127\.0\.0\.1")
    assert b"Files received (2)" in seen


def test_refusal_exits_one_with_the_reason(start, tmp_path):
    server = start("--max-file-size", "1000")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2000)
    result = push(str(big), "--to", f"127.0.0.1:{server.port}")
    assert result.returncode == 1
    assert "rejected: file too large: 2000 bytes, the limit is 1000" in result.stderr
    result = push(str(big), "--to", f"127.0.0.1:{server.port}", "--json")
    [record] = records(result)
    assert record["status"] == "rejected" and "too large" in record["error"]
    assert os.listdir(server.downloads) == []


def test_unreachable_and_silent_servers_exit_three(tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("hello")
    result = push(str(src), "--to", f"127.0.0.1:{free_port()}", "--json")
    assert result.returncode == 3
    assert "connection refused" in records(result)[0]["error"]
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        started = time.monotonic()
        result = push(str(src), str(src), "--to", f"127.0.0.1:{silent.getsockname()[1]}",
                      "--timeout", "1.5", "--json")
        assert result.returncode == 3
        first, second = records(result)
        assert "no answer" in first["error"] and first["status"] == "failed"
        assert "skipped" in second["error"]
        assert time.monotonic() - started < 10
    finally:
        silent.close()


def test_usage_errors_exit_two_with_one_line_naming_the_problem(tmp_path):
    existing = tmp_path / "a.txt"
    existing.write_text("x")
    cases = [
        ((str(tmp_path / "missing"), "--to", "127.0.0.1:9"), "missing: no such file"),
        (("--to", "127.0.0.1:9"), "nothing to push"),
        ((str(tmp_path), "--to", "127.0.0.1:9"), "not a regular file"),
        ((str(existing), "--message", "hi", "--to", "127.0.0.1:9"), "not both"),
        ((str(existing), "--to", "127.0.0.1:notaport"), "--to: bad port"),
    ]
    for args, message in cases:
        result = push(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("tekcos push: ") and message in result.stderr, args
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def hostile_datagrams(rng: random.Random, count: int):
    names = ["../../escape.txt", "/etc/passwd", "..", "a\x00b", "CON", "x" * 300,
             "..\\..\\win.ini", "ok/../../up.txt", ".hidden"]
    for i in range(count):
        choice = i % 4
        if choice == 0:
            yield rng.randbytes(rng.randrange(0, 1500))
        elif choice == 1:
            body = {"name": rng.choice(names), "size": rng.randrange(0, 10), "kind": "file",
                    "sha256": "0" * 64, "from": "mallory"}
            yield wire.encode_json(wire.OFFER, rng.getrandbits(64), body, pad_to=200)
        elif choice == 2:
            yield wire.encode(rng.randrange(0, 256) % 12, rng.getrandbits(64),
                              rng.getrandbits(64), rng.randbytes(rng.randrange(0, 100)))
        else:
            good = bytearray(wire.encode(wire.DATA, rng.getrandbits(64), i, b"z" * 1400))
            good[rng.randrange(len(good))] ^= 0xFF
            yield bytes(good)


def test_hostile_datagrams_never_crash_or_disturb_a_transfer(start, tmp_path):
    # The downloads directory sits alone in a folder of this test's own, so
    # anything written next to it shows, whatever else runs on the machine.
    (tmp_path / "srv").mkdir()
    server = start(downloads=str(tmp_path / "srv" / "downloads"))
    src = tmp_path / "payload.bin"
    data = os.urandom(20_000_000)
    src.write_bytes(data)
    stop = threading.Event()
    sent = [0]

    def attack():
        rng = random.Random(1234)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for datagram in hostile_datagrams(rng, 20_000):   # bounded
            if stop.is_set():
                break
            try:
                sock.sendto(datagram, ("127.0.0.1", server.port))
                sent[0] += 1
            except OSError:
                pass
            if sent[0] % 50 == 0:
                time.sleep(0.001)
        sock.close()

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        result = push(str(src), "--to", f"127.0.0.1:{server.port}", "--json")
    finally:
        stop.set()
        attacker.join()
    assert sent[0] > 1000
    assert result.returncode == 0, result.stderr
    with open(os.path.join(server.downloads, "payload.bin"), "rb") as f:
        assert f.read() == data
    # Hostile OFFERs had wrong checksums and no data: nothing else was stored,
    # and nothing appeared outside the downloads directory.  A HELLO answered
    # after the attack ended means every attack datagram queued before it
    # has been handled.
    assert hello_replies(["127.0.0.1"], server.port, timeout=30)
    stored = [n for n in os.listdir(server.downloads) if not n.endswith(".part")]
    assert all(not re.search(r"[/\\\x00]", n) for n in os.listdir(server.downloads))
    assert stored == ["payload.bin"]
    assert os.listdir(tmp_path / "srv") == ["downloads"]
    # Still serving chat, and no traceback.
    User(server.port, "after")
    code, log = server.stop()
    assert code in CLEAN_EXIT
    assert "Traceback" not in log and "Unhandled" not in log


def test_many_pushes_at_once_from_several_senders(start, tmp_path):
    server = start()
    sources = []
    for i in range(4):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(os.urandom(2_000_000 + i))
        sources.append(path)
    procs = [subprocess.Popen(TEKCOS + ["push", str(p), "--to", f"127.0.0.1:{server.port}",
                                        "--json", "--as", f"s{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, p in enumerate(sources)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out)["status"] == "delivered"
    for path in sources:
        with open(os.path.join(server.downloads, path.name), "rb") as f:
            assert f.read() == path.read_bytes()



def test_a_background_push_delivers_like_any_other(start, tmp_path):
    # How much it yields is measured in bench/bottleneck.py; here: it works.
    server = start()
    src = tmp_path / "backup.tar"
    data = os.urandom(2_000_000)
    src.write_bytes(data)
    result = push(str(src), "--to", f"127.0.0.1:{server.port}", "--json", "--background")
    assert result.returncode == 0, result.stderr
    [record] = records(result)
    assert record["status"] == "delivered" and record["name"] == "backup.tar"
    with open(os.path.join(server.downloads, "backup.tar"), "rb") as f:
        assert f.read() == data


def need_ipv6() -> None:
    from tekcos.address import dual_stack
    if not dual_stack():
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail("IPv6 (::1, bindv6only=0) is needed for the dual-stack tests")
        pytest.skip("no dual-stack IPv6 here")


def test_one_default_server_takes_ipv4_and_ipv6_for_chat_and_pushes(start, tmp_path):
    need_ipv6()
    server = start()
    v4, v6 = User(server.port, "four"), User(server.port, "six", host="::1")
    v4.expect(rb"-- six joined lobby")
    v6.send(b"hello over IPv6\n")
    v4.expect(rb"<six> hello over IPv6")
    src = tmp_path / "both.bin"
    src.write_bytes(os.urandom(2_000_000))
    for to, sender in [(f"[::1]:{server.port}", "v6"), (f"127.0.0.1:{server.port}", "v4")]:
        result = push(str(src), "--to", to, "--as", sender, "--json")
        assert result.returncode == 0, result.stderr
    # An IPv4 client of the IPv6 socket is shown as plain IPv4, never ::ffff:.
    seen = v6.expect(rb"-- v4@127\.0\.0\.1 pushed both-1\.bin")
    assert b"-- v6@::1 pushed both.bin" in seen and b"::ffff:" not in seen
    code, log = server.stop()
    assert f"chat listening on TCP port {server.port} (IPv4 and IPv6)" in log
    assert f"pushes and HELLO listening on UDP port {server.port} (IPv4 and IPv6); files go " \
           f"to {server.downloads}" in log
    assert re.search(r"received file 'both-1\.bin' \(2000000 bytes\) from v4@127\.0\.0\.1 in "
                     r"[\d.]+ s, [\d.]+ MB/s", log)
    assert "::ffff:" not in log          # the log shows IPv4 clients as IPv4 too
