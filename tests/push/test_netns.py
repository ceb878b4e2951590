"""Pushes across two network namespaces joined by a veth pair, with nftables
dropping a share of the UDP frames in both directions.

Needs root and iproute2/nftables.  Skipped where they are missing, except
under TEKCOS_REQUIRE_NETNS=1 (CI), where that is a failure.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.twistd import REPO, serve_in


@pytest.mark.parametrize("loss", [5, 20])
def test_file_arrives_intact_through_loss(lab, tmp_path, loss):
    client, server = lab.ns("a"), lab.ns("b")
    dev_a, dev_b = lab.link(client, "10.77.0.1/24", server, "10.77.0.2/24")
    lab.drop_udp(client, dev_a, loss)
    lab.drop_udp(server, dev_b, loss)
    downloads = tmp_path / "dl"
    with open(tmp_path / "server.log", "w") as log:
        serve_in(lab, server, downloads, log=log)
    src = tmp_path / "data.bin"
    data = os.urandom(4_000_000)
    src.write_bytes(data)
    result = subprocess.run(
        ["ip", "netns", "exec", client, sys.executable, "-m", "tekcos.cli", "push", str(src),
         "--to", "10.77.0.2:9000", "--json", "--timeout", "20"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["status"] == "delivered"
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert (downloads / "data.bin").read_bytes() == data
    # The loss really happened to the data (about 2,900 datagrams; the few
    # dozen ACKs going back may see none), and was repaired.
    dropped_b, _ = lab.dropped(server)
    assert dropped_b > 0
    assert record["retransmits"] >= dropped_b * 0.5
