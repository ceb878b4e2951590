"""The window's connection against a real ``twistd tekcos`` on loopback,
with the window replaced by a recorder (no display): chat both ways, a
refused nick handed back, retries timed by a Clock, and the hop between
the reactor's thread and the window's."""
from __future__ import annotations

import threading

import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from tekcos.gui.link import FIRST_RETRY, Hop, Link
from tekcos.gui.transfers import Transfers
from tests.twistd import User, free_port


class View:
    """What the window would be told, and a way to wait for it."""

    def __init__(self):
        self.lines: list[str] = []
        self.statuses: list[str] = []
        self.refusals: list[str] = []
        self._waiting: list[tuple] = []

    def server_line(self, text):
        self.lines.append(text)
        self._wake()

    def status(self, text):
        self.statuses.append(text)
        self._wake()

    def connected(self, address, nick):
        pass

    def refused(self, reason):
        self.refusals.append(reason)
        self._wake()

    def until(self, condition, timeout=10.0) -> defer.Deferred:
        d = defer.Deferred()
        self._waiting.append((condition, d))
        self._wake()
        return d.addTimeout(timeout, reactor)

    def _wake(self):
        for entry in list(self._waiting):
            condition, d = entry
            if condition():
                self._waiting.remove(entry)
                d.callback(None)


def direct(function, *args):
    function(*args)


def link_to(port, nick, view, clock=None, downloads=".", transfers=None):
    link = Link(reactor, direct, view, transfers or Transfers(lambda: 0.0), downloads,
                clock=clock)
    link.connect(f"127.0.0.1:{port}", nick)
    return link


def said(view, text):
    return lambda: any(text in line for line in view.lines)


@pytest_twisted.ensureDeferred
async def test_the_link_chats_both_ways_with_a_telnet_user(start):
    server = start("--udp-port", "0")
    view = View()
    link = link_to(server.port, "gina", view)
    await view.until(said(view, "*** You are in lobby"))
    tom = await threads.deferToThread(User, server.port, "tom")
    link.user_line("hello tom")
    await threads.deferToThread(tom.expect, b"<gina> hello tom")
    tom.send("안녕 gina\n".encode())
    await view.until(said(view, "<tom> 안녕 gina"))
    await link.close()
    await threads.deferToThread(tom.expect, b"gina has quit")
    assert view.statuses[-1] == "disconnected"


@pytest_twisted.ensureDeferred
async def test_a_cancelled_send_keeps_its_row_and_retry_resumes_it(start, tmp_path):
    import re
    server = start()
    tom = await threads.deferToThread(User, server.port, "tom")
    view = View()
    rows = Transfers(reactor.seconds, lambda key: view._wake())
    link = link_to(server.port, "gina", view, transfers=rows)
    await view.until(said(view, "*** You are in lobby"))
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x5a" * (120 << 20))
    link.send_file("tom", str(big))
    offer = await threads.deferToThread(tom.expect, rb"/accept \d+")
    tom.send(re.search(rb"/accept \d+", offer).group(0) + b"\n")
    await view.until(lambda: 1 in rows.rows and rows.rows[1].done > 0, timeout=30)
    link.cancel(1)
    await view.until(lambda: rows.rows[1].state == "failed", timeout=30)
    stopped_at = rows.rows[1].done
    assert rows.rows[1].note == "cancelled" and 0 < stopped_at < (120 << 20)
    link.retry(1)
    await view.until(lambda: rows.rows[1].state == "done", timeout=60)
    row = rows.rows[1]
    assert (row.name, row.direction, row.done, row.total) == ("big.bin", "send", 120 << 20,
                                                              120 << 20)
    assert row.note.startswith("on the server for tom; ")     # resumed, not sent again
    assert row.note.endswith(" MB were there already")
    await threads.deferToThread(tom.expect, rb"big\.bin from gina is ready")
    await link.close()


