"""UDP push benchmark: tekcos against a plain TCP stream, through loss.

Builds two network namespaces joined by a veth pair (offloads off, so that
nftables' loss applies per frame), and run after run, for each loss rate in
turn, pushes a file with ``tekcos push`` to ``twistd tekcos`` and copies it
with a plain TCP stream, as fast as ``nc > file`` would be (sendfile, then
``recv_into`` one reused buffer, written to the file and fsynced).  Prints
MB/s, the tekcos/TCP ratio, tekcos's figure against its own 0% figure,
retransmitted bytes against the payload bytes nftables dropped, and the CPU
seconds per GiB moved of each side (sender, receiver) against TCP's.

With ``--baseline REV`` a checkout of REV runs too (its own server on the
next port), its push alternating with this tree's in every run (which goes
first alternates too), so that a noisy machine affects both alike.

Needs root, iproute2, nftables (and ethtool for the offloads).
Usage: sudo python bench/transfer.py [--mib 100] [--loss 0 1 5] [--runs 5] [--baseline REV] [--get]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

from common import ROOT, netlab


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
SERVER, CLIENT = "10.78.0.2", "10.78.0.1"

TCP_RECEIVER = r"""
import os, socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
buffer = bytearray(1 << 20)
view = memoryview(buffer)
with open(sys.argv[3], "wb", buffering=0) as f:
    while True:
        n = conn.recv_into(buffer)
        if not n:
            break
        f.write(view[:n])
    os.fsync(f.fileno())
conn.sendall(b"ok")
conn.close()
print(time.process_time(), flush=True)
"""

TCP_SENDER = r"""
import socket, sys, time, os
start = time.perf_counter()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(2)
print(time.perf_counter() - start, time.process_time())
"""


# A chat user who accepts every file offered to it and prints each CODE it
# is told (for the download direction).
ACCEPTOR = r"""
import re, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"bench\r\n")
buf = b""
print("ready", flush=True)
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for line in lines:
        offer = re.search(rb"/accept (\d+) or /decline", line)
        if offer:
            s.sendall(b"/accept " + offer.group(1) + b"\r\n")
        ready = re.search(rb"tekcos get (\S+) --from", line)
        if ready:
            print(ready.group(1).decode(), flush=True)
"""


def offloads_off(lab, ns, dev):
    if shutil.which("ethtool"):
        subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "rx", "off",
                        "tso", "off", "gso", "off", "gro", "off"], capture_output=True)
        return True
    return False


def set_loss(lab, *ends, loss: float = 0.0) -> None:
    """Drop ``loss`` % of the UDP and TCP frames arriving at each (ns, dev) end.

    The rules are there at 0% too (dropping nothing): every frame then costs
    the same nftables work at every loss rate, work that is the loss
    emulation's, charged to whichever process sends the frame, and not a
    lossy LAN's.  So "vs own 0%" compares the protocols' answers to loss,
    not the instrument's cost."""
    for ns, dev in ends:
        lab.clear_loss(ns)
        lab.drop_udp(ns, dev, loss)
        # The TCP stream meets the same loss.
        lab.exec(ns, "nft", "add", "rule", "netdev", "tekcos_loss", f"ingress_{dev}",
                 "ether", "type", "ip", "ip", "protocol", "tcp", "numgen", "random",
                 "mod", "10000", "<", str(int(round(loss * 100))), "drop")


def tcp_copy(lab, client, server, src, dst) -> tuple[float, float, float]:
    """MB/s, and the CPU seconds of the sender and of the receiver."""
    settle()
    recv = lab.popen(server, [sys.executable, "-c", TCP_RECEIVER, SERVER, "9100", dst],
                     stdout=subprocess.PIPE, text=True)
    recv.stdout.readline()
    seconds, sender_cpu = map(float, lab.exec(client, sys.executable, "-c", TCP_SENDER,
                                              SERVER, "9100", src).split())
    receiver_cpu = float(recv.stdout.readline())
    recv.wait(120)
    return os.path.getsize(src) / seconds / 1e6, sender_cpu, receiver_cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle() -> None:
    """Before each timed transfer: what the one before wrote is on the disk,
    so that no transfer pays for another's writeback."""
    os.sync()


def start_server(lab, ns: str, work: str, port: int = 9000, tree: str = ROOT) -> int:
    """``twistd tekcos`` of ``tree`` in ``ns``, keeping files in
    ``work/dl-PORT`` and logging to ``work/server-PORT.log``, once it
    listens: its pid (``ip netns exec`` runs twistd in its place)."""
    log = open(os.path.join(work, f"server-{port}.log"), "w")
    # This tree keeps its database in the bench's own directory (a baseline
    # before the database has no such option).
    state = ["--state-dir", os.path.join(work, "state")] if tree == ROOT else []
    started = lab.popen(ns, TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns",
                                      "--port", str(port), "--downloads",
                                      os.path.join(work, f"dl-{port}"), "--max-file-size",
                                      str(1 << 40), *state],
                        stdout=log, stderr=subprocess.STDOUT, cwd=tree)
    for _ in range(100):
        if f":{port} " in lab.exec(ns, "ss", "-Huln"):
            break
        time.sleep(0.1)
    return started.pid


