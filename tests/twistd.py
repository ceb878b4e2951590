"""Real processes for integration tests: ``twistd tekcos`` on loopback or in
a namespace, a plain-socket chat user, and waiting for a condition with a
deadline (never a fixed sleep as synchronisation)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest


def wait_until(condition, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``condition()`` until it returns something true; return that.
    Fails the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


HOST = "127.0.0.1"
# The checkout: subprocesses run from here so that they import the code under test.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _named_ports(args) -> set[int]:
    """The ports of the ``tcp:N...`` and ``ssl:N...`` endpoints in ``args``."""
    return {int(p) for a in args for p in re.findall(r"^(?:tcp|ssl):(\d+)", str(a))}


class TwistdServer:
    """``twistd -n tekcos`` on a free loopback port, logging to a temporary file."""

    def __init__(self, *args: str, downloads: str | None = None, prefix: tuple = ()):
        """``prefix``: a command that runs twistd (for example in a mount
        namespace of the test's own)."""
        # A downloads directory of its own is removed by stop(), and so is
        # the state directory (the database), unless the test names one.
        self._own_downloads = downloads is None
        self.downloads = downloads or tempfile.mkdtemp(prefix="tekcos-dl-")
        self.state_dir = None
        if "--state-dir" not in args:
            self.state_dir = tempfile.mkdtemp(prefix="tekcos-state-")
            args = (*args, "--state-dir", self.state_dir)
        # A free port can be taken by someone else before twistd binds it
        # (the machine may be busy with thousands of connections): then try
        # another one.
        named = _named_ports(args)
        for attempt in range(5):
            self.port = free_port()
            if self.port in named:
                continue
            if self._started(args, prefix):
                return
        raise RuntimeError("server did not start: " + open(self.log.name).read()[-2000:])

    def _started(self, args, prefix) -> bool:
        # The log goes to a file: a pipe nobody reads would fill and block the server.
        self.log = tempfile.NamedTemporaryFile(prefix="tekcos-log-", suffix=".txt")
        self.proc = subprocess.Popen(
            [*prefix, *TWISTD, "-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port", str(self.port),
             "--downloads", self.downloads, *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self._others_listening(args, deadline)
            except OSError:
                if self.proc.poll() is not None:
                    text = open(self.log.name).read()
                    if "Address already in use" in text:
                        return False
                    raise RuntimeError(text)
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("server did not start: " + open(self.log.name).read()[-2000:])

    def _others_listening(self, args, deadline) -> bool:
        """Wait for the other loopback ports named in ``args`` (``--web
        tcp:N:...``, ``--tls-port``...) too: a test that connects to one of
        them before twistd has bound it, or after twistd has failed to,
        would otherwise see a refusal or a reset instead of the log."""
        for port in sorted(_named_ports(args) - {0}):
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=0.5).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.proc.kill()
                        raise RuntimeError(f"port {port} never listened: "
                                           + open(self.log.name).read()[-2000:])
                    time.sleep(0.05)
        return True

    def stop(self) -> tuple[int, str]:
        """SIGTERM; twistd re-raises the signal after a clean shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        with open(self.log.name, errors="replace") as f:
            text = f.read()
        if self._own_downloads:
            shutil.rmtree(self.downloads, ignore_errors=True)
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return self.proc.returncode, text


CLEAN_EXIT = (0, -signal.SIGTERM)


class User:
    def __init__(self, port: int, nick: str | None = None, rcvbuf: int | None = None,
                 host: str = HOST):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        self.sock.settimeout(10)
        self.buffer = b""
        self.expect(b"Choose a nick")
        if nick:
            # LF, as nc and scripts send (a first line in CR LF is telnet's).
            self.send(nick.encode() + b"\n")
            self.expect(b"You are in lobby")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def expect(self, pattern: bytes, timeout: float = 10) -> bytes:
        """Read until ``pattern`` (a regex) matches; return and consume up to it."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.buffer)
            if m:
                seen, self.buffer = self.buffer[:m.end()], self.buffer[m.end():]
                return seen
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"{pattern!r} not received; got {self.buffer[-500:]!r}")
            if not chunk:
                raise AssertionError(f"closed before {pattern!r}; got {self.buffer[-500:]!r}")
            self.buffer += chunk

    def expect_count(self, token: bytes, count: int, timeout: float = 30) -> bytes:
        """Read until ``token`` has been seen ``count`` times; consume through
        the line of the last one."""
        deadline = time.monotonic() + timeout
        while not self._line_of(token, count):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise AssertionError(f"{token!r} seen {self.buffer.count(token)} times, "
                                     f"wanted {count}")
            if not chunk:
                raise AssertionError("closed")
            self.buffer += chunk
        end = self._line_of(token, count)
        seen, self.buffer = self.buffer[:end], self.buffer[end:]
        return seen

    def _line_of(self, token: bytes, count: int) -> int:
        """The end of the line holding the ``count``-th ``token``, once that
        whole line has arrived (a read can stop in the middle of it); else 0."""
        if self.buffer.count(token) < count:
            return 0
        end = 0
        for _ in range(count):
            end = self.buffer.index(token, end) + len(token)
        return self.buffer.find(b"\n", end) + 1

    def closed(self, timeout: float = 10) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def serve_in(lab, ns: str, downloads, port: int = 9000, log=None, prefix: tuple = (),
             args: tuple = ()):
    """Start ``twistd tekcos`` inside namespace ``ns``; return once UDP and
    TCP ``port`` are listening there.  ``prefix``: a command that runs twistd."""
    # The database goes beside the downloads directory (both in the test's tmp_path).
    state = f"{downloads}-state"
    proc = lab.popen(ns, [*prefix, *TWISTD, "-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns",
                          "--port", str(port), "--downloads", str(downloads),
                          "--state-dir", state, *args],
                     stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=REPO)
    wait_until(lambda: lab.exec(ns, "ss", "-Hulnt").count(f":{port} ") >= 2 or
               (proc.poll() is not None and pytest.fail("server exited")),
               interval=0.1, what=f"twistd tekcos listening in {ns}")
    return proc
