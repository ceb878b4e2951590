"""Helpers shared by the benchmark scripts (run them as ``python bench/X.py``)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The helpers the tests and the benchmarks share live once, in tests/ (a free
# loopback port, the namespace lab, the in-memory chat server); this module
# is the benchmarks' one way to them.
sys.path.insert(0, ROOT)
from tests import netlab  # noqa: E402,F401
from tests.memory import Server  # noqa: E402,F401
from tests.twistd import HOST, free_port  # noqa: E402,F401
# The last revision before this round's work on the chat and pushes: the
# default baseline of the benchmarks that compare revisions.
BEFORE_ROUND = "97836ff"


def file_bench_args(doc: str, mib: int = 200):
    """The options of a benchmark that pushes one file: ``--mib`` and
    ``--baseline REV`` (default: the revision before this round, or 'none')."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--mib", type=int, default=mib)
    parser.add_argument("--baseline", default=BEFORE_ROUND,
                        help=f"git revision to compare with ({BEFORE_ROUND}), or 'none'")
    return parser.parse_args()


@contextmanager
def random_file(mib: int):
    """A temporary file of ``mib`` MiB of random bytes: (path, SHA-256)."""
    import hashlib
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(prefix="tekcos-bench-", suffix=".bin") as f:
        for _ in range(mib):
            block = os.urandom(1 << 20)
            f.write(block)
            digest.update(block)
        f.flush()
        yield f.name, digest.hexdigest()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def allow_open_files(need: int, what: str) -> None:
    """Raise this process's open-file limit to ``need`` (root may raise the
    hard limit too), or stop with one line saying what does not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, need), max(hard, need)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if need > hard:
            raise SystemExit(f"{what} needs {need} open files; the limit is {hard}")


@contextmanager
def checkout(rev: str):
    """A temporary checkout of ``rev`` (a git worktree), removed afterwards."""
    path = tempfile.mkdtemp(prefix="tekcos-baseline-")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", path, rev],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", path],
                       capture_output=True)


def port_below_ephemeral() -> int:
    """A free port below the ephemeral range: a thousand clients connecting
    hold ephemeral ports, and one of them could take the port the restarted
    server must listen on again."""
    import random
    import socket
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET6) as probe:
            try:
                probe.bind(("::", port))
                return port
            except OSError:
                continue
