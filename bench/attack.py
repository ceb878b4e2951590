"""A hostile host on the LAN: what everyone else gets while it attacks.

For each attack, starts ``twistd tekcos --web`` on loopback (open files
capped at 4,096, as on a small server), lets the attacker (a helper process
on its own loopback addresses, 127.0.0.2 and up) take hold, then measures
what a legitimate user on 127.0.0.1 gets meanwhile:

- the chat round trip of a user who logs in during the attack (a line every
  200 ms, within the default flood control; timed until it comes back; one not back within 3 s counts 3,000 ms
  and as lost), p50/p99/max;
- a 20 MiB ``tekcos push`` started during the attack: its exit status and
  seconds;
- how long the server takes to exit on SIGTERM, still under attack.

The attacks (issue 23), after ``none`` (the reference): ``state-flood`` (30 WebSockets asking for the page's
state with 1,500 rooms), ``ticket-flood`` (one WebSocket asking for upload
tickets), ``slowloris`` (4,300 HTTP requests sending a header byte every 5 s),
``socket-spread`` (one host's 40 sockets each starting a push and keeping it
alive), ``offer-flood`` (10,000 offers/s from 1,000 addresses, answers never
read, as from spoofed sources), ``resume-loop`` (a 280 MB partial file,
then offer, accepted with the kept prefix, one out-of-order packet, abort,
as fast as it goes).

Runs this tree and a baseline revision (default: the last landing before
this work) alternately in the same invocation.

Usage: sudo python bench/attack.py [--seconds 10] [--baseline REV|none] [--only NAME ...]
Traffic stays on 127.0.0.0/8.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import select
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from common import ROOT, allow_open_files, checkout, free_port, random_file
from web import ws_connect, ws_frame

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
BASELINE = "420ad14"
ATTACKER = "127.0.0.2"
LOST_MS = 3000.0


# -- the legitimate user ---------------------------------------------------------------------
def login(port: int, nick: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wait_for(sock, b"Choose a nick")
    sock.sendall(nick.encode() + b"\r\n")
    wait_for(sock, b"You are in lobby")
    return sock


def wait_for(sock, marker: bytes, timeout: float = 10.0) -> bool:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return False
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError(f"closed while waiting for {marker!r}")
        seen = seen[-len(marker):] + chunk
    return True


def round_trips(sock, until, push) -> tuple[list[float], int]:
    """Round trips until ``until()``; ``push`` (a dict with the Popen) gets
    its finishing time as soon as it is seen."""
    samples, lost, i = [], 0, 0
    while not until():
        if "ended" not in push and push["proc"].poll() is not None:
            push["ended"] = time.monotonic()
        marker = b"rt-%d-" % i
        i += 1
        sent = time.perf_counter()
        sock.sendall(marker + b"\r\n")
        if wait_for(sock, marker, LOST_MS / 1000):
            samples.append((time.perf_counter() - sent) * 1000)
        else:
            samples.append(LOST_MS)
            lost += 1
        time.sleep(0.2)   # within the default flood control (5 lines/s)
    return samples, lost


# -- the attacks (each in a helper process; ``ready`` once it holds) ------------------------
def bound(kind=socket.SOCK_STREAM, source=ATTACKER) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.bind((source, 0))
    return s


def websocket(web: int, nick: str, source=ATTACKER) -> socket.socket:
    s = ws_connect(0, web, source)
    s.sendall(ws_frame(nick))
    s.setblocking(False)
    return s


def pour(sockets, frame: bytes, stop, batch: int = 50) -> None:
    """Send ``frame`` on every socket as fast as they take it; read and
    drop whatever comes back."""
    burst = frame * batch
    poller = selectors.DefaultSelector()   # epoll: descriptors past 1,024
    for s in sockets:
        poller.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    live = len(sockets)
    while live and not stop.is_set():
        for key, events in poller.select(0.05):
            s = key.fileobj
            try:
                if events & selectors.EVENT_READ and not s.recv(1 << 20):
                    raise OSError("closed")
                if events & selectors.EVENT_WRITE:
                    s.send(burst)
            except OSError:
                poller.unregister(s)
                live -= 1


def state_flood(port, web, ready, stop, rooms=1500):
    holders = []
    for i in range(rooms):   # a room exists while someone is in it
        s = bound(source=f"127.0.{10 + i // 25}.{i % 25 + 1}")
        s.connect(("127.0.0.1", port))
        s.sendall(f"r{i}\r\n/join room{i}\r\n".encode())
        holders.append(s)
    sockets = [websocket(web, f"state{i}") for i in range(30)]
    ready.set()
    pour(sockets, ws_frame('\x00{"t":"state"}'), stop)


def ticket_flood(port, web, ready, stop):
    sockets = [websocket(web, "tickets")]
    ready.set()
    pour(sockets, ws_frame('\x00{"t":"upload","name":"x.bin","size":1}'), stop)


def slowloris(port, web, ready, stop, count=4300):
    """``count`` requests that never finish their headers: a byte every 5 s
    each, and every one the server closes is opened again (as slowloris
    does)."""
    def opened() -> socket.socket:
        s = bound()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", web))
        return s

    poller = selectors.DefaultSelector()
    held = []
    for _ in range(0, count, 100):   # in batches, each waited for
        batch = [opened() for _ in range(100)]
        for s in batch:
            poller.register(s, selectors.EVENT_WRITE)
        deadline, waiting = time.monotonic() + 3, set(batch)
        while waiting and time.monotonic() < deadline:
            for key, _ in poller.select(0.1):
                waiting.discard(key.fileobj)
        for s in batch:
            poller.unregister(s)
            if s in waiting or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                s.close()
                continue
            try:
                s.send(b"GET / HTTP/1.1\r\nHo")
                held.append(s)
            except OSError:
                s.close()
    ready.set()
    while not stop.wait(5.0):
        for i, s in enumerate(held):
            try:
                s.send(b"s")
            except OSError:
                s.close()
                held[i] = opened()


def udp_offer(offer_id: int, body: dict) -> bytes:
    from tekcos.push import wire
    return wire.encode_json(wire.OFFER, offer_id, body, pad_to=200)


def socket_spread(port, web, ready, stop, count=40):
    from tekcos.push import wire
    sockets = []
    for i in range(count):
        s = bound(socket.SOCK_DGRAM)
        s.settimeout(1)
        s.sendto(udp_offer(i + 1, {"name": f"hog{i}", "size": 1 << 30, "kind": "file",
                                    "sha256": hashlib.sha256(b"%d" % i).hexdigest(),
                                    "payload": 1400}), ("127.0.0.1", port))
        try:
            kind, _, _, payload = wire.decode(s.recv(2048))
        except (OSError, wire.Malformed):
            continue
        if kind == wire.ACCEPT:
            sockets.append((s, wire.decode_json(payload)["token"], [0]))
    ready.set()
    while not stop.wait(0.5):   # one packet each, in order: alive, never done
        for s, token, seq in sockets:
            s.sendto(wire.encode(wire.DATA, token, seq[0], b"\0" * 1400), ("127.0.0.1", port))
            seq[0] += 1


def offer_flood(port, web, ready, stop, rate=10_000, sources=1000):
    sockets = [bound(socket.SOCK_DGRAM, f"127.1.{i // 250}.{i % 250 + 1}")
               for i in range(sources)]
    offers = [udp_offer(10_000 + i, {"name": f"junk{i}", "size": 1000, "kind": "file",
                                      "sha256": "0" * 64, "payload": 1400})
              for i in range(sources)]
    ready.set()
    sent, started = 0, time.monotonic()
    while not stop.is_set():
        for s, datagram in zip(sockets, offers):
            try:
                s.sendto(datagram, ("127.0.0.1", port))
            except OSError:
                pass
        sent += len(sockets)
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def resume_loop(port, web, ready, stop, mib=280):
    from tekcos.push import wire
    size, payload = 2 << 30, 1400
    body = {"name": "big.bin", "size": size, "kind": "file", "payload": payload,
            "sha256": hashlib.sha256(b"never finished").hexdigest(), "resume": True,
            "client": "f" * 32}
    s = bound(socket.SOCK_DGRAM)
    s.settimeout(1.0)
    server = ("127.0.0.1", port)

    def offer(offer_id):
        while True:
            s.sendto(udp_offer(offer_id, body), server)
            try:
                kind, _, _, answer = wire.decode(s.recv(4096))
            except (OSError, wire.Malformed):
                continue
            if kind == wire.ACCEPT:
                return wire.decode_json(answer)
            time.sleep(0.01)      # busy: a hostile host does not wait long

    # Setup: ``mib`` MiB in order (a window of 2,048 packets), then silence.
    token = offer(1)["token"]
    packets, nxt, cum = mib * (1 << 20) // payload, 0, 0
    chunk = b"\0" * payload
    while cum < packets:
        while nxt < min(packets, cum + 2048):
            s.sendto(wire.encode(wire.DATA, token, nxt, chunk), server)
            nxt += 1
        try:
            kind, _, seq, _ = wire.decode(s.recv(65536))
            if kind == wire.ACK:
                cum = max(cum, seq)
        except (OSError, wire.Malformed):
            nxt = cum            # lost: go back
    time.sleep(1.5)             # silent: the next offer takes it over
    ready.set()
    offer_id = 2
    while not stop.is_set():
        accept = offer(offer_id)
        offer_id += 1
        seq = accept.get("have", 0) // payload + 10
        s.sendto(wire.encode(wire.DATA, accept["token"], seq, chunk), server)
        s.sendto(wire.encode_json(wire.ABORT, accept["token"], {"error": "again"}), server)


def no_attack(port, web, ready, stop):
    ready.set()
    stop.wait()


ATTACKS = {"none": no_attack, "state-flood": state_flood, "ticket-flood": ticket_flood, "slowloris": slowloris,
           "socket-spread": socket_spread, "offer-flood": offer_flood,
           "resume-loop": resume_loop}


def attacker(code_dir, name, port, web, ready, stop):
    sys.path.insert(0, code_dir)
    resource.setrlimit(resource.RLIMIT_NOFILE, (16000, 16000))
    ATTACKS[name](port, web, ready, stop)


# -- one run ------------------------------------------------------------------------------------
def start_server(code_dir: str, port: int, web: int, downloads: str, env: dict, log):
    cap = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))  # noqa: E731
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port",
                                        str(port), "--web", f"tcp:{web}:interface=127.0.0.1",
                                        "--downloads", downloads],
                              cwd=downloads, env=env, stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=cap)   # (cwd: whatever state it keeps goes too)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.05)


def run(code_dir: str, name: str, seconds: float, source: str) -> dict:
    port, web = free_port(), free_port()
    downloads = tempfile.mkdtemp(prefix="tekcos-bench-dl-")
    home = tempfile.mkdtemp(prefix="tekcos-bench-home-")
    env = {**os.environ, "PYTHONPATH": code_dir, "XDG_CONFIG_HOME": home}
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    helper = multiprocessing.Process(target=attacker, args=(code_dir, name, port, web, ready, stop))
    with tempfile.TemporaryFile() as log:
        server = start_server(code_dir, port, web, downloads, env, log)
        try:
            helper.start()
            if not ready.wait(120):
                raise SystemExit(f"{name}: the attack did not start")
            time.sleep(1.0)
            result = {"joined": True}
            try:
                chat = login(port, "probe")
            except (OSError, ConnectionError):
                chat, result["joined"] = None, False
            started = time.monotonic()
            push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", source, "--to",
                                     f"127.0.0.1:{port}", "-q", "--timeout", "30"],
                                    cwd=code_dir, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            end = started + seconds
            watch = {"proc": push}
            samples, lost = round_trips(chat, lambda: time.monotonic() > end, watch) if chat \
                else ([LOST_MS], 1)
            try:
                push.wait(max(1.0, started + 40 - time.monotonic()))
            except subprocess.TimeoutExpired:
                push.kill()
                push.wait()
            result["push"] = (push.returncode, watch.get("ended", time.monotonic()) - started)
            ordered = sorted(samples)
            result["rtt"] = (statistics.median(ordered),
                             ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                             ordered[-1], lost)
            stopping = time.monotonic()
            server.terminate()
            try:
                server.wait(20)
                result["sigterm"] = time.monotonic() - stopping
            except subprocess.TimeoutExpired:
                result["sigterm"] = None
        finally:
            stop.set()
            helper.join(10)
            if helper.is_alive():
                helper.kill()
            if server.poll() is None:
                server.kill()
                server.wait()
            shutil.rmtree(downloads, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--only", nargs="*", choices=sorted(ATTACKS), default=list(ATTACKS))
    args = parser.parse_args()
    allow_open_files(16000, "the attack bench")
    with random_file(20) as (source, _), \
            (checkout(args.baseline) if args.baseline != "none" else _none()) as baseline:
        trees = [("this tree", ROOT)] + ([(f"baseline {args.baseline}", baseline)]
                                         if baseline else [])
        print(f"{'attack':15}{'tree':20}{'chat rtt ms p50/p99/max (lost)':>34}"
              f"{'joined':>8}{'push exit, s':>14}{'SIGTERM s':>11}")
        for name in args.only:
            for label, tree in reversed(trees):   # baseline first, then this tree
                r = run(tree, name, args.seconds, source)
                p50, p99, worst, lost = r["rtt"]
                rtt = f"{p50:.1f}/{p99:.1f}/{worst:.0f} ({lost})"
                exit_code, took = r["push"]
                term = f"{r['sigterm']:.2f}" if r["sigterm"] is not None else "> 20"
                print(f"{name:15}{label:20}{rtt:>34}{'yes' if r['joined'] else 'NO':>8}"
                      f"{f'{exit_code}, {took:.1f}':>14}{term:>11}", flush=True)


class _none:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
