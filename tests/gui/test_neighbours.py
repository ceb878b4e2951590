"""The Neighbours table: read back from the server's /neighbors lines,
made from a scan report, sorted by any column."""
from __future__ import annotations

from tekcos.gui.neighbours import MAX_ROWS, TableReader, from_report, sorted_rows
from tekcos.scan.report import table

REPORT = {
    "interface": "eth0", "address": "10.0.0.2", "network": "10.0.0.0/24", "gateway": None,
    "elapsed_s": 0.8, "probes": 254,
    "neighbors": [
        {"ip": "10.0.0.10", "mac": "00:11:22:33:44:55", "macs": ["00:11:22:33:44:55"],
         "vendor": "Raspberry Pi Trading Ltd", "local_admin": False, "rtt_ms": 12.5,
         "conflict": False, "tekcos": True},
        {"ip": "10.0.0.9", "mac": "02:00:00:00:00:01", "macs": ["02:00:00:00:00:01",
                                                             "02:00:00:00:00:02"],
         "vendor": None, "local_admin": True, "rtt_ms": None, "conflict": True,
         "tekcos": None},
        {"ip": "10.0.0.100", "mac": "a4:5e:60:00:00:01", "macs": ["a4:5e:60:00:00:01"],
         "vendor": "Apple, Inc.", "local_admin": False, "rtt_ms": 3.25, "conflict": False,
         "tekcos": None},
    ],
}


def server_lines(report):
    return ["*** " + line for line in table(report).splitlines()]


def test_the_servers_table_reads_back_as_the_reports_rows():
    reader = TableReader()
    results = [reader.feed(line) for line in ["[10:00] <tom> hi", *server_lines(REPORT)]]
    assert results[:-1] == [None] * (len(results) - 1)
    rows, summary = results[-1]
    assert rows == from_report(REPORT)
    assert summary.startswith("3 hosts on 10.0.0.0/24 via eth0") and "1 address conflict" in summary
    pi = rows[0]
    assert (pi.ip, pi.mac, pi.vendor, pi.rtt, pi.flags) == (
        "10.0.0.10", "00:11:22:33:44:55", "Raspberry Pi Trading Ltd", "12.5 ms", "tekcos")
    assert rows[1].vendor == "" and rows[1].rtt == ""
    assert rows[1].flags == "CONFLICT: 02:00:00:00:00:01 02:00:00:00:00:02, local-admin"


def test_a_table_cut_by_another_line_is_dropped_and_no_scan_yields_nothing():
    reader = TableReader()
    lines = server_lines(REPORT)
    assert reader.feed(lines[0]) is None and reader.feed("[10:00] <tom> interrupting") is None
    assert all(reader.feed(line) is None for line in lines[1:])
    assert reader.feed("*** No scan yet. /scan runs one (operators only).") is None


def test_a_hostile_servers_endless_table_is_bounded():
    reader = TableReader()
    reader.feed(server_lines(REPORT)[0])
    for i in range(MAX_ROWS + 10):
        reader.feed(f"*** 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}  junk")
    rows, _ = reader.feed("*** 9 hosts on 10.0.0.0/8 via x (y) in 1.00 s, 1 probes")
    assert len(rows) == MAX_ROWS


def test_rows_sort_by_address_as_numbers_and_by_round_trip_with_unknown_last():
    rows = from_report(REPORT)
    assert [r.ip for r in sorted_rows(rows, "ip")] == ["10.0.0.9", "10.0.0.10", "10.0.0.100"]
    assert [r.ip for r in sorted_rows(rows, "ip", descending=True)] == \
        ["10.0.0.100", "10.0.0.10", "10.0.0.9"]
    assert [r.rtt for r in sorted_rows(rows, "rtt")] == ["3.2 ms", "12.5 ms", ""]
    assert [r.vendor for r in sorted_rows(rows, "vendor")] == \
        ["", "Apple, Inc.", "Raspberry Pi Trading Ltd"]


def test_ipv6_addresses_under_a_row_are_that_rows_and_ipv6_only_devices_are_rows():
    report = {**REPORT, "ipv6": {"probes": 6, "problem": None, "not_kept": 0}, "neighbors": [
        {**REPORT["neighbors"][0], "ipv6": [
            {"address": "fe80::211:22ff:fe33:4455", "scope": "link-local", "kind": "eui64",
             "rtt_ms": 1.0, "seen": "echo"},
            {"address": "fd00::10", "scope": "unique-local", "kind": "opaque", "rtt_ms": 1.0,
             "seen": "echo"}]},
        {"ip": None, "mac": "02:00:00:00:00:77", "macs": ["02:00:00:00:00:77"], "vendor": None,
         "local_admin": True, "rtt_ms": 2.0, "conflict": False, "tekcos": None,
         "ipv6": [{"address": "fe80::77", "scope": "link-local", "kind": "opaque",
                   "rtt_ms": 2.0, "seen": "mld"}]}]}
    reader = TableReader()
    results = [reader.feed(line) for line in server_lines(report)]
    rows, summary = results[-1]
    assert rows == from_report(report)
    assert [(r.ip, r.ipv6) for r in rows] == [
        ("10.0.0.10", "fe80::211:22ff:fe33:4455 fd00::10"), ("", "fe80::77")]
    assert summary.endswith("; 2 with IPv6")
