"""The web page's chat under load: WebSocket round trip and memory.

Starts ``twistd tekcos --web`` on loopback and measures, in one invocation:

1. Round trip in a busy mixed room: 200 members of lobby (100 telnet, 100
   WebSocket, all reading), one telnet sender pouring 1,000 lines/s into the
   room (in batches of 10 every 10 ms), and one more member that sends a
   marker line every 20 ms and times it until it comes back: a WebSocket
   member (the figure of interest, target p99 <= 10 ms) and, as the baseline
   in the same room, a telnet member; then the same telnet measurement in a
   room of 200 telnet members only (the chat as it was without the web).
2. Server memory per idle client: RSS growth for 1,000 idle WebSocket
   clients (each with a nick) against 1,000 idle telnet clients (target
   <= 10 KB per WebSocket client).
3. A restart under a crowd: 1,000 pages in two rooms, the server stopped
   and started again (same state directory), each page doing what the real
   one does (retry after 0.5 s doubling to 10 s, present its token, which
   the new server does not know, send the line ids it saw, its nick, its
   rooms): the time from the new server's start until each page is back in
   its room (target: all within 15 s), against 1,000 telnet clients that
   reconnect on the same schedule and send their nick (the baseline).

The clients are plain sockets speaking just enough WebSocket (RFC 6455) to
register and read; the room members live in a helper process.

Usage: python bench/web.py [--seconds 8]
Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from common import HOST, ROOT, allow_open_files, free_port, port_below_ephemeral, rss_kib

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class Conn(socket.socket):
    """A socket that keeps what it read past the last marker."""
    pending = b""


def connect(port: int, source: str | None = None) -> Conn:
    """A TCP connection to the server (from the loopback address ``source``)."""
    sock = Conn(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # as telnet and browsers do
    if source is not None:
        sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect((HOST, port))
    return sock


# -- a minimal WebSocket client ---------------------------------------------------------
def ws_connect(port: int, web: int, source: str | None = None) -> Conn:
    sock = connect(web, source)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {HOST}:{web}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Origin: http://{HOST}:{web}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed the WebSocket handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise SystemExit(f"WebSocket refused: {head[:200]!r}")
    sock.pending = head.split(b"\r\n\r\n", 1)[1]
    return sock


def ws_frame(text: str | bytes, opcode: int = 0x1) -> bytes:
    """A masked frame (clients must mask): text, or ``opcode`` (0xA: pong)."""
    payload = text.encode() if isinstance(text, str) else text
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126
                                     else bytes([0x80 | 126]) + struct.pack("!H", n))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def ws_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The payloads of the complete server frames in ``buffer``, and the rest."""
    frames, rest = ws_frames(buffer)
    return [payload for _, payload in frames], rest


