"""The chat while a push arrives: does the chat wait for the disk?

Starts ``twistd tekcos`` on loopback, registers one chat client and measures
its round trip (a line every 10 ms, timed until it comes back) first on an
idle server, then while ``tekcos push`` sends a --mib MiB file to the same
server (writes, hashing, fsync and the final link of 200 MiB).  Runs this
tree and a baseline revision (by default the one before this round's work)
in the same invocation and prints p50/p99/max for both phases; then, for
this tree, the same while the file comes back down (pushed --for the
measuring user, who accepts it, and fetched with tekcos get).

Usage: python bench/push_chat.py [--mib 200] [--baseline REV | --baseline none]
Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import HOST, ROOT, checkout, file_bench_args, free_port, random_file

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def read_until(sock, marker: bytes, buf: bytes = b"") -> bytes:
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"the server closed the chat connection: {buf[-200:]!r}")
        buf += chunk
    return buf[buf.index(marker) + len(marker):]


def round_trips(sock, until, interval: float = 0.01) -> list[float]:
    samples = []
    i = 0
    while not until():
        marker = b"rt-%d-" % i
        i += 1
        sent = time.perf_counter()
        sock.sendall(marker + b"\r\n")
        read_until(sock, marker)
        samples.append((time.perf_counter() - sent) * 1000)
        time.sleep(interval)
    return samples


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            ordered[-1])


def measure(code_dir: str, source: str, download: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": code_dir}
    port = free_port()
    downloads = tempfile.mkdtemp(prefix="tekcos-bench-dl-")
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port",
                                            str(port), "--downloads", downloads, "--rate", "0"],
                                  cwd=code_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    sock = socket.create_connection((HOST, port), timeout=30)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not start")
                    time.sleep(0.05)
            read_until(sock, b"Choose a nick")
            sock.sendall(b"probe\r\n")
            read_until(sock, b"You are in lobby")
            end = time.monotonic() + 2.0
            idle = round_trips(sock, lambda: time.monotonic() > end)
            started = time.perf_counter()
            push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", source, "--to",
                                     f"{HOST}:{port}", "-q"], cwd=code_dir, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            during = round_trips(sock, lambda: push.poll() is not None)
            seconds = time.perf_counter() - started
            if push.returncode != 0:
                raise SystemExit(f"the push failed: {push.stderr.read().decode()}")
            fetching = None
            if download:
                fetching = download_round_trips(sock, code_dir, env, source, port)
            sock.close()
        finally:
            server.terminate()
            server.wait(30)
            subprocess.run(["rm", "-rf", downloads])
    result = {"idle": summary(idle), "push": summary(during), "samples": len(during),
              "mb_per_s": os.path.getsize(source) / seconds / 1e6}
    if fetching is not None:
        result["get"], result["get_mb_per_s"] = fetching
    return result


def download_round_trips(sock, code_dir: str, env: dict, source: str, port: int):
    """The same file pushed for the measuring user, who accepts it, then
    fetched with tekcos get while the round trips go on: (p50/p99/max, MB/s)."""
    import re
    push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", source, "--to",
                             f"{HOST}:{port}", "--for", "probe", "-q"], cwd=code_dir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    buf = b""
    while not re.search(rb"/accept (\d+) or", buf):
        buf += sock.recv(65536)
    number = re.search(rb"/accept (\d+) or", buf).group(1)
    sock.sendall(b"/accept " + number + b"\r\n")
    while not re.search(rb"tekcos get (\S+) --from", buf):
        buf += sock.recv(65536)
    code = re.search(rb"tekcos get (\S+) --from", buf).group(1).decode()
    if push.wait(120) != 0:
        raise SystemExit(f"the push --for failed: {push.stderr.read().decode()}")
    target = tempfile.mkdtemp(prefix="tekcos-bench-get-")
    started = time.perf_counter()
    get = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "get", code, "--from",
                            f"{HOST}:{port}", "-o", target, "-q"], cwd=code_dir, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    during = round_trips(sock, lambda: get.poll() is not None)
    seconds = time.perf_counter() - started
    subprocess.run(["rm", "-rf", target])
    if get.returncode != 0:
        raise SystemExit(f"tekcos get failed: {get.stderr.read().decode()}")
    return summary(during), os.path.getsize(source) / seconds / 1e6


def main() -> None:
    args = file_bench_args(__doc__)
    with random_file(args.mib) as (source, _):
        runs = {}
        if args.baseline != "none":
            with checkout(args.baseline) as tree:
                runs[f"baseline {args.baseline}"] = measure(tree, source)
        runs["tekcos (this tree)"] = measure(ROOT, source, download=True)
    print(f"chat round trip (ms) while a {args.mib} MiB push arrives over loopback")
    print(f"{'':24}{'idle p50/p99/max':>24}{'during push p50/p99/max':>28}{'push MB/s':>11}")
    for name, r in runs.items():
        idle = "/".join(f"{v:.1f}" for v in r["idle"])
        push = "/".join(f"{v:.1f}" for v in r["push"])
        print(f"{name:24}{idle:>24}{push:>28}{r['mb_per_s']:>11.1f}")
    for name, r in runs.items():
        if "get" in r:
            get = "/".join(f"{v:.1f}" for v in r["get"])
            print(f"{name:24}{'during tekcos get:':>24}{get:>28}{r['get_mb_per_s']:>11.1f}")


if __name__ == "__main__":
    main()
