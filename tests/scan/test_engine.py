"""The scan loop with a fake raw socket and a fake clock; the Scanner's
thread-pool path with an injected pool."""
import ipaddress

from twisted.internet.task import Clock

from tekcos.scan import arp, engine
from tekcos.scan.iface import Selection

SEL = Selection("fake9", ipaddress.IPv4Address("10.0.0.250"), "02:aa:00:00:00:01",
                ipaddress.IPv4Network("10.0.0.0/28"))
NEIGHBOURS = {"10.0.0.1": ["00:1b:c5:00:00:15"], "10.0.0.7": ["3c:22:fb:00:00:01",
                                                               "02:00:00:00:00:07"]}


class FakeLink:
    """A raw socket on a link where NEIGHBOURS answer after 0.3 ms."""

    def __init__(self, clock):
        self.clock = clock
        self.sent = []
        self.inbox = []
        self.closed = False

    def send(self, frame):
        self.sent.append(frame)
        target = ipaddress.IPv4Address(frame[38:42])
        for mac in NEIGHBOURS.get(str(target), []):
            m = arp.mac_bytes(mac)
            reply = (frame[6:12] + m + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02" + m
                     + target.packed + frame[6:12] + frame[28:32])
            self.inbox.append((self.clock.seconds() + 0.0003, reply))
        self.inbox.append((self.clock.seconds(), frame))   # AF_PACKET sees our own too

    def recv(self, size):
        ready = [item for item in self.inbox if item[0] <= self.clock.seconds()]
        if not ready:
            raise BlockingIOError
        self.inbox.remove(ready[0])
        return ready[0][1]

    def close(self):
        self.closed = True


def test_scan_finds_exactly_the_neighbours_and_every_mac():
    clock = Clock()
    link = FakeLink(clock)

    def wait(sock, timeout):
        pending = [t for t, _ in link.inbox if t > clock.seconds()]
        step = min([timeout] + [t - clock.seconds() for t in pending])
        clock.advance(max(step, 0.0))
        return any(t <= clock.seconds() for t, _ in link.inbox)

    result = engine.scan(SEL, rate=1000, tries=2, open_socket=lambda iface: link,
                         clock=clock.seconds, wait=wait, keep_frames=True)
    assert [str(h.ip) for h in result.hosts] == ["10.0.0.1", "10.0.0.7"]
    assert result.hosts[1].macs == NEIGHBOURS["10.0.0.7"] and result.hosts[1].conflict
    assert 0.0002 < result.hosts[0].rtt < 0.002
    # 14 targets (our own address excluded); the 12 silent ones probed twice.
    assert result.sent == 2 + 12 * 2 == len(link.sent)
    assert all(frame[28:32] == SEL.ip.packed for frame in link.sent)
    assert link.closed
    assert len(result.frames) == len(link.sent) + 3      # requests and the 3 replies


def test_scanner_runs_the_scan_in_the_injected_thread_pool():
    calls = []

    class Pool:
        def callInThreadWithCallback(self, onResult, f, *a, **kw):
            calls.append(f)
            onResult(True, f(*a, **kw))

    class Reactor:
        def callFromThread(self, f, *a, **kw):
            f(*a, **kw)

    scanner = engine.Scanner(Reactor(), lambda: Pool(),
                             scan_function=lambda sel, **kw: ("scanned", sel.iface, kw))
    results = []
    scanner.scan(SEL, rate=5).addCallback(results.append)
    assert results == [("scanned", "fake9", {"rate": 5})]
    assert len(calls) == 1


def test_without_a_rate_the_scan_is_paced_at_the_links_rate(monkeypatch):
    clock = Clock()
    link = FakeLink(clock)
    monkeypatch.setattr(engine, "probe_rate", lambda iface: {"fake9": 200}[iface])

    def wait(sock, timeout):
        clock.advance(max(timeout, 0.0))
        return any(t <= clock.seconds() for t, _ in link.inbox)

    result = engine.scan(SEL, tries=1, open_socket=lambda iface: link, clock=clock.seconds,
                         wait=wait)
    # 14 probes at 200 a second: the last leaves 65 ms after the first.
    assert result.rate == 200 and result.sent == 14
    assert 0.065 <= result.elapsed < 0.065 + 0.11 + 0.01
