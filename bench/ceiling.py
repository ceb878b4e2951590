"""How fast can any CPython receiver take UDP here? The push's ceiling, against TCP.

In the lab of ``bench/transfer.py`` (two namespaces, a veth pair with
offloads off, the nftables loss rules present and dropping nothing) and in
the same invocation, alternating run by run:

- ``TCP``: the reference copy of ``bench/transfer.py`` (``nc > file``);
- ``read``: a sender that blasts the file as UDP datagrams of the push's size
  in GSO trains (no pacing, no reliability), and a receiver that does nothing
  but ``recv_into`` one reused buffer and count;
- ``read+check+store``: the same, and the receiver does the least a reliable
  receiver must do per datagram: read it into its place in a 1 MiB buffer,
  unpack the header, check the CRC-32 and write each full buffer to the file;
- ``tekcos push``: the real thing.

The blasting sender outruns the receiver, so the receiver runs flat out and
its figure (distinct payload bytes taken per second, first datagram to
last) is what that much work per datagram allows on this machine, with
both ends sharing its cores as the push's do.  If even ``read+check+store``
stays under 0.8x TCP, no CPython receiver reaches issue 18's 0% target here.

Needs root, iproute2, nftables, ethtool.
Usage: sudo python bench/ceiling.py [--mib 100] [--runs 5] [--mtu 1500]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import netlab
from transfer import (CLIENT, SERVER, offloads_off, process_cpu, set_loss, start_server,
                      tcp_copy, tekcos_push)

PORT = 9200

BLASTER = r"""
import socket, struct, sys, time, zlib
host, port, path, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data = open(path, "rb").read()
payload = size - 24
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
s.connect((host, port))
train = []
count = (len(data) + payload - 1) // payload
cmsg = [(socket.SOL_UDP, 103, struct.pack("H", size))]   # UDP_SEGMENT
for seq in range(count):
    chunk = data[seq * payload:(seq + 1) * payload]
    train.append(struct.pack("!QII8x", seq, len(chunk), zlib.crc32(chunk)) + chunk)
    if len(train) == 32 or seq == count - 1:
        while True:
            try:
                if len(train) > 1:
                    s.sendmsg([b"".join(train)], cmsg)
                else:
                    s.send(train[0])
                break
            except ConnectionRefusedError:
                raise
            except OSError:          # the socket's buffer is full (EAGAIN, ENOBUFS)
                time.sleep(0.0001)
        train = []
for _ in range(50):       # the end, said often enough that one arrives
    try:
        s.send(b"END")
    except ConnectionRefusedError:   # the receiver has it and is gone
        break
    time.sleep(0.002)
print(time.process_time())
"""

RECEIVER = r"""
import os, socket, struct, sys, time, zlib
host, port, path, size, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((host, port))
print("ready", flush=True)
header = struct.Struct("!QII8x")
payload = size - 24
per_buffer = (1 << 20) // payload
buffer = bytearray(per_buffer * payload)
head = bytearray(24)
view = memoryview(buffer)
seen = set()
taken = first = last = 0
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
written = 0
slot = 0
scratch = bytearray(size)
while True:
    if mode == "read":
        n = s.recv_into(scratch)
        if n == 3 and scratch[:3] == b"END":
            break
        last = time.perf_counter()
        if not first:
            first = last
        taken += n - 24
        continue
    # read+check+store: the header into its own buffer, the payload
    # straight into its place (one scatter read, no copy after it).
    at = slot * payload
    n = s.recvmsg_into([head, view[at:at + payload]])[0]
    if n == 3 and head[:3] == b"END":
        break
    last = time.perf_counter()
    if not first:
        first = last
    seq, length, crc = header.unpack_from(head)
    if zlib.crc32(view[at:at + length]) != crc or seq in seen:
        continue
    seen.add(seq)
    taken += length
    slot += 1
    if slot == per_buffer:
        written += os.pwrite(fd, view[:slot * payload], written)
        slot = 0
os.close(fd)
print(taken / (last - first) / 1e6 if last > first else 0.0, time.process_time(), flush=True)
"""


def udp_ceiling(lab, client, server, src, dst, size: int, mode: str
                ) -> tuple[float, float, float]:
    """MB/s taken by the receiver, and the CPU seconds of sender and receiver."""
    receiver = lab.popen(server, [sys.executable, "-c", RECEIVER, SERVER, str(PORT), dst,
                                  str(size), mode], stdout=subprocess.PIPE, text=True)
    receiver.stdout.readline()
    sender_cpu = float(lab.exec(client, sys.executable, "-c", BLASTER, SERVER, str(PORT), src,
                                str(size)).split()[-1])
    rate, receiver_cpu = map(float, receiver.stdout.readline().split())
    receiver.wait(60)
    return rate, sender_cpu, receiver_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mtu", type=int, default=1500)
    args = parser.parse_args()
    size = args.mtu - 28     # the push's datagram: the path's MTU less IP and UDP headers
    work = tempfile.mkdtemp(prefix="tekcos-ceiling-")
    src = os.path.join(work, "payload.bin")
    with open(src, "wb") as f:
        for _ in range(args.mib):
            f.write(os.urandom(1 << 20))
    kinds = ["TCP", "read", "read+check+store", "tekcos push"]
    got: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    gib = args.mib / 1024
    try:
        with netlab.Lab() as lab:
            client, server = lab.ns("c"), lab.ns("s")
            dev_c, dev_s = lab.link(client, f"{CLIENT}/24", server, f"{SERVER}/24",
                                    mtu=args.mtu)
            offloads_off(lab, client, dev_c)
            offloads_off(lab, server, dev_s)
            set_loss(lab, (client, dev_c), (server, dev_s), loss=0)
            server_pid = start_server(lab, server, work)
            downloads = os.path.join(work, "dl-9000")
            dst = os.path.join(work, "copy.bin")
            for run in range(args.runs):
                order = kinds if run % 2 == 0 else kinds[::-1]
                for kind in order:
                    if kind == "TCP":
                        rate, sender_cpu, receiver_cpu = tcp_copy(lab, client, server, src, dst)
                    elif kind == "tekcos push":
                        served = process_cpu(server_pid)
                        record = tekcos_push(lab, client, src)
                        rate, sender_cpu = record["mb_per_s"], record["cpu"]
                        receiver_cpu = process_cpu(server_pid) - served
                        for left in os.listdir(downloads):
                            if not left.startswith("."):
                                os.unlink(os.path.join(downloads, left))
                    else:
                        os.sync()
                        rate, sender_cpu, receiver_cpu = udp_ceiling(lab, client, server, src,
                                                                     dst, size, kind)
                    got[kind].append(rate)
                    cpu[kind].append((sender_cpu / gib, receiver_cpu / gib))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tcp = statistics.median(got["TCP"])
    print(f"{args.mib} MiB, MTU {args.mtu} ({size}-byte datagrams), 0% loss, offloads off, "
          f"median of {args.runs} alternating runs")
    print(f"{'':>18} {'MB/s':>8} {'x TCP':>6} {'CPU s/GiB: sender':>18} {'receiver':>9}"
          "   MB/s run by run")
    for kind in kinds:
        median = statistics.median(got[kind])
        sender = statistics.median(c[0] for c in cpu[kind])
        receiver = statistics.median(c[1] for c in cpu[kind])
        print(f"{kind:>18} {median:>8.1f} {median / tcp:>6.2f} {sender:>18.2f} {receiver:>9.2f}"
              "   " + " ".join(f"{f:.1f}" for f in got[kind]))
    print("(the push's sender figure includes the command's start-up, about 0.4 s)")


if __name__ == "__main__":
    main()
