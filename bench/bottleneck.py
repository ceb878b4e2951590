"""Pushes through a bottleneck: a 200 Mbit/s tbf (50 ms queue) on the
sender's side of a veth between two network namespaces.

Scenarios, for this tree and a baseline revision in the same invocation:
* one push of --mib MiB: MB/s against the bottleneck's 25 MB/s, and the
  bytes retransmitted as a share of the file;
* ten concurrent ``tekcos push`` processes of 8 MB each: how many delivered,
  when the last one finished against the ideal 80 MB / 25 MB/s = 3.2 s, and
  the bytes retransmitted as a share of all;
* one push alongside one TCP stream through the same bottleneck, for 10 s:
  the push's rate against the stream's;
* where the tree has ``tekcos push --background``: such a push alone (MB/s),
  and the rate of a TCP stream started beside a running one against its rate
  alone (a background push should leave it nearly all of the link).

Needs root and iproute2.  Usage: sudo python bench/bottleneck.py [--mib 100]
[--baseline REV | --baseline none]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import BEFORE_ROUND, ROOT, checkout, netlab


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
SERVER, CLIENT = "10.88.0.2", "10.88.0.1"
RATE_MBIT = 200

TCP_SINK = r"""
import socket, sys, time
srv = socket.socket(); srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept(); total = 0; start = None
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    start = start or time.perf_counter(); total += len(data)
print(total / (time.perf_counter() - start) / 1e6, flush=True)
"""

TCP_SOURCE = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
end = time.monotonic() + float(sys.argv[3]); block = b"x" * (1 << 16)
while time.monotonic() < end:
    s.sendall(block)
s.close()
"""


def lab_with_bottleneck(code_dir: str, work: str):
    lab = netlab.Lab()
    client, server = lab.ns("c"), lab.ns("s")
    dev_c, _ = lab.link(client, f"{CLIENT}/24", server, f"{SERVER}/24")
    lab.exec(client, "tc", "qdisc", "add", "dev", dev_c, "root", "tbf", "rate",
             f"{RATE_MBIT}mbit", "burst", "256kbit", "latency", "50ms")
    downloads = os.path.join(work, "dl")
    log = open(os.path.join(work, "server.log"), "w")
    lab.popen(server, TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", "9000",
                                "--downloads", downloads, "--max-file-size", str(1 << 40)],
              stdout=log, stderr=subprocess.STDOUT, cwd=code_dir,
              env={**os.environ, "PYTHONPATH": code_dir})
    for _ in range(200):
        if "9000" in lab.exec(server, "ss", "-Huln"):
            break
        time.sleep(0.1)
    return lab, client, server


def push(lab, client, code_dir: str, path: str, *extra: str) -> subprocess.Popen:
    return lab.popen(client, [sys.executable, "-m", "tekcos.cli", "push", path, "--to",
                              f"{SERVER}:9000", "--json", "--timeout", "30", *extra],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=code_dir,
                     env={**os.environ, "PYTHONPATH": code_dir})