def tekcos_push(lab, client, src, tree: str = ROOT, port: int = 9000) -> dict:
    settle()
    before = children_cpu()
    out = subprocess.run(["ip", "netns", "exec", client, sys.executable, "-m", "tekcos.cli",
                          "push", src, "--to", f"{SERVER}:{port}", "--json", "--timeout", "30"],
                         capture_output=True, text=True, cwd=tree, timeout=600)
    if out.returncode:
        raise SystemExit(f"tekcos push failed: {out.stdout} {out.stderr}")
    record = json.loads(out.stdout.splitlines()[0])
    record["cpu"] = children_cpu() - before
    return record


def tekcos_get(lab, client, src, acceptor, work: str, server_pid: int,
               port: int = 9000) -> dict:
    """Push ``src`` for the accepting chat user, then fetch it with its
    CODE: the download direction's record (with the CPU seconds of the
    fetching client and of the server while it sends)."""
    sent = subprocess.run(["ip", "netns", "exec", client, sys.executable, "-m", "tekcos.cli",
                           "push", src, "--to", f"{SERVER}:{port}", "--for", "bench", "-q",
                           "--timeout", "30"], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    if sent.returncode:
        raise SystemExit(f"tekcos push --for failed: {sent.stderr}")
    code = acceptor.stdout.readline().strip()
    if not code:
        raise SystemExit(f"the accepting chat user went away ({acceptor.poll()}); "
                         f"the push said: {sent.stdout} {sent.stderr}")
    target = os.path.join(work, "got")
    settle()
    before, served = children_cpu(), process_cpu(server_pid)
    out = subprocess.run(["ip", "netns", "exec", client, sys.executable, "-m", "tekcos.cli",
                          "get", code, "--from", f"{SERVER}:{port}", "-o", target, "--json",
                          "--timeout", "30"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    if out.returncode:
        raise SystemExit(f"tekcos get failed: {out.stdout} {out.stderr}")
    shutil.rmtree(target)
    record = json.loads(out.stdout.splitlines()[0])
    record["cpu"] = children_cpu() - before
    record["server_cpu"] = process_cpu(server_pid) - served
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--loss", type=float, nargs="+", default=[0, 1, 5])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--offloads", choices=["off", "on"], default="off",
                        help="on: the veth keeps the kernel's default offloads (TSO, GSO, "
                        "GRO), as a real NIC does; nftables' loss then drops whole GSO trains")
    parser.add_argument("--mtu", type=int, default=1500,
                        help="the veth's MTU (9000: a jumbo-frame LAN; the push picks its "
                        "packet size from it, TCP its segment size)")
    parser.add_argument("--baseline", help="git revision to run alongside (alternating)")
    parser.add_argument("--get", action="store_true",
                        help="also the download direction: this tree's file kept for a chat "
                        "user and fetched with tekcos get, after each push")
    args = parser.parse_args()
    from common import checkout
    trees = [("this tree", ROOT, 9000)]
    checkouts = ExitStack()
    if args.baseline:
        trees.insert(0, (f"baseline {args.baseline}",
                         checkouts.enter_context(checkout(args.baseline)), 9001))
    work = tempfile.mkdtemp(prefix="tekcos-bench-")
    src = os.path.join(work, "payload.bin")
    with open(src, "wb") as f:
        for _ in range(args.mib):
            f.write(os.urandom(1 << 20))
    results = {loss: {"tek": {name: [] for name, _, _ in trees}, "tcp": [], "retx": [],
                      "get": [], "cpu": {}} for loss in args.loss}
    gib = args.mib / 1024
    servers: dict[str, int] = {}   # tree -> the server's pid, for its CPU time

    def cpu(got, what: str, seconds: float) -> None:
        got["cpu"].setdefault(what, []).append(seconds / gib)
    acceptor = None
    try:
        with netlab.Lab() as lab:
            client, server = lab.ns("c"), lab.ns("s")
            dev_c, dev_s = lab.link(client, f"{CLIENT}/24", server, f"{SERVER}/24",
                                    mtu=args.mtu)
            offloaded = args.offloads == "on" or (offloads_off(lab, client, dev_c)
                                                   and offloads_off(lab, server, dev_s))
            for name, tree, port in trees:
                servers[tree] = start_server(lab, server, work, port, tree)
            if args.get:
                acceptor = lab.popen(client, [sys.executable, "-c", ACCEPTOR, SERVER, "9000"],
                                     stdout=subprocess.PIPE, text=True)
                acceptor.stdout.readline()
            # Loss rates alternate run by run (and trees push by push), so
            # that a machine busier at one moment than another weighs on
            # every figure alike, the "vs own 0%" ratio included.
            for run in range(args.runs):
                for loss in args.loss:
                    set_loss(lab, (client, dev_c), (server, dev_s), loss=loss)
                    got = results[loss]
                    # Which tree goes first alternates too.
                    for name, tree, port in (trees if run % 2 == 0 else trees[::-1]):
                        before = lab.dropped(server)[0]
                        served = process_cpu(servers[tree])
                        record = tekcos_push(lab, client, src, tree, port)
                        if tree == ROOT:
                            cpu(got, "push sender", record["cpu"])
                            cpu(got, "push receiver", process_cpu(servers[tree]) - served)
                        lost_packets = lab.dropped(server)[0] - before
                        got["tek"][name].append(record["mb_per_s"])
                        lost_payload = lost_packets * record.get("payload", 1400)
                        if lost_payload and tree == ROOT:
                            got["retx"].append(record["retransmitted_bytes"] / lost_payload)
                        downloads = os.path.join(work, f"dl-{port}")
                        for left in os.listdir(downloads):   # not .for/ or the database
                            if not left.startswith("."):
                                os.unlink(os.path.join(downloads, left))
                    rate, sender_cpu, receiver_cpu = tcp_copy(lab, client, server, src,
                                                              os.path.join(work, "tcp.bin"))
                    got["tcp"].append(rate)
                    cpu(got, "TCP sender", sender_cpu)
                    cpu(got, "TCP receiver", receiver_cpu)
                    if acceptor is not None:
                        fetched = tekcos_get(lab, client, src, acceptor, work, servers[ROOT])
                        got["get"].append(fetched["mb_per_s"])
                        cpu(got, "get sender", fetched["server_cpu"])
                        cpu(got, "get receiver", fetched["cpu"])
        rows = [(loss, statistics.median(got["tek"]["this tree"]), statistics.median(got["tcp"]),
                 statistics.median(got["retx"]) if got["retx"] else None, offloaded,
                 {n: statistics.median(v) for n, v in got["tek"].items()})
                for loss, got in results.items()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        checkouts.close()
    base = rows[0][1] if rows and rows[0][0] == 0 else None
    print(f"{args.mib} MiB, median of {args.runs} run(s) per loss rate, loss rates alternating "
          f"(offloads {args.offloads if all(r[4] for r in rows) else 'ON: ethtool missing'})")
    print(f"{'loss':>6} {'tekcos MB/s':>12} {'TCP MB/s':>10} {'tekcos/TCP':>11} "
          f"{'vs own 0%':>10} {'retx/lost':>10}")
    for loss, tek, tcp, retx, _, _ in rows:
        own = f"{tek / base:.2f}" if base else "-"
        rr = f"{retx:.2f}" if retx is not None else "-"
        print(f"{loss:>5g}% {tek:>12.1f} {tcp:>10.1f} {tek / tcp:>11.2f} {own:>10} {rr:>10}")
    for loss, got in results.items():
        for name, figures in got["tek"].items():
            print(f"{loss:>5g}% {name}, run by run: " + " ".join(f"{f:.1f}" for f in figures))
    print("CPU seconds per GiB moved (this tree, medians; the commands' own start-up, "
          "about 0.4 s, included):")
    kinds = ["push sender", "push receiver", "TCP sender", "TCP receiver"] + \
        (["get sender", "get receiver"] if args.get else [])
    print(f"{'loss':>6} " + " ".join(f"{kind:>14}" for kind in kinds))
    for loss, got in results.items():
        print(f"{loss:>5g}% " + " ".join(
            f"{statistics.median(got['cpu'][kind]):>14.2f}" if got["cpu"].get(kind)
            else f"{'-':>14}" for kind in kinds))
    if args.get:
        print(f"{'loss':>6} {'get MB/s':>12} {'push MB/s':>10} {'get/push':>9}  (this tree)")
        for loss, got in results.items():
            get = statistics.median(got["get"])
            push = statistics.median(got["tek"]["this tree"])
            print(f"{loss:>5g}% {get:>12.1f} {push:>10.1f} {get / push:>9.2f}   run by run: "
                  + " ".join(f"{f:.1f}" for f in got["get"]))
    if args.baseline:
        name = trees[0][0]
        print(f"{'loss':>6} {name + ' MB/s':>24} {'this tree MB/s':>15} {'ratio':>6}")
        for loss, tek, _, _, _, by_tree in rows:
            print(f"{loss:>5g}% {by_tree[name]:>24.1f} {tek:>15.1f} {tek / by_tree[name]:>6.2f}")


if __name__ == "__main__":
    main()