def ws_frames(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete server frames in ``buffer`` (unmasked) as (opcode, payload),
    and the rest."""
    out = []
    while len(buffer) >= 2:
        n = buffer[1] & 0x7F
        offset = 2
        if n == 126:
            if len(buffer) < 4:
                break
            n, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif n == 127:
            if len(buffer) < 10:
                break
            n, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < offset + n:
            break
        out.append((buffer[0] & 0x0F, buffer[offset:offset + n]))
        buffer = buffer[offset + n:]
    return out, buffer


def read_until(sock, marker: bytes, websocket: bool, timeout: float = 30) -> None:
    """Read (and drop) until ``marker`` arrives."""
    sock.settimeout(timeout)
    buffer = sock.pending
    seen = b""
    while True:
        if websocket:
            messages, buffer = ws_messages(buffer)
            seen += b"".join(messages)
        else:
            seen, buffer = seen + buffer, b""
        if marker in seen:
            sock.pending = buffer
            return
        seen = seen[-len(marker):]   # a marker split across reads is still found
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit(f"closed while waiting for {marker!r}: {seen[-300:]!r}")
        buffer += chunk


def member(port: int, web: int, nick: str, websocket: bool) -> socket.socket:
    if websocket:
        sock = ws_connect(port, web)
        read_until(sock, b"Choose a nick", True)
        sock.sendall(ws_frame(nick))
    else:
        sock = connect(port)
        read_until(sock, b"Choose a nick", False)
        sock.sendall(nick.encode() + b"\r\n")
    read_until(sock, b"You are in lobby", websocket)
    return sock


# -- the room's members, in a helper process -------------------------------------------
def members_process(port, web, telnet, websockets, ready, stop):
    allow_open_files(telnet + websockets + 256, "the room's members")
    socks = [member(port, web, f"t{i}", False) for i in range(telnet)]
    socks += [member(port, web, f"w{i}", True) for i in range(websockets)]
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    ready.set()
    while not stop.is_set():
        for key, _ in selector.select(0.2):
            try:
                if not key.fileobj.recv(1 << 20):
                    selector.unregister(key.fileobj)
            except BlockingIOError:
                pass
    for sock in socks:
        sock.close()


# -- measurements -----------------------------------------------------------------------
def start_server(port: int, web: int, log, state: str | None = None) -> subprocess.Popen:
    downloads = tempfile.mkdtemp(prefix="tekcos-bench-dl-")
    state = state or tempfile.mkdtemp(prefix="tekcos-bench-state-")
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port",
                                        str(port), "--web", str(web), "--udp-port", "0",
                                        "--rate", "0", "--max-per-ip", "0",
                                        "--max-clients", "20000",
                                        "--downloads", downloads, "--state-dir", state],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((HOST, web), timeout=1).close()
            socket.create_connection((HOST, port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                log.flush()
                log.seek(0)
                tail = log.read()[-1500:].decode(errors="replace")
                raise SystemExit(f"the server did not start:\n{tail}")
            time.sleep(0.05)


def flood(port: int, stop: threading.Event, rate: int = 1000, batch: int = 10) -> None:
    sock = member(port, 0, "sender", False)
    sock.setblocking(False)
    interval = batch / rate
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        lines = b"".join(b"load line %d with some words in it\r\n" % (n + i) for i in range(batch))
        n += batch
        try:
            sock.sendall(lines)
        except BlockingIOError:
            pass
        try:
            while sock.recv(1 << 20):   # the room comes back to the sender too
                pass
        except BlockingIOError:
            pass
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    sock.close()


def round_trips(sock, websocket: bool, seconds: float) -> list[float]:
    samples = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        marker = b"rtt-%d-mark" % i
        i += 1
        sent = time.perf_counter()
        sock.sendall(ws_frame(marker.decode()) if websocket else marker + b"\r\n")
        read_until(sock, marker, websocket)
        samples.append((time.perf_counter() - sent) * 1000)
        time.sleep(0.02)
    return samples


def busy_room(seconds: float, mixed: bool) -> dict:
    port, web = free_port(), free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, web, log)
        ready, stop = multiprocessing.Event(), multiprocessing.Event()
        telnet, websockets = (100, 100) if mixed else (200, 0)
        helper = multiprocessing.Process(target=members_process,
                                         args=(port, web, telnet, websockets, ready, stop))
        helper.start()
        try:
            if not ready.wait(120):
                raise SystemExit("the room's members did not all join")
            results = {}
            probes = [("websocket", True), ("telnet", False)] if mixed else [("telnet", False)]
            probe_socks = {name: (member(port, web, f"probe-{name}", ws), ws)
                           for name, ws in probes}
            halt = threading.Event()
            sender = threading.Thread(target=flood, args=(port, halt))
            sender.start()
            time.sleep(1.0)   # the flood reaches its pace
            for name, (sock, ws) in probe_socks.items():
                results[name] = round_trips(sock, ws, seconds)
            halt.set()
            sender.join()
            alive = server.poll() is None
        finally:
            stop.set()
            helper.join(30)
            server.terminate()
            server.wait(30)
        if not alive:
            raise SystemExit("the server died during the run")
    return results


def idle_memory(count: int) -> dict:
    allow_open_files(2 * count + 512, "the idle clients")
    port, web = free_port(), free_port()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, web, log)
        try:
            out = {}
            for name, ws in (("telnet", False), ("websocket", True)):
                before = rss_kib(server.pid)
                socks = [member(port, web, f"{name[0]}{i}", ws) for i in range(count)]
                time.sleep(1.0)   # let the server settle (state updates, buffers)
                after = rss_kib(server.pid)
                out[name] = (after - before) * 1024 / count
                for sock in socks:
                    sock.close()
                time.sleep(1.0)
        finally:
            server.terminate()
            server.wait(30)
    return out


# -- a crowd reconnecting after a restart ----------------------------------------------
async def _ws_open(web: int, source: str):
    reader, writer = await asyncio.open_connection(HOST, web, local_addr=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: {HOST}:{web}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Origin: http://{HOST}:{web}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise ConnectionRefusedError(head[:100])
    return reader, writer


class _Client:
    """One page (``websocket``) or telnet user: joins, reads all the time as
    a browser or a terminal does (and answers pings), loses the server,
    comes back as the page's code does."""

    def __init__(self, i: int, websocket: bool):
        self.nick = f"{'w' if websocket else 't'}{i}"
        self.websocket = websocket
        self.room = "dev" if i % 2 else "lobby"
        # Each from its own address, as phones and laptops are.
        self.source = f"127.1.{i // 250}.{i % 250 + 1}"
        self.token = None
        self.epoch = None           # the numbering of line ids (the server's hello)
        self.ids: dict = {}
        self.resumed = None
        self.retries: list[str] = []   # why a try failed
        self.seen = b""                # what arrived since the last marker looked for
        self.changed = asyncio.Event()
        self.closed = asyncio.Event()
        self.writer = None

    async def open(self, port: int, web: int) -> None:
        if self.websocket:
            reader, self.writer = await _ws_open(web, self.source)
        else:
            reader, self.writer = await asyncio.open_connection(
                HOST, port, local_addr=(self.source, 0))
        self.seen, self.resumed = b"", None
        self.closed = asyncio.Event()
        asyncio.get_running_loop().create_task(self._pump(reader, self.closed))

    async def _pump(self, reader, closed) -> None:
        buffer = b""
        try:
            while chunk := await reader.read(1 << 16):
                if not self.websocket:
                    self.seen = self.seen[-4096:] + chunk
                    self.changed.set()
                    continue
                frames, buffer = ws_frames(buffer + chunk)
                for opcode, message in frames:
                    self._frame(opcode, message)
                self.changed.set()
        except OSError:
            pass
        closed.set()
        self.changed.set()

    def _frame(self, opcode: int, message: bytes) -> None:
        if opcode == 0x9:      # a ping: answered, as browsers do
            self.writer.write(ws_frame(message, opcode=0xA))
        elif message[:1] == b"\x00":
            control = json.loads(message[1:])
            kind = control.get("t")
            if kind == "token":
                self.token = control["token"]
            elif kind == "hello":
                self.epoch = control["epoch"]
            elif kind == "resume":
                self.resumed = control["ok"]
        elif message[:1] == b"\x1f":
            tag, _, line_id = message[1:].strip().rpartition(b" ")
            self.ids[tag.decode()] = int(line_id)
        else:
            self.seen = self.seen[-4096:] + message

    def send(self, text: str) -> None:
        self.writer.write(ws_frame(text) if self.websocket else text.encode() + b"\r\n")

    async def until(self, done) -> None:
        while not done():
            if self.closed.is_set():
                raise ConnectionResetError("closed")
            self.changed.clear()
            await self.changed.wait()

    async def join(self) -> None:
        self.send(self.nick)
        await self.until(lambda: b"You are in lobby" in self.seen)
        if self.room != "lobby":
            self.send(f"/join {self.room}")
            await self.until(lambda: b"You are in " + self.room.encode() in self.seen)

    async def back(self, port: int, web: int) -> float:
        """As the page does: after 0.5 s, doubling to 10 s, until it is in."""
        await self.closed.wait()
        delay = 0.5
        epoch = self.epoch
        while True:
            await asyncio.sleep(delay)
            try:
                await self.open(port, web)
                if self.websocket:
                    self.send("\x00" + json.dumps({"t": "resume", "token": self.token}))
                    await self.until(lambda: self.resumed is not None)
                    if self.resumed:      # its session was still held: it is back
                        return time.monotonic()
                    if self.ids and epoch == self.epoch:
                        self.send("\x00" + json.dumps({"t": "seen", "epoch": epoch,
                                                        "ids": self.ids}))
                await self.join()
                return time.monotonic()
            except (OSError, asyncio.IncompleteReadError) as e:
                self.retries.append(f"{type(e).__name__}: {e}"[:120])
                if self.writer is not None:
                    self.writer.close()
                delay = min(delay * 2, 10.0)


async def _crowd(port, web, count, websocket, ready, out):
    clients = [_Client(i, websocket) for i in range(count)]
    for start in range(0, count, 100):       # join in waves, as people arrive
        batch = clients[start:start + 100]
        await asyncio.gather(*(c.open(port, web) for c in batch))
        await asyncio.gather(*(c.join() for c in batch))
    ready.set()

    async def back(client):
        try:
            return await asyncio.wait_for(client.back(port, web), 90)
        except (OSError, asyncio.TimeoutError) as e:
            return f"{client.nick}: {type(e).__name__} {e}"[:200]
    done = await asyncio.gather(*(back(c) for c in clients))
    out.put((done, [r for c in clients for r in c.retries]))


def _crowd_process(port, web, count, websocket, ready, out):
    allow_open_files(count + 256, "the reconnecting crowd")
    asyncio.run(_crowd(port, web, count, websocket, ready, out))


def reconnect(count: int, websocket: bool) -> list[float]:
    """Seconds from the new server's start until each client is back in."""
    port, web = port_below_ephemeral(), port_below_ephemeral()
    state = tempfile.mkdtemp(prefix="tekcos-bench-state-")
    ready, out = multiprocessing.Event(), multiprocessing.Queue()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, web, log, state)
        helper = multiprocessing.Process(target=_crowd_process,
                                         args=(port, web, count, websocket, ready, out))
        helper.start()
        try:
            if not ready.wait(300):
                raise SystemExit("the crowd did not all join")
            talker = member(port, web, "talker", False)
            talker.sendall(b"a line for the history\r\n")
            time.sleep(1.0)
            server.terminate()
            server.wait(60)
            started = time.monotonic()
            server = start_server(port, web, log, state)
            done, retries = out.get(timeout=180)
        finally:
            helper.join(30)
            server.terminate()
            server.wait(60)
    if retries:
        import collections
        kinds = collections.Counter(r.split(":")[0] for r in retries)
        print(f"{len(retries)} tries failed and were made again: {dict(kinds)}")
    failed = [t for t in done if isinstance(t, str)]
    if failed:
        print(f"{len(failed)} of {count} did not get back in, e.g. {failed[0]}")
    return [t - started for t in done if not isinstance(t, str)]


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):6.2f} {p99:7.2f} {ordered[-1]:7.2f}  ({len(ordered)})"


