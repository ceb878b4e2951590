"""Chat server benchmark: tekcos against a minimal Twisted broadcast server.

Both servers run as subprocesses on 127.0.0.1 in the same invocation and are
driven by the same single-threaded epoll client, which reports:

* delivered lines/s at saturation: one sender pushes --lines lines as fast as
  TCP allows into a room of --receivers receivers; the clock stops when every
  receiver has read every line;
* p50/p99 latency at a fixed rate: --rate-msgs messages/s for --seconds s,
  each carrying its send time;
* server RSS per idle client with --idle clients connected (tekcos clients
  take a nick and sit in rooms of 100).

tekcos runs with --rate 0 --max-per-ip 0 (one address sends everything) and
a large --max-buffer (the bench client, not the server, is what lags).
Usage: python bench/chat.py [--receivers 200] [--lines 30000] [--idle 10000]
"""
from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time

from common import HOST, allow_open_files, free_port, rss_kib

HERE = os.path.dirname(os.path.abspath(__file__))


def start(kind: str, port: int) -> subprocess.Popen:
    if kind == "tekcos":
        twistd = shutil.which("twistd")
        # "-l -": the log goes to our DEVNULL pipe; twistd rotates a log
        # *file* (renaming it), so it must never be handed a shared path.
        cmd = [twistd, "-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", str(port),
               "--rate", "0", "--max-per-ip", "0", "--max-buffer", str(1 << 30),
               "--max-clients", "100000", "--udp-port", "0"]
    else:
        cmd = [sys.executable, os.path.join(HERE, "minimal_server.py"), str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            time.sleep(0.2)  # let the probe's disconnect settle
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{kind} server did not start")


class Client:
    __slots__ = ("sock", "received", "lines", "partial")

    def __init__(self, sock):
        self.sock = sock
        self.received = b""
        self.lines = 0
        self.partial = b""


def connect_many(n: int, hello) -> list[Client]:
    """Open n connections, 100 at a time; ``hello(i)`` is what each sends first."""
    clients = []
    for base in range(0, n, 100):
        batch = []
        for i in range(base, min(n, base + 100)):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((HOST, PORT))
            batch.append((i, s))
        for i, s in batch:
            poller = select.poll()
            poller.register(s, select.POLLOUT)
            poller.poll(30000)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                raise SystemExit(f"connection {i} failed")
            data = hello(i)
            if data:
                s.sendall(data)
            clients.append(Client(s))
        drain(clients[base:], 0.0)
    return clients


def drain(clients, quiet: float, marker: bytes | None = None, limit: float = 60.0) -> None:
    """Read everything; return after ``quiet`` s without data, or (with
    ``marker``) once every client has received ``marker``."""
    ep = select.epoll()
    by_fd = {c.sock.fileno(): c for c in clients}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    missing = {c for c in clients if marker is not None and marker not in c.received}
    end = time.monotonic() + limit
    last = time.monotonic()
    try:
        while time.monotonic() < end:
            events = ep.poll(0.05)
            for fd, _ in events:
                c = by_fd[fd]
                try:
                    data = c.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                c.lines += data.count(b"\n")
                if len(c.received) < 4096:
                    c.received += data
                if c in missing and marker in c.received:
                    missing.discard(c)
            if events:
                last = time.monotonic()
            if marker is not None and not missing:
                return
            if marker is None and time.monotonic() - last >= quiet:
                return
    finally:
        ep.close()
    if marker is not None:
        raise SystemExit(f"{len(missing)} clients never received {marker!r}")


def room_members(kind: str, n: int) -> tuple[list[Client], Client]:
    if kind == "tekcos":
        receivers = connect_many(n, lambda i: b"r%d\n" % i)
        sender = connect_many(1, lambda i: b"sender\n")[0]
        everyone = receivers + [sender]
        drain(everyone, 0.5, marker=b"You are in")
    else:
        receivers = connect_many(n, lambda i: b"")
        sender = connect_many(1, lambda i: b"")[0]
        everyone = receivers + [sender]
    drain(everyone, 0.3)
    return receivers, sender


def saturation(receivers, sender, lines: int) -> float:
    everyone = receivers + [sender]
    for c in everyone:
        c.lines = 0
    payload = b"".join(b"m%07d %s\n" % (i, b"x" * 32) for i in range(lines))
    view = memoryview(payload)
    ep = select.epoll()
    by_fd = {c.sock.fileno(): c for c in everyone}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    ep.modify(sender.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
    sent = 0
    done = 0
    start = time.perf_counter()
    while done < len(receivers):
        for fd, ev in ep.poll(1.0):
            c = by_fd[fd]
            if ev & select.EPOLLOUT and sent < len(payload):
                try:
                    sent += c.sock.send(view[sent:sent + (1 << 16)])
                except BlockingIOError:
                    pass
                if sent >= len(payload):
                    ep.modify(fd, select.EPOLLIN)
            if ev & select.EPOLLIN:
                try:
                    data = c.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                before = c.lines
                c.lines += data.count(b"\n")
                if c is not sender and before < lines <= c.lines:
                    done += 1
        if time.perf_counter() - start > 120:
            raise SystemExit("saturation phase did not finish in 120 s")
    elapsed = time.perf_counter() - start
    ep.close()
    return lines * len(receivers) / elapsed


STAMP = re.compile(rb"t(\d{10,})\r?\n")


def latency(receivers, sender, rate: int, seconds: float) -> tuple[float, float, int]:
    # Timing every line of every receiver would make this client, not the
    # server, the bottleneck (200 wake-ups per message).  Every 10th receiver
    # and the last one (written to last in fan-out order) are timed; the
    # others are drained in bulk every 20 ms so that the server still writes
    # to all of them.
    sampled = receivers[::10]
    if receivers[-1] not in sampled:
        sampled.append(receivers[-1])
    bulk = [c for c in receivers if c not in set(sampled)] + [sender]
    samples: list[int] = []
    ep = select.epoll()
    by_fd = {c.sock.fileno(): c for c in sampled}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = time.monotonic()
    next_drain = start
    sent = 0
    deadline = start + seconds + 2.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        while sent < total and start + sent * interval <= now:
            sender.sock.send(b"t%d\n" % time.monotonic_ns())
            sent += 1
        if now >= next_drain:
            next_drain = now + 0.02
            for c in bulk:
                try:
                    while c.sock.recv(1 << 18):
                        pass
                except BlockingIOError:
                    pass
        wait = max(0.0, start + sent * interval - time.monotonic()) if sent < total else 0.02
        for fd, _ in ep.poll(wait):
            c = by_fd[fd]
            try:
                data = c.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            arrived = time.monotonic_ns()
            data = c.partial + data
            cut = data.rfind(b"\n") + 1
            c.partial = data[cut:]
            for m in STAMP.finditer(data, 0, cut):
                samples.append(arrived - int(m.group(1)))
        if sent >= total and len(samples) >= total * len(sampled):
            break
    ep.close()
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    return q[49] / 1e6, q[98] / 1e6, len(samples)


def idle_rss(kind: str, n: int) -> float:
    global PORT
    PORT = free_port()
    proc = start(kind, PORT)
    try:
        # One warm-up client so that lazily imported code is already in RSS.
        warm = connect_many(1, (lambda i: b"warm\n") if kind == "tekcos" else (lambda i: b""))
        drain(warm, 0.3)
        before = rss_kib(proc.pid)
        if kind == "tekcos":
            clients = connect_many(n, lambda i: b"i%d\n/join idle-%d\n" % (i, i // 100))
            drain(clients, 1.0, marker=b"You are in idle-", limit=120)
        else:
            clients = connect_many(n, lambda i: b"")
        drain(clients, 1.0)
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        for c in clients + warm:
            c.sock.close()
        return (after - before) * 1024 / n
    finally:
        proc.terminate()
        proc.wait(10)


def run(kind: str, args) -> dict:
    global PORT
    PORT = free_port()
    proc = start(kind, PORT)
    try:
        receivers, sender = room_members(kind, args.receivers)
        sat = saturation(receivers, sender, args.lines)
        drain(receivers + [sender], 0.3)
        p50, p99, n = latency(receivers, sender, args.rate_msgs, args.seconds)
        for c in receivers + [sender]:
            c.sock.close()
    finally:
        proc.terminate()
        proc.wait(10)
    result = {"lines_per_s": sat, "p50_ms": p50, "p99_ms": p99, "samples": n}
    if args.idle:
        result["rss_per_idle_b"] = idle_rss(kind, args.idle)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--lines", type=int, default=30000)
    parser.add_argument("--rate-msgs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--idle", type=int, default=10000)
    args = parser.parse_args()
    # Each process holds one end of every idle connection.
    allow_open_files(args.idle + 1000, f"--idle {args.idle}")
    results = {kind: run(kind, args) for kind in ("minimal", "tekcos")}
    m, t = results["minimal"], results["tekcos"]
    print(f"{'':28}{'minimal':>12}{'tekcos':>12}{'ratio':>8}")
    rows = [("delivered lines/s", "lines_per_s", "{:,.0f}"),
            ("latency p50 (ms)", "p50_ms", "{:.2f}"),
            ("latency p99 (ms)", "p99_ms", "{:.2f}")]
    if args.idle:
        rows.append((f"RSS/idle client (B, n={args.idle})", "rss_per_idle_b", "{:,.0f}"))
    for label, key, fmt in rows:
        ratio = t[key] / m[key] if m[key] else float("nan")
        print(f"{label:28}{fmt.format(m[key]):>12}{fmt.format(t[key]):>12}{ratio:>8.2f}")
    print(f"receivers={args.receivers} lines={args.lines} latency: {args.rate_msgs} msg/s "
          f"for {args.seconds:g} s ({t['samples']} samples)")


if __name__ == "__main__":
    main()