def record(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    lines = out.splitlines()
    return json.loads(lines[0]) if lines else {"status": "failed", "error": err.strip(),
                                               "retransmitted_bytes": 0, "seconds": 0}


def tcp_stream(lab, client, server, seconds: float = 10.0):
    """Start a TCP stream of ``seconds``; the returned function waits for it
    and gives its rate in MB/s."""
    sink = lab.popen(server, [sys.executable, "-c", TCP_SINK, SERVER, "9100"],
                     stdout=subprocess.PIPE, text=True)
    sink.stdout.readline()
    source = lab.popen(client, [sys.executable, "-c", TCP_SOURCE, SERVER, "9100", str(seconds)])

    def rate() -> float:
        source.wait(60)
        value = float(sink.stdout.readline() or 0)
        sink.wait(60)
        return value
    return rate


def has_background(code_dir: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "tekcos.cli", "push", "--help"], cwd=code_dir,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": code_dir})
    return "--background" in out.stdout


def measure(code_dir: str, mib: int) -> dict:
    result = {}
    with tempfile.TemporaryDirectory(prefix="tekcos-bench-") as work:
        big = os.path.join(work, "big.bin")
        with open(big, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        small = []
        for i in range(10):
            small.append(os.path.join(work, f"s{i}.bin"))
            with open(small[-1], "wb") as f:
                f.write(os.urandom(8_000_000))
        lab, client, server = lab_with_bottleneck(code_dir, work)
        try:
            one = record(push(lab, client, code_dir, big))
            result["single_mb_s"] = one.get("mb_per_s", 0.0) if one["status"] == "delivered" \
                else 0.0
            result["single_retx"] = one["retransmitted_bytes"] / os.path.getsize(big)
            started = time.monotonic()
            procs = [push(lab, client, code_dir, p) for p in small]
            records = []
            for proc in procs:
                records.append(record(proc))
            result["ten_delivered"] = sum(r["status"] == "delivered" for r in records)
            result["ten_last_s"] = time.monotonic() - started
            result["ten_retx"] = sum(r["retransmitted_bytes"] for r in records) / 80_000_000
            tcp = tcp_stream(lab, client, server)
            alongside = record(push(lab, client, code_dir, big))
            tcp_rate = tcp()
            result["vs_tcp"] = (alongside.get("mb_per_s", 0.0) / tcp_rate) \
                if tcp_rate and alongside["status"] == "delivered" else 0.0
            result["vs_tcp_status"] = alongside["status"]
            if has_background(code_dir):
                alone = record(push(lab, client, code_dir, big, "--background"))
                result["bg_alone"] = alone.get("mb_per_s", 0.0) \
                    if alone["status"] == "delivered" else 0.0
                result["tcp_solo"] = tcp_stream(lab, client, server)()
                # A backup is running when someone starts a download.  (A
                # background push that starts while a queue already stands
                # takes it for the path's own delay: LEDBAT's latecomer
                # problem, RFC 6817 4.4.)
                beside = push(lab, client, code_dir, big, "--background")
                time.sleep(1.0)
                result["tcp_beside_bg"] = tcp_stream(lab, client, server)()
                result["bg_beside_status"] = record(beside)["status"]
        finally:
            lab.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--baseline", default=BEFORE_ROUND)
    args = parser.parse_args()
    runs = {}
    if args.baseline != "none":
        with checkout(args.baseline) as tree:
            runs[f"baseline {args.baseline}"] = measure(tree, args.mib)
    runs["tekcos (this tree)"] = measure(ROOT, args.mib)
    ideal = RATE_MBIT / 8
    print(f"bottleneck {RATE_MBIT} Mbit/s ({ideal:g} MB/s), tbf queue 50 ms")
    print(f"{'':24}{'one push':>16}{'retx':>7}{'ten: delivered':>16}{'last s':>8}"
          f"{'retx':>7}{'push/TCP':>10}")
    for name, r in runs.items():
        print(f"{name:24}{r['single_mb_s']:>9.1f} MB/s{r['single_retx']:>7.1%}"
              f"{r['ten_delivered']:>13}/10{r['ten_last_s']:>8.1f}{r['ten_retx']:>7.1%}"
              f"{r['vs_tcp']:>10.2f}")
    print(f"targets: one push >= {0.9 * ideal:.1f} MB/s and retx <= 2%; ten: 10/10, "
          f"last <= {2 * 80 / ideal:.1f} s, retx <= 10%; push/TCP between 0.5 and 2")
    for name, r in runs.items():
        if "bg_alone" in r:
            share = r["tcp_beside_bg"] / r["tcp_solo"] if r["tcp_solo"] else 0.0
            print(f"{name}: --background alone {r['bg_alone']:.1f} MB/s "
                  f"({r['bg_alone'] / ideal:.0%} of the link); a TCP stream alone "
                  f"{r['tcp_solo']:.1f} MB/s, beside a background push {r['tcp_beside_bg']:.1f} "
                  f"MB/s ({share:.0%}; the push: {r['bg_beside_status']})")


if __name__ == "__main__":
    main()