@pytest_twisted.ensureDeferred
async def test_an_accepted_file_is_saved_where_chosen_and_a_cancelled_fetch_resumes(
        start, tmp_path):
    import re
    import subprocess
    import sys
    server = start()
    view = View()
    rows = Transfers(reactor.seconds, lambda key: view._wake())
    link = link_to(server.port, "gina", view, transfers=rows, downloads=str(tmp_path / "dl"))
    await view.until(said(view, "*** You are in lobby"))
    offered = tmp_path / "video.bin"
    offered.write_bytes(bytes(range(256)) * (120 << 12))          # 120 MiB
    push = subprocess.Popen([sys.executable, "-m", "tekcos.cli", "push", str(offered), "--to",
                             f"127.0.0.1:{server.port}", "--for", "gina", "--as", "tom", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await view.until(said(view, "tom offers you video.bin"), timeout=30)
    number = int(re.search(r"/accept (\d+)", view.lines[-1]).group(1))
    chosen = tmp_path / "mine" / "holiday.bin"
    chosen.parent.mkdir()
    link.accept(number, "video.bin", "tom", str(chosen))
    assert await threads.deferToThread(push.wait, 60) == 0, push.stderr.read()
    await view.until(lambda: rows.rows and next(iter(rows.rows.values())).done > 0, timeout=30)
    key = next(iter(rows.rows))
    link.cancel(key)
    await view.until(lambda: rows.rows[key].state == "failed", timeout=30)
    assert not chosen.exists()
    link.retry(key)
    await view.until(lambda: rows.rows[key].state == "done", timeout=60)
    assert rows.rows[key].name == "holiday.bin"
    assert rows.rows[key].note == f"saved as {chosen}"
    assert chosen.read_bytes() == offered.read_bytes()
    assert sorted(p.name for p in chosen.parent.iterdir()) == ["holiday.bin"]
    await link.close()


@pytest_twisted.ensureDeferred
async def test_a_refused_nick_is_handed_to_the_window_and_another_one_gets_in(start):
    server = start("--udp-port", "0")
    tom = await threads.deferToThread(User, server.port, "tom")
    view = View()
    link = link_to(server.port, "tom", view)
    await view.until(lambda: view.refusals)
    assert "tom" in view.refusals[0] and view.statuses[-1].startswith("nick refused")
    link.connect(f"127.0.0.1:{server.port}", "gina")
    await view.until(said(view, "*** You are in lobby"))
    await threads.deferToThread(tom.expect, b"gina joined")
    await link.close()


@pytest_twisted.ensureDeferred
async def test_an_unreachable_server_is_tried_again_with_growing_pauses():
    clock = task.Clock()
    view = View()
    link = link_to(free_port(), "gina", view, clock=clock)
    await view.until(lambda: "connecting again in" in "".join(view.statuses))
    assert view.statuses[-1].endswith(f"connecting again in {FIRST_RETRY:g} s")
    clock.advance(FIRST_RETRY)
    await view.until(lambda: view.statuses[-1].endswith("connecting again in 2 s"))
    clock.advance(2)
    await view.until(lambda: view.statuses[-1].endswith("connecting again in 4 s"))
    await link.close()
    assert not clock.getDelayedCalls()      # closing stopped the retries


def test_the_hop_runs_calls_from_another_thread_on_the_window_thread_in_order():
    hop = Hop()
    ran = []
    try:
        workers = [threading.Thread(target=lambda i=i: hop.post(ran.append, i)) for i in range(50)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert ran == []                     # nothing runs until the window's thread asks
        import select
        assert select.select([hop.read_fd], [], [], 1.0)[0]   # the window was woken
        hop.run_pending()
        assert sorted(ran) == list(range(50))
        assert not select.select([hop.read_fd], [], [], 0)[0]  # and is not woken again
        for i in range(3):
            hop.post(ran.append, 100 + i)
        hop.run_pending()
        assert ran[-3:] == [100, 101, 102]
    finally:
        hop.close()
