"""A simulated datagram channel between a Sender and a Receiver, driven by
explicit time: drops, duplicates, reorders and corrupts datagrams."""
from __future__ import annotations

import hashlib
import heapq
import random

from tekcos.push.receiver import Receiver
from tekcos.push.sender import Sender

CLIENT = ("127.0.0.2", 40000)


class Channel:
    def __init__(self, rng: random.Random, loss=0.0, dup=0.0, corrupt=0.0, reorder=0.0,
                 delay=0.001, jitter=0.0005, max_size=None):
        self.rng = rng
        # A link whose MTU is smaller than the sender thinks: larger
        # datagrams vanish (a switch without jumbo frames sends no ICMP).
        self.max_size = max_size
        self.too_large = 0
        self.loss, self.dup, self.corrupt, self.reorder = loss, dup, corrupt, reorder
        self.delay, self.jitter = delay, jitter
        self.queue: list = []
        self.last = {"server": 0.0, "client": 0.0}  # FIFO unless reordered
        self.counter = 0
        self.sent = self.lost = 0

    def put(self, now: float, datagram: bytes, to: str) -> None:
        self.sent += 1
        if self.max_size is not None and len(datagram) > self.max_size:
            self.too_large += 1
            return
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        copies = 2 if self.rng.random() < self.dup else 1
        for _ in range(copies):
            data = datagram
            if self.rng.random() < self.corrupt:
                i = self.rng.randrange(len(data))
                data = data[:i] + bytes([data[i] ^ (1 << self.rng.randrange(8))]) + data[i + 1:]
            when = now + self.delay + self.rng.random() * self.jitter
            if self.rng.random() < self.reorder:
                when += self.rng.random() * 0.01
            else:
                when = self.last[to] = max(when, self.last[to])
            self.counter += 1
            heapq.heappush(self.queue, (when, self.counter, to, data))


def make_sender(data: bytes, *, window=64, payload=100, timeout=5.0, kind="file",
                name="f.bin", offer_id=7, resume=True, background=False, client=""):
    return Sender(offer_id=offer_id, name=name, size=len(data),
                  sha256=hashlib.sha256(data).hexdigest(), kind=kind,
                  read=lambda off, n: data[off:off + n], sender_name="tester",
                  payload_size=payload, window=window, timeout=timeout, resume=resume,
                  background=background, client=client)


def run(sender: Sender, endpoint: Receiver, channel: Channel, now=0.0, limit=600.0,
        until=None):
    """Run until the sender finishes (or ``limit`` simulated seconds, or
    ``until()`` is true: the sender is killed there, nothing more is sent)."""
    sender.start(now)
    end = now + limit
    while now < end:
        if until is not None and until():
            channel.queue.clear()
            break
        for d in sender.datagrams_to_send(now):
            channel.put(now, d, "server")
        for d, addr in endpoint.datagrams_to_send(now):
            assert addr == CLIENT
            channel.put(now, d, "client")
        if sender.finished and not channel.queue:
            break
        times = [t for t in (sender.get_timer(), endpoint.get_timer()) if t is not None]
        if channel.queue:
            times.append(channel.queue[0][0])
        if not times:
            break
        now = max(now, min(times))
        while channel.queue and channel.queue[0][0] <= now:
            _, _, to, data = heapq.heappop(channel.queue)
            if to == "server":
                endpoint.receive_datagram(data, CLIENT, now)
            else:
                sender.receive_datagram(data, now)
        t = sender.get_timer()
        if t is not None and t <= now:
            sender.handle_timer(now)
        t = endpoint.get_timer()
        if t is not None and t <= now:
            endpoint.handle_timer(now)
    return now
