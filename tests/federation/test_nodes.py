"""Real nodes through a real Redis: ``redis-server`` on a loopback port of
its own, ``twistd tekcos`` nodes, telnet-like users on each.

Needs /usr/bin/redis-server (apt's redis-server).  Skipped where it is
missing, except under TEKCOS_REQUIRE_REDIS=1 (CI), where that is a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.twistd import User, free_port, wait_until


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tekcos-redis-")
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10, what="redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: bytes) -> bytes:
        """One command in RESP, its raw answer."""
        data = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(data)
            return s.recv(4096)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis():
    if shutil.which("redis-server") is None:
        if os.environ.get("TEKCOS_REQUIRE_REDIS") == "1":
            pytest.fail("TEKCOS_REQUIRE_REDIS=1 but redis-server is missing")
        pytest.skip("redis-server is missing")
    server = RedisServer()
    yield server
    server.remove()


def node(start, redis, name, *more):
    return start("--redis", redis.url, "--node-name", name, "--udp-port", "0", *more)


def metrics(web: int) -> dict:
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families
    body = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_three_nodes_are_one_hub(start, redis):
    a, b, c = (node(start, redis, n) for n in ("lab-a", "lab-b", "lab-c"))
    alice, bob, carol = User(a.port, "alice"), User(b.port, "bob"), User(c.port, "carol")
    time.sleep(0.3)                        # the subscriptions are up
    for user in (alice, bob, carol):
        user.send(b"/join dev\r\n")
        user.expect(rb"You are in dev")
    alice.send(b"hello from a\r\n")
    bob.expect(rb"\[\d\d:\d\d\] <alice> hello from a\r\n")
    carol.expect(rb"<alice> hello from a\r\n")
    carol.send(b"/msg bob only for you\r\n")
    bob.expect(rb"\*carol@lab-c\* only for you\r\n")
    # The nick, and a look-alike of it, are taken on every node.
    late = User(b.port)
    late.send("ALICE\n".encode())
    late.expect(rb"taken by alice on node lab-a; choose another")
    late.send("\u0430lice\n".encode())
    late.expect(rb"taken by alice on node lab-a; choose another")
    # /who shows who is where (once the presence has come round).
    wait_until(lambda: b"carol@lab-c" in (bob.send(b"/who\r\n") or bob.expect(
        rb"\*\*\* dev \(\d+\)[^\r]*\r\n", timeout=5)), timeout=15, what="carol in bob's /who")


def test_a_killed_node_s_users_leave_the_others_within_15_s(start, redis):
    a, b = node(start, redis, "lab-a"), node(start, redis, "lab-b")
    alice, bob = User(a.port, "alice"), User(b.port, "bob")
    wait_until(lambda: b"alice@lab-a" in (bob.send(b"/who\r\n") or bob.expect(
        rb"\*\*\* lobby[^\r]*\r\n", timeout=5)), timeout=15, what="alice in bob's /who")
    a.proc.send_signal(signal.SIGKILL)
    started = time.monotonic()
    bob.expect(rb"-- alice left \(node lab-a lost\)\r\n", timeout=25)
    assert time.monotonic() - started <= 15 + 5      # a heartbeat's slack
    User(b.port, "alice")                            # the nick is free again


def test_redis_down_local_chat_goes_on_and_cross_node_chat_comes_back(start, redis):
    from tests.twistd import free_port
    web = free_port()
    a = node(start, redis, "lab-a", "--web", f"tcp:{web}:interface=127.0.0.1")
    b = node(start, redis, "lab-b")
    alice, ann, bob = User(a.port, "alice"), User(a.port, "ann"), User(b.port, "bob")
    time.sleep(0.3)
    alice.send(b"before\r\n")
    bob.expect(rb"<alice> before\r\n")
    redis.stop()
    ann.expect(rb"-- the other nodes are unreachable", timeout=10)
    alice.send(b"during\r\n")
    ann.expect(rb"<alice> during\r\n")                # the node's own users still chat
    redis.start()
    ann.expect(rb"-- the other nodes are reachable again", timeout=20)
    started = time.monotonic()
    wait_until(lambda: alice.send(b"after\r\n") or b"<alice> after" in bob.expect(
        rb"\r\n", timeout=1), timeout=15, what="cross-node chat back")
    assert time.monotonic() - started <= 10
    # The node's metrics tell the story: a reconnect, Redis up, traffic both
    # ways, and the round trip of a heartbeat once one has gone out.
    seen = wait_until(lambda: (lambda m: m if ("tekcos_federation_redis_round_trip_seconds", ())
                                in m else None)(metrics(web)), timeout=15,
                      what="a heartbeat's round trip in /metrics")
    assert seen[("tekcos_federation_reconnects_total", ())] >= 1
    assert seen[("tekcos_federation_redis_up", ())] == 1
    assert seen[("tekcos_federation_relayed_total", (("direction", "out"),))] >= 3
    assert seen[("tekcos_federation_relayed_total", (("direction", "in"),))] >= 1
    assert 0 < seen[("tekcos_federation_redis_round_trip_seconds", ())] < 2
    assert seen[("tekcos_federation_nodes", ())] == 1


def test_a_hostile_publisher_cannot_crash_a_node(start, redis):
    a = node(start, redis, "lab-a")
    alice = User(a.port, "alice")
    time.sleep(0.3)
    for junk in (b"not json", b'{"v":1,"node":"evil","t":"line","room":"lobby","text":7}',
                 b'{"v":1,"node":"evil","t":"line","room":"lobby","rec":false,'
                 b'"text":"\\u001b[2J\\u00ff hi"}'):
        redis.command(b"PUBLISH", b"tekcos:hub", junk)
    got = alice.expect(rb"hi\r\n")
    assert b"\x1b" not in got
    alice.send(b"still here\r\n")
    alice.expect(rb"<alice> still here\r\n")
    code, log = a.stop()
    assert "ignored a malformed message" in log


def test_a_nick_claimed_in_redis_by_another_node_is_chosen_again(start, redis):
    """The race the presence messages cannot settle: another node's claim
    of the nick (here made by hand, as lab-z would) is in Redis first."""
    from tekcos.chat.names import look_keys
    for key in set(look_keys("zed")):
        redis.command(b"SET", b"tekcos:nick:" + key.encode(), b"lab-z", b"EX", b"60")
    a = node(start, redis, "lab-a")
    time.sleep(0.3)
    user = User(a.port)
    user.send(b"zed\n")
    user.expect(rb"The nick zed was taken on node lab-z at the same moment\.\r\n")
    user.expect(rb"\*\*\* Choose a nick:\r\n")
    user.send(b"zed2\n")
    user.expect(rb"You are in lobby")
    key = b"tekcos:nick:" + sorted(set(look_keys("zed2")))[0].encode()
    wait_until(lambda: b"lab-a" in redis.command(b"GET", key), timeout=5,
               what="lab-a's claim of zed2")
    user.send(b"/quit\n")
    wait_until(lambda: redis.command(b"GET", key).startswith(b"$-1"), timeout=5,
               what="the claim released")


def test_workers_share_the_chat_port_and_are_one_hub(start, redis):
    import psutil
    server = start("--redis", redis.url, "--node-name", "lab", "--workers", "3",
                   "--udp-port", "0")
    parent = psutil.Process(server.proc.pid)
    wait_until(lambda: len([p for p in parent.children(recursive=True)
                            if "--worker" in p.cmdline()]) == 2,
               timeout=20, what="two more workers")
    children = [p for p in parent.children(recursive=True) if "--worker" in p.cmdline()]
    # Every worker listens on the chat port (the kernel spreads connections).
    wait_until(lambda: all(any(c.laddr.port == server.port and c.status == "LISTEN"
                               for c in p.net_connections("tcp")) for p in children),
               timeout=20, what="every worker listening")
    users = [User(server.port, f"u{i}") for i in range(24)]
    time.sleep(0.5)                     # subscriptions up on every worker
    first = users[0]
    wait_until(lambda: (first.send(b"/who\r\n") or first.expect(
        rb"\*\*\* lobby[^\r]*\r\n", timeout=5)).count(b"@lab-w") >= 2, timeout=20,
        what="users on other workers in u0's /who")
    first.send(b"hello from the first worker\r\n")
    for user in users[1:]:
        user.expect(rb"<u0> hello from the first worker\r\n")
    # A nick is one across the workers.
    again = User(server.port)
    again.send(b"u7\n")
    again.expect(rb"taken")
    server.stop()
    wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                               for p in children), timeout=15, what="the workers to stop")


def offer_across(start, redis, tmp_path, *b_options):
    """alice on lab-a pushes report.pdf for bob on lab-b, who accepts:
    (a, b, alice, bob, the push, the data)."""
    import sys

    from tests.twistd import REPO
    a = start("--redis", redis.url, "--node-name", "lab-a", "--node-address", "127.0.0.1")
    b = start("--redis", redis.url, "--node-name", "lab-b", "--node-address", "127.0.0.1",
              *b_options)
    bob = User(b.port, "bob")
    time.sleep(0.3)                        # the subscriptions are up
    alice = User(a.port, "alice")
    bob.expect(rb"-- alice joined lobby")      # alice is known on node b
    bob.send(b"/msg alice hi\r\n")         # and bob on node a, once this arrives
    alice.expect(rb"\*bob@lab-b\* hi")
    data = os.urandom(1_000_000)
    src = tmp_path / "report.pdf"
    src.write_bytes(data)
    push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", str(src), "--to",
                             f"127.0.0.1:{a.port}", "--for", "bob", "--as", "alice", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    offered = bob.expect(rb"/accept (\d+) or /decline")
    assert b"kept on node lab-a" in offered
    bob.send(b"/accept " + re.search(rb"/accept (\d+) or", offered).group(1) + b"\r\n")
    alice.expect(rb"\*\*\* bob accepted report\.pdf")
    return a, b, alice, bob, push, data


def test_a_file_pushed_to_one_node_for_a_user_of_another_is_brought_to_his_node(
        start, redis, tmp_path):
    import sys

    from tests.twistd import REPO
    a, b, alice, bob, push, data = offer_across(start, redis, tmp_path)
    assert push.wait(timeout=60) == 0, push.stderr.read()
    # lab-b fetches it from lab-a, then bob is told to fetch it from lab-b.
    bob.expect(rb"report\.pdf from alice is kept on node lab-a; bringing it to this server")
    ready = bob.expect(rb"tekcos get (\S+) --from (\S+)\r\n")
    code, where = re.search(rb"tekcos get (\S+) --from (\S+)\r\n", ready).groups()
    assert where.decode() == f"127.0.0.1:{b.port}"
    kept = os.listdir(os.path.join(b.downloads, ".for"))
    assert kept == ["report.pdf"]
    assert not os.listdir(os.path.join(b.downloads, ".relay"))     # nothing left half-way
    alice.expect(rb"\*\*\* report\.pdf is on the node of bob now; you will be told when it is "
                 rb"fetched there")
    got = subprocess.run([sys.executable, "-m", "tekcos.cli", "get", code.decode(), "--from",
                          where.decode(), "-o", str(tmp_path / "bob"), "-q"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "bob" / "report.pdf").read_bytes() == data
    alice.expect(rb"\*\*\* bob has fetched report\.pdf")     # told by lab-b, through Redis


def test_a_node_that_does_not_relay_sends_its_user_to_the_node_that_keeps_the_file(
        start, redis, tmp_path):
    import sys

    from tests.twistd import REPO
    a, b, alice, bob, push, data = offer_across(start, redis, tmp_path, "--no-relay")
    ready = bob.expect(rb"tekcos get (\S+) --from (\S+)\r\n")
    code, where = re.search(rb"tekcos get (\S+) --from (\S+)\r\n", ready).groups()
    assert push.wait(timeout=60) == 0, push.stderr.read()
    assert where.decode() == f"127.0.0.1:{a.port}"         # node a keeps it
    # Asked of bob's own node, the fetch is sent on to lab-a.
    got = subprocess.run([sys.executable, "-m", "tekcos.cli", "get", code.decode(), "--from",
                          f"127.0.0.1:{b.port}", "-o", str(tmp_path / "bob"), "-q"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "bob" / "report.pdf").read_bytes() == data
    # Another CODE that lab-b never told anyone of: no such file there.
    wrong = subprocess.run([sys.executable, "-m", "tekcos.cli", "get", "x" * 22, "--from",
                            f"127.0.0.1:{b.port}", "-o", str(tmp_path / "bob"), "-q"],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert wrong.returncode == 1 and "no such file" in wrong.stderr
    alice.expect(rb"\*\*\* bob has fetched report\.pdf")


def test_a_node_that_starts_later_is_replayed_what_the_rooms_said_before(start, redis):
    a = node(start, redis, "lab-a")
    alice = User(a.port, "alice")
    alice.send(b"/join dev\r\nthe plan is on the wiki\r\n")
    alice.expect(rb"<alice> the plan is on the wiki\r\n")
    alice.send(b"/join lobby\r\nlunch at noon\r\n")
    alice.expect(rb"<alice> lunch at noon\r\n")
    # lab-b was not running then.
    b = node(start, redis, "lab-b")
    wait_until(lambda: "earlier room lines taken from Redis" in open(b.log.name).read(),
               timeout=10,
               what="lab-b to take the earlier lines")
    carol = User(b.port, "carol")
    carol.send(b"/join dev\r\n")
    carol.expect(rb"<alice> the plan is on the wiki\r\n", timeout=3)
    carol.send(b"/join lobby\r\n/history\r\n")
    carol.expect(rb"<alice> lunch at noon\r\n", timeout=3)