def show_reconnect(count: int) -> None:
    pages = reconnect(count, websocket=True)
    telnet = reconnect(count, websocket=False)
    print(f"back in after a restart, seconds from the new server's start, {count} clients")
    print(f"{'':44}{'p50':>6} {'p99':>7} {'max':>7}  (clients)")
    print(f"{'web pages (token, line ids, nick, rooms)':44}{summary(pages)}")
    print(f"{'telnet clients, same schedule (baseline)':44}{summary(telnet)}")
    print(f"last page / last telnet client: {max(pages) / max(telnet):.2f} "
          f"(target: every page within 15 s; {sum(t <= 15 for t in pages)}/{count} were)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--reconnect", type=int, default=1000,
                        help="clients in the restart test (0: skip it)")
    parser.add_argument("--reconnect-only", action="store_true")
    args = parser.parse_args()
    if args.reconnect_only:
        show_reconnect(args.reconnect)
        return
    if args.memory_only:
        memory = idle_memory(args.idle)
        print(f"per idle client: telnet {memory['telnet']:,.0f} B, WebSocket "
              f"{memory['websocket']:,.0f} B")
        return
    mixed = busy_room(args.seconds, mixed=True)
    plain = busy_room(args.seconds, mixed=False)
    print("round trip (ms) of one more member while 1,000 lines/s go into a 200-member lobby")
    print(f"{'':44}{'p50':>6} {'p99':>7} {'max':>7}  (samples)")
    print(f"{'WebSocket member, 100 telnet + 100 WebSocket':44}{summary(mixed['websocket'])}")
    print(f"{'telnet member, same room':44}{summary(mixed['telnet'])}")
    print(f"{'telnet member, 200 telnet (baseline)':44}{summary(plain['telnet'])}")
    ws99 = sorted(mixed["websocket"])[int(len(mixed["websocket"]) * 0.99)]
    base99 = sorted(plain["telnet"])[int(len(plain["telnet"]) * 0.99)]
    print(f"WebSocket p99 / telnet-only p99: {ws99 / base99:.2f} (target: WebSocket p99 <= 10 ms)")
    if args.reconnect:
        show_reconnect(args.reconnect)
    memory = idle_memory(args.idle)
    print(f"server memory per idle client at {args.idle}: telnet {memory['telnet']:,.0f} B, "
          f"WebSocket {memory['websocket']:,.0f} B "
          f"(ratio {memory['websocket'] / max(1.0, memory['telnet']):.2f}; target <= 10 KB)")


if __name__ == "__main__":
    main()
