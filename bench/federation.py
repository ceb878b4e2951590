"""One machine's cores as one hub: ``--workers`` over a local Redis.

Starts ``redis-server`` on a loopback port and, one after the other in the
same invocation:

* the baseline: one ``twistd tekcos`` process, no Redis;
* ``--workers 2`` and ``--workers 4`` through that Redis.

For each it registers --clients clients (default 40,000) from many loopback
addresses (100 per address) and reports the time until all have their nick
and sit in the lobby; then 1,000 of them join room ``big``, one more
client says 100 lines/s there, and a probe client times its own lines until
a member of ``big`` on *another* worker has them (with one process: any
other member), p50/p99; and the CPU seconds Redis and the server processes
used.  Targets (issue 19): 40,000 registered within 30 s; cross-node p99
within 3x the single process's p99 in the same run.

Usage: sudo python bench/federation.py [--clients 40000] [--workers 2 4]
Needs redis-server and about clients + 2,000 open files (root raises the
limit).  Traffic stays on 127.0.0.0/8.
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from common import HOST, ROOT, allow_open_files, free_port, port_below_ephemeral
from crowd import Crowd, _read_until

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
ROOM = 1000          # members of the busy room
RATE = 100           # lines a second said there


def start_redis() -> tuple[subprocess.Popen, int]:
    if shutil.which("redis-server") is None:
        raise SystemExit("needs redis-server (apt install redis-server)")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tempfile.mkdtemp()],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def start_server(port: int, workers: int, redis_port: int, clients: int, log):
    cmd = TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", str(port),
                    "--udp-port", "0", "--rate", "0", "--max-per-ip", "0",
                    "--max-clients", str(clients + 2000), "--node-name", "bench",
                    "--downloads", tempfile.mkdtemp(), "--state-dir", tempfile.mkdtemp()]
    if workers > 1:
        cmd += ["--workers", str(workers), "--redis", f"redis://127.0.0.1:{redis_port}/0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listening = [p for p in [server, *server.children(recursive=True)]
                     if any(c.laddr.port == port and c.status == "LISTEN"
                            for c in p.net_connections("tcp"))]
        if len(listening) == workers:
            time.sleep(1.0)           # every worker subscribed to the channel
            return proc, listening
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{workers} worker(s) did not all listen")


def cpu(processes) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def client(port: int, nick: str, source: str) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect((HOST, port))
    s.settimeout(30)
    _read_until(s, b"Choose a nick")
    s.sendall(nick.encode() + b"\r\n")
    _read_until(s, b"You are in lobby")
    s.sendall(b"/join big\r\n")
    _read_until(s, b"You are in big")
    return s


def pair(port: int, workers: int) -> tuple[socket.socket, socket.socket]:
    """A probe and a member of ``big`` on another worker (with one process:
    another member)."""
    probe = client(port, "probe", "127.0.3.1")
    for i in range(64):
        other = client(port, f"far{i}", f"127.0.3.{2 + i}")
        if workers == 1:
            return probe, other
        asked = time.monotonic()
        if re.search(rb"on node bench-w\d", whois(probe, b"far%d" % i)):
            print(f"(a user of another worker was known there after "
                  f"{time.monotonic() - asked:.1f} s)", file=sys.stderr)
            return probe, other
        other.close()
    raise SystemExit("no member landed on another worker")


def whois(probe: socket.socket, nick: bytes) -> bytes:
    """The /whois line about ``nick`` (asked again until its node's news
    of it has come round)."""
    for _ in range(120):
        probe.sendall(b"/whois " + nick + b"\r\n")
        buf = b""
        while True:
            buf = _read_until(probe, b"\r\n", buf)
            line, buf = buf.split(b"\r\n", 1)
            if line.startswith(b"*** " + nick + b": "):
                return line
            if b"no such nick: " + nick in line:
                break
        time.sleep(0.5)
    raise SystemExit(f"/whois {nick.decode()}: never found")


def talker(port: int, stop: threading.Event) -> None:
    s = client(port, "talker", "127.0.3.250")
    s.setblocking(False)
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            s.send(b"a line of the busy room, number %d\r\n" % n)
        except BlockingIOError:
            pass
        try:
            while s.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        n += 1
        next_at += 1 / RATE
        time.sleep(max(0.0, next_at - time.monotonic()))
    s.close()


def round_trips(probe, far, count: int) -> list[float]:
    samples = []
    seen = b""
    for i in range(count):
        marker = b"probe-%d-" % i
        sent = time.perf_counter()
        probe.sendall(marker + b"\r\n")
        seen = _read_until(far, marker, seen[-4096:])
        samples.append((time.perf_counter() - sent) * 1000)
        seen = seen[seen.index(marker):]
        try:
            probe.setblocking(False)
            while probe.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        probe.setblocking(True)
        time.sleep(0.05)
    return samples


def crowd_part(port: int, count: int, first: int, net: int, room: int, go, done, stop) -> None:
    """One process's share of the crowd (a process may hold only so many
    sockets): registers when told, says when all are in, joins ``room`` of
    them to ``big``, then reads everything until told to stop."""
    from common import allow_open_files as allow
    allow(count + 200, "a part of the crowd")
    crowd = Crowd(count, min(254, -(-count // 100)), port, first=first, net=net)
    go.wait()
    crowd.register_all(300)
    done.put(time.monotonic())
    for s in crowd.socks[:room]:
        s.send(b"/join big\r\n")
    while not stop.is_set():
        crowd.pump(0.5)


def measure(workers: int, clients: int, redis: psutil.Process, redis_port: int,
            probes: int, per_process: int) -> dict:
    import multiprocessing
    port = port_below_ephemeral()      # the crowd holds tens of thousands of ephemeral ports
    parts = -(-clients // per_process)
    go, stop, done = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Queue()
    helpers = [multiprocessing.Process(target=crowd_part, args=(
        port, min(per_process, clients - k * per_process), k * per_process, 10 + k,
        ROOM if k == 0 else 0, go, done, stop)) for k in range(parts)]
    with tempfile.NamedTemporaryFile(prefix="tekcos-bench-federation-", suffix=".log",
                                     delete=False) as log:
        proc, servers = start_server(port, workers, redis_port, clients, log)
        print(f"({workers} worker(s): the server log is {log.name} while it runs)",
              file=sys.stderr)
        try:
            redis_before, server_before = cpu([redis]), cpu(servers)
            for helper in helpers:
                helper.start()
            time.sleep(1.0)                   # the helpers are up
            started = time.monotonic()
            go.set()
            registration = max(done.get(timeout=600) for _ in helpers) - started
            time.sleep(3.0)                   # the room fills
            probe, far = pair(port, workers)
            halt = threading.Event()
            talk = threading.Thread(target=talker, args=(port, halt))
            talk.start()
            time.sleep(1.0)
            samples = round_trips(probe, far, probes)
            halt.set()
            talk.join()
            used = {"redis_cpu_s": cpu([redis]) - redis_before,
                    "server_cpu_s": cpu(servers) - server_before}
        finally:
            stop.set()
            for helper in helpers:
                helper.join(30)
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    samples.sort()
    return {"clients": clients, "register_s": registration,
            "p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))], **used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    import resource
    allow_open_files(min(args.clients + 2000, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
                     "the probes")
    # What one process may hold (the hard open-file limit, which the server
    # processes inherit): the crowd is split into processes of this many,
    # and a configuration gets at most 90% of its processes' room.
    room = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 1500
    redis_proc, redis_port = start_redis()
    try:
        redis = psutil.Process(redis_proc.pid)
        runs = {}
        for n in [1, *args.workers]:
            clients = min(args.clients, int(n * room * 0.9))
            name = "1 process (baseline)" if n == 1 else f"{n} workers + Redis"
            try:
                runs[name] = measure(n, clients, redis, redis_port, args.probes,
                                     min(room, 15000))
            except SystemExit as e:
                # A saturated machine: said in its row, the other rows stand.
                runs[name] = {"clients": clients, "failed": str(e)}
                print(f"({name}: {e})", file=sys.stderr)
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    base = runs["1 process (baseline)"]
    print(f"round trip to a member of a {ROOM}-member room at {RATE} lines/s on another "
          f"worker ({psutil.cpu_count()} CPUs; a process may hold {room + 1500:,} files)")
    print(f"{'':24}{'clients':>8}{'register (s)':>13}{'p50 (ms)':>10}{'p99 (ms)':>10}"
          f"{'p99 ratio':>10}{'server CPU s':>13}{'Redis CPU s':>12}")
    for name, r in runs.items():
        if "failed" in r:
            print(f"{name:24}{r['clients']:8,}  did not settle: {r['failed']}")
            continue
        print(f"{name:24}{r['clients']:8,}{r['register_s']:13.2f}{r['p50_ms']:10.2f}"
              f"{r['p99_ms']:10.2f}"
              f"{r['p99_ms'] / base['p99_ms'] if 'p99_ms' in base else float('nan'):10.2f}"
              f"{r['server_cpu_s']:13.1f}"
              f"{r['redis_cpu_s']:12.1f}")
    print("targets: 40,000 registered within 30 s; p99 ratio <= 3")


if __name__ == "__main__":
    main()
