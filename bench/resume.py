"""An interrupted push run again: how much of the file travels twice?

Starts ``twistd tekcos`` on loopback and pushes a --mib MiB file with
``tekcos push``; once about half of it is on the server (its part file), the
sender is killed (SIGKILL: no goodbye; or SIGINT: Ctrl-C), and the same
command is run again at once.  Reports what the second run sent, measured on
the loopback interface (bytes of every datagram, both directions, so headers
and ACKs count too) and, where the tree reports it, the data the sender says
it sent; and whether the stored file matches.  Runs this tree and a baseline
revision (by default the one before this round's work) in one invocation.

Target (issue 9): the second run sends at most 55% of the file.

Usage: python bench/resume.py [--mib 200] [--baseline REV | --baseline none]
Traffic stays on 127.0.0.1 (the loopback counters include anything else
that uses loopback meanwhile: run it on an otherwise idle machine).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from common import HOST, ROOT, checkout, file_bench_args, free_port, random_file

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def loopback_bytes() -> int:
    with open("/sys/class/net/lo/statistics/tx_bytes") as f:
        return int(f.read())


def part_bytes(directory: str) -> int:
    sizes = []
    for name in os.listdir(directory):
        if name.endswith(".part"):
            try:
                sizes.append(os.path.getsize(os.path.join(directory, name)))
            except FileNotFoundError:
                pass
    return max(sizes, default=0)


def wait_for_server(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((HOST, port), timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.05)


def measure(code_dir: str, source: str, sha: str, how: signal.Signals) -> dict:
    env = {**os.environ, "PYTHONPATH": code_dir}
    port = free_port()
    size = os.path.getsize(source)
    downloads = tempfile.mkdtemp(prefix="tekcos-bench-dl-")
    command = [sys.executable, "-m", "tekcos.cli", "push", source, "--to", f"{HOST}:{port}",
               "--json", "--timeout", "30"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port",
                                            str(port), "--downloads", downloads],
                                  cwd=code_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_server(port)
            first = subprocess.Popen(command, cwd=code_dir, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
            while part_bytes(downloads) < size // 2 and first.poll() is None:
                time.sleep(0.002)
            first.send_signal(how)
            first.wait(30)
            there = part_bytes(downloads)
            before = loopback_bytes()
            started = time.perf_counter()
            again = subprocess.run(command, cwd=code_dir, env=env, capture_output=True,
                                   text=True, timeout=600)
            seconds = time.perf_counter() - started
            on_wire = loopback_bytes() - before
            if again.returncode != 0:
                raise SystemExit(f"the second run failed ({again.returncode}): "
                                 f"{again.stderr.strip()}")
            record = json.loads(again.stdout.splitlines()[-1])
            stored = os.path.join(downloads, record["name"])
            with open(stored, "rb") as f:
                verified = hashlib.file_digest(f, "sha256").hexdigest() == sha
        finally:
            server.terminate()
            server.wait(30)
            subprocess.run(["rm", "-rf", downloads])
    return {"there": there / size, "wire": on_wire / size, "seconds": seconds,
            "sent": record.get("sent_bytes", None), "resumed": record.get("resumed_bytes"),
            "size": size, "verified": verified}


def main() -> None:
    args = file_bench_args(__doc__)
    with random_file(args.mib) as (source, sha):
        runs = {}
        if args.baseline != "none":
            with checkout(args.baseline) as tree:
                runs[f"baseline {args.baseline}, SIGKILL"] = measure(tree, source, sha,
                                                                     signal.SIGKILL)
        for how in (signal.SIGKILL, signal.SIGINT):
            runs[f"this tree, {how.name}"] = measure(ROOT, source, sha, how)
    print(f"a {args.mib} MiB push killed at about half, then run again (loopback)")
    print(f"{'':28}{'on server':>10}{'2nd run on wire':>17}{'data sent':>11}"
          f"{'resumed':>9}{'seconds':>9}{'verified':>10}")
    for name, r in runs.items():
        sent = f"{r['sent'] / r['size']:.0%}" if r["sent"] is not None else "-"
        resumed = f"{r['resumed'] / r['size']:.0%}" if r["resumed"] is not None else "-"
        print(f"{name:28}{r['there']:>10.0%}{r['wire']:>17.0%}{sent:>11}{resumed:>9}"
              f"{r['seconds']:>9.2f}{'yes' if r['verified'] else 'NO':>10}")


if __name__ == "__main__":
    main()
