"""A crowd on the chat: N clients from many loopback addresses.

Runs the current tekcos and a baseline tekcos (another git revision, checked
out into a temporary worktree; by default the last one before the crowd
work) one after the other in the same invocation, and prints for each:

* registration: seconds from the first connect until all N clients have
  their nick and sit in the lobby (clients come from --addresses loopback
  addresses, e.g. 127.0.1.1 .. 127.0.1.100, at most 100 per address);
* round trip p50/p99 of one more client chatting in that lobby afterwards
  (--rtt-msgs lines at --rtt-rate per second, each timed until it comes back),
  and p50/p99 of the time until the member written to last has the line
  (the whole room's fan-out);
* SIGTERM: seconds until the server process has exited, and how many of the
  N clients were told "Server shutting down" before their connection closed;
* server RSS per registered client.

Usage: python bench/crowd.py [--clients 10000] [--addresses 100]
       [--baseline REV | --baseline none]
Needs about N + 1000 open files in this process and in the server (root may
raise the limit; otherwise the hard limit applies).  Traffic stays on
127.0.0.0/8.
"""
from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import (
    BEFORE_ROUND,
    HOST,
    ROOT,
    allow_open_files,
    checkout,
    free_port,
    rss_kib,
)

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def start(code_dir: str, port: int, log, clients: int) -> subprocess.Popen:
    """``twistd tekcos`` from ``code_dir``, logging to a private file
    (never a shared path: twistd rotates its log file)."""
    env = {**os.environ, "PYTHONPATH": code_dir}
    cmd = TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", str(port),
                    "--udp-port", "0", "--rate", "0", "--max-per-ip", "128",
                    "--downloads", tempfile.mkdtemp()]
    usage = subprocess.run(TWISTD + ["tekcos", "--help"], cwd=code_dir, env=env,
                           capture_output=True, text=True).stdout
    if "--max-clients" in usage:   # room for the crowd and the round-trip client
        cmd += ["--max-clients", str(clients + 100)]
    proc = subprocess.Popen(cmd, cwd=code_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


class Crowd:
    """N non-blocking clients driven by one epoll loop."""

    def __init__(self, n: int, addresses: int, port: int, first: int = 0, net: int = 1):
        """``first``: the number of the first client (nicks ``c000000``…);
        ``net``: the clients come from 127.0.NET.1 onwards (several crowds
        in several processes use different ones)."""
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.data: dict[int, bytearray] = {}
        self.port = port
        self.n = n
        self.addresses = addresses
        self.first = first
        self.net = net

    def register_all(self, timeout: float) -> float:
        """Connect everyone, answer the nick prompt, wait for the lobby."""
        started = time.monotonic()
        pending = {}
        joined = 0
        next_index = 0
        in_flight = 0
        deadline = started + timeout
        while joined < self.n:
            # Keep at most 500 handshakes in flight (the listen backlog is 1024).
            while next_index < self.n and in_flight < 500:
                s = socket.socket()
                s.setblocking(False)
                s.bind((f"127.0.{self.net}.{1 + next_index % self.addresses}", 0))
                s.connect_ex((HOST, self.port))
                self.socks.append(s)
                self.data[s.fileno()] = bytearray()
                pending[s.fileno()] = (s, next_index, False)
                self.sel.register(s, selectors.EVENT_READ)
                next_index += 1
                in_flight += 1
            if time.monotonic() > deadline:
                raise SystemExit(f"registration: only {joined} of {self.n} in {timeout:g} s")
            for key, _ in self.sel.select(1.0):
                fd = key.fd
                try:
                    chunk = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    raise SystemExit(f"client {fd}: {e}")
                if not chunk:
                    raise SystemExit(f"a client was closed: {bytes(self.data[fd][-200:])!r}")
                buf = self.data[fd]
                buf += chunk
                if fd in pending:
                    s, index, nick_sent = pending[fd]
                    if not nick_sent and b"Choose a nick" in buf:
                        s.send(b"c%06d\r\n" % (self.first + index))
                        pending[fd] = (s, index, True)
                    if nick_sent and b"You are in lobby" in buf:
                        del pending[fd]
                        joined += 1
                        in_flight -= 1
                if len(buf) > 1 << 16:   # keep only the tail; we look for markers
                    del buf[:-4096]
        return time.monotonic() - started

    def pump(self, seconds: float) -> None:
        """Read whatever arrives for ``seconds`` (keeps socket buffers empty)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in self.sel.select(max(0.0, end - time.monotonic())):
                try:
                    chunk = key.fileobj.recv(65536)
                except OSError:
                    continue
                buf = self.data[key.fd]
                buf += chunk
                if len(buf) > 1 << 16:
                    del buf[:-4096]

    def told_goodbye(self, timeout: float) -> int:
        """Read to the end of every connection; count the goodbyes."""
        told = 0
        open_ = {s.fileno(): s for s in self.socks}
        deadline = time.monotonic() + timeout
        while open_ and time.monotonic() < deadline:
            for key, _ in self.sel.select(0.5):
                try:
                    chunk = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                buf = self.data[key.fd]
                if chunk:
                    buf += chunk
                    continue
                if b"Server shutting down" in buf:
                    told += 1
                self.sel.unregister(key.fileobj)
                open_.pop(key.fd).close()
        for s in open_.values():
            s.close()
        return told


def _read_until(s: socket.socket, marker: bytes, buf: bytes = b"") -> bytes:
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit(f"the server closed the connection: {buf[-300:]!r}")
        buf += chunk
    return buf


def round_trips(port: int, count: int, rate: float, farthest: socket.socket
                ) -> tuple[list[float], list[float]]:
    """Round trips of a chatting client, and for each line the time until
    ``farthest`` (the crowd member who joined last, written to last) has it."""
    s = socket.create_connection((HOST, port))
    s.settimeout(30)
    _read_until(s, b"Choose a nick")
    s.sendall(b"rtt\r\n")
    _read_until(s, b"You are in lobby")
    samples, whole_room = [], []
    farthest.setblocking(True)
    farthest.settimeout(30)
    seen = b""
    for i in range(count):
        marker = b"probe-%d-" % i
        sent = time.perf_counter()
        s.sendall(marker + b"\r\n")
        _read_until(s, marker)
        samples.append((time.perf_counter() - sent) * 1000)
        seen = _read_until(farthest, marker, seen[-4096:])
        whole_room.append((time.perf_counter() - sent) * 1000)
        seen = seen[seen.index(marker):]
        time.sleep(max(0.0, 1 / rate - whole_room[-1] / 1000))
    farthest.setblocking(False)
    s.close()
    return samples, whole_room


def measure(code_dir: str, args, clients: int) -> dict:
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = start(code_dir, port, log, clients)
        try:
            base = rss_kib(proc.pid)
            crowd = Crowd(clients, args.addresses, port)
            registration = crowd.register_all(args.timeout)
            crowd.pump(1.0)
            rss = (rss_kib(proc.pid) - base) * 1024 / clients
            # The crowd is not read while the probe chats: its lines
            # (rtt-msgs x ~40 bytes per client) fit in the socket buffers.
            samples, whole_room = round_trips(port, args.rtt_msgs, args.rtt_rate,
                                              crowd.socks[-1])
            crowd.pump(0.5)
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            stop = time.monotonic() - began
            told = crowd.told_goodbye(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    samples.sort()
    whole_room.sort()
    return {"clients": clients, "register_s": registration, "p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            "room_p50_ms": statistics.median(whole_room),
            "room_p99_ms": whole_room[min(len(whole_room) - 1, int(len(whole_room) * 0.99))],
            "sigterm_s": stop, "told": told, "rss_per_client_b": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--addresses", type=int, default=100)
    parser.add_argument("--rtt-msgs", type=int, default=200)
    # A person chatting: a line every 200 ms is already a fast typist.  Every
    # line costs the server one write per member (about 7 µs each on
    # loopback), so a 10,000-member room carries about 13 lines/s at most.
    parser.add_argument("--rtt-rate", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up on registration after this many seconds (600)")
    parser.add_argument("--baseline-clients", type=int, default=None,
                        help="clients for the baseline run (default: --clients); an N^2 "
                        "baseline may need fewer to finish")
    parser.add_argument("--baseline", default=BEFORE_ROUND,
                        help=f"git revision to compare with ({BEFORE_ROUND}: before the "
                        "crowd work), or 'none'")
    args = parser.parse_args()
    if not 1 <= args.addresses <= 254:
        raise SystemExit("--addresses: 1 to 254")
    allow_open_files(args.clients + 1000, f"--clients {args.clients}")
    runs = {}
    if args.baseline != "none":
        with checkout(args.baseline) as tree:
            runs[f"baseline {args.baseline}"] = measure(tree, args,
                                                        args.baseline_clients or args.clients)
    runs["tekcos (this tree)"] = measure(ROOT, args, args.clients)
    names = list(runs)
    print(f"clients from {args.addresses} loopback addresses; "
          f"round trips: {args.rtt_msgs} lines at {args.rtt_rate:g}/s")
    print(f"{'':28}" + "".join(f"{n:>24}" for n in names)
          + ("    ratio" if len(names) == 2 else ""))
    rows = [("clients", "clients", "{:,}"),
            ("registration (s)", "register_s", "{:.2f}"),
            ("round trip p50 (ms)", "p50_ms", "{:.2f}"),
            ("round trip p99 (ms)", "p99_ms", "{:.2f}"),
            ("whole room has it p50 (ms)", "room_p50_ms", "{:.2f}"),
            ("whole room has it p99 (ms)", "room_p99_ms", "{:.2f}"),
            ("SIGTERM to exit (s)", "sigterm_s", "{:.2f}"),
            ("clients told goodbye", "told", "{:,}"),
            ("RSS per client (B)", "rss_per_client_b", "{:,.0f}")]
    for label, key, fmt in rows:
        values = [runs[n][key] for n in names]
        line = f"{label:28}" + "".join(f"{fmt.format(v):>24}" for v in values)
        if len(values) == 2 and values[0]:
            line += f"{values[1] / values[0]:>9.2f}"
        print(line)


if __name__ == "__main__":
    main()
