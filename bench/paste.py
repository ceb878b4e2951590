"""Pastes and floods in the chat: what arrives, and what everyone else pays.

For this tree and a baseline revision (default: the landing before the
paced-lines work), in the same invocation, alternately, each on a fresh
``twistd tekcos`` on loopback with the default ``--rate 5 --burst 20``:

- **paste**: one user pastes 200 lines (16 KB) in one write; another user
  counts the lines that arrive, whether they are in order, and how long
  the last one takes;
- **flood**: one user sends 100,000 lines as fast as the socket takes
  them while a third user measures its chat round trip (a line every
  250 ms, timed until it comes back) against the same user's round trip
  with nobody flooding; and the server's peak resident memory.

Usage: python bench/paste.py [--baseline REV|none] [--seconds 16]
Traffic stays on 127.0.0.1.
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
import tempfile
import threading
import time
from contextlib import nullcontext

from common import ROOT, checkout, free_port, rss_kib

BASELINE = "ceeabe2"
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def start(code_dir: str):
    port = free_port()
    work = tempfile.mkdtemp(prefix="tekcos-bench-paste-")
    log = open(os.path.join(work, "log"), "wb")
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", str(port),
                                        "--udp-port", "0", "--max-per-ip", "0"],
                              cwd=work, env={**os.environ, "PYTHONPATH": code_dir},
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port, work
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.05)


def stop(server, work) -> None:
    server.terminate()
    server.wait(20)
    shutil.rmtree(work, ignore_errors=True)


class Reader:
    """A logged-in user whose received bytes a thread collects."""

    def __init__(self, port: int, nick: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.data = b""
        self.lock = threading.Lock()
        self.wait_for(b"Choose a nick")
        self.sock.sendall(nick.encode() + b"\n")
        self.wait_for(b"You are in lobby")

    def wait_for(self, marker: bytes, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return False
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.data += chunk
        return True

    def take(self, marker: bytes) -> None:
        self.data = self.data[self.data.index(marker) + len(marker):]


def paste(code_dir: str) -> dict:
    server, port, work = start(code_dir)
    try:
        watcher, paster = Reader(port, "watcher"), Reader(port, "paster")
        lines = [b"paste line %03d " % i + b"x" * 64 for i in range(200)]
        started = time.monotonic()
        paster.sock.sendall(b"".join(line + b"\n" for line in lines))
        # Wait until no paste line has arrived for 2 s past the last one.
        last = started
        while time.monotonic() - last < 2.0 and time.monotonic() - started < 120:
            before = watcher.data.count(b"<paster> paste line")
            watcher.wait_for(b"\xff", timeout=0.5)   # never comes: read for 0.5 s
            if watcher.data.count(b"<paster> paste line") > before:
                last = time.monotonic()
        got = [int(n) for n in re.findall(rb"<paster> paste line (\d+)", watcher.data)]
        return {"arrived": len(got), "in_order": got == sorted(got),
                "seconds": last - started}
    finally:
        stop(server, work)


def round_trips(user: Reader, seconds: float) -> list[float]:
    samples, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        marker = b"rt-%d-" % i
        i += 1
        sent = time.perf_counter()
        user.sock.sendall(marker + b"\n")
        if user.wait_for(marker, 3.0):
            samples.append((time.perf_counter() - sent) * 1000)
            user.take(marker)
        else:
            samples.append(3000.0)
        time.sleep(0.25)   # 4 lines a second: within the default rate (5)
    return samples


def flood(code_dir: str, seconds: float) -> dict:
    server, port, work = start(code_dir)
    try:
        probe = Reader(port, "probe")
        probe.sock.sendall(b"/join quiet\n")     # its own room: only its own lines
        probe.wait_for(b"You are in quiet")
        idle = round_trips(probe, seconds / 2)
        flooder = socket.create_connection(("127.0.0.1", port), timeout=10)
        flooder.sendall(b"flooder\n")
        peak = [rss_kib(server.pid)]
        stop_flag = threading.Event()

        # Built before the clock runs: joining it holds this process's GIL,
        # which would show up in the probe's round trips, not the server's.
        body = b"".join(b"flood %06d\n" % i for i in range(100_000))

        def pour():
            try:
                flooder.sendall(body)
            except OSError:
                pass
            while not stop_flag.is_set():   # read what comes back, as a client does
                try:
                    if select.select([flooder], [], [], 0.2)[0] and not flooder.recv(1 << 16):
                        break
                except OSError:
                    break

        def watch_memory():
            while not stop_flag.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.05)

        threads = [threading.Thread(target=pour), threading.Thread(target=watch_memory)]
        for thread in threads:
            thread.start()
        busy = round_trips(probe, seconds)
        stop_flag.set()
        for thread in threads:
            thread.join(10)
        flooder.close()
        return {"idle": idle, "busy": busy, "peak_mib": peak[0] / 1024}
    finally:
        stop(server, work)


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--seconds", type=float, default=16.0)
    args = parser.parse_args()
    with (checkout(args.baseline) if args.baseline != "none" else nullcontext()) as baseline:
        trees = [("this tree", ROOT)] + ([(f"baseline {args.baseline}", baseline)]
                                         if baseline else [])
        print(f"{'tree':22}{'paste: lines arrived':>22}{'in order':>10}{'last after s':>14}")
        for label, tree in reversed(trees):
            r = paste(tree)
            print(f"{label:22}{r['arrived']:>17} of 200{'yes' if r['in_order'] else 'NO':>10}"
                  f"{r['seconds']:>14.1f}", flush=True)
        print()
        print(f"{'tree':22}{'rtt ms idle p50/p99':>22}{'flood p50/p99':>16}{'p99 ratio':>11}"
              f"{'peak RSS MiB':>14}")
        for label, tree in reversed(trees):
            r = flood(tree, args.seconds)
            idle, busy = r["idle"], r["busy"]
            print(f"{label:22}{statistics.median(idle):>12.2f}/{p(idle, .99):<9.2f}"
                  f"{statistics.median(busy):>8.2f}/{p(busy, .99):<7.2f}"
                  f"{p(busy, .99) / max(0.01, p(idle, .99)):>11.2f}{r['peak_mib']:>14.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
