"""The Transfers panel's rows and the Find servers list, without a display."""
from __future__ import annotations

from tekcos.gui.transfers import ServerList, Transfers, human_bytes, human_seconds


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_row_shows_progress_rate_time_left_and_outcome():
    clock = Clock()
    changed = []
    rows = Transfers(clock, changed.append)
    rows.started(1, "report.pdf", "send", "tom")
    rows.moved(1, 0, 10_000_000, "waiting for tom to accept")
    assert rows.rows[1].outcome == "waiting for tom to accept" and rows.rows[1].eta == ""
    clock.now += 1
    rows.moved(1, 2_000_000, 10_000_000)
    row = rows.rows[1]
    assert row.rate == 2_000_000 and row.progress == "20% of 10.0 MB" and row.eta == "4 s"
    clock.now += 1
    rows.moved(1, 3_000_000, 10_000_000)      # slower: the rate follows, smoothed
    assert 1_000_000 < row.rate < 2_000_000
    rows.ended(1, True, "on the server for tom")
    assert row.outcome == "✓ on the server for tom" and row.done == row.total and row.eta == ""
    assert changed == [1, 1, 1, 1, 1]


def test_a_retried_row_starts_again_where_it_was_and_finished_rows_clear():
    clock = Clock()
    rows = Transfers(clock)
    rows.started(1, "a", "get", "lab:9000")
    rows.moved(1, 500, 1000)
    rows.ended(1, False, "the server stopped sending")
    assert rows.rows[1].outcome == "✗ the server stopped sending"
    rows.started(1, "a", "get", "lab:9000")
    assert rows.rows[1].state == "running" and rows.rows[1].done == 500
    rows.started(2, "CODE", "get", "lab:9000")
    rows.ended(2, True, "saved in /home/gina/Downloads", "b.pdf", 4000)
    assert (rows.rows[2].name, rows.rows[2].progress) == ("b.pdf", "100% of 4.0 KB")
    assert rows.remove_finished() == [2] and list(rows.rows) == [1]
    rows.moved(99, 1, 1)                       # an unknown key is ignored
    rows.ended(99, True, "")


def test_human_sizes_and_times():
    assert [human_bytes(n) for n in (5, 1500, 2_500_000, 7e12)] == \
        ["5 B", "1.5 KB", "2.5 MB", "7000.0 GB"]
    assert [human_seconds(s) for s in (4.4, 75, 3725)] == ["4 s", "1:15", "1 h 02 min"]


def test_servers_are_listed_once_per_address_with_a_sane_port_and_name():
    servers = ServerList(9000)
    servers.heard("10.0.0.5", {"server": "lab-b", "version": "0.1.0", "chat_port": 9100})
    servers.heard("10.0.0.5", {"server": "lab-b", "version": "0.1.0", "chat_port": 9100})
    servers.heard("10.0.0.2", {"server": "Lab-a" + "x" * 100, "chat_port": "9000; rm"})
    servers.heard("fe80::1%eth0", {"server": "v6"})
    listed = servers.sorted()
    assert [s.address for s in listed] == ["10.0.0.2:9000", "10.0.0.5:9100",
                                           "[fe80::1%eth0]:9000"]
    assert len(listed[0].name) == 64 and listed[0].version == "?"
