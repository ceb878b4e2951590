"""The real ``twistd tekcos`` on loopback, spoken to with plain sockets."""
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

HOST = "127.0.0.1"
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args: str, downloads: str | None = None):
        self.port = free_port()
        self.downloads = downloads or tempfile.mkdtemp(prefix="tekcos-dl-")
        # The log goes to a file: a pipe nobody reads would fill and block the server.
        self.log = tempfile.NamedTemporaryFile(prefix="tekcos-log-", suffix=".txt")
        self.proc = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "-l", "-", "tekcos", "--port", str(self.port),
                      "--downloads", self.downloads, *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(open(self.log.name).read())
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> tuple[int, str]:
        """SIGTERM; twistd re-raises the signal after a clean shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        with open(self.log.name, errors="replace") as f:
            return self.proc.returncode, f.read()


CLEAN_EXIT = (0, -signal.SIGTERM)


@pytest.fixture
def start():
    servers = []

    def starter(*args, **kwargs):
        server = Server(*args, **kwargs)
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.stop()


class User:
    def __init__(self, port: int, nick: str | None = None, rcvbuf: int | None = None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((HOST, port))
        self.sock.settimeout(10)
        self.buffer = b""
        self.expect(b"Choose a nick")
        if nick:
            self.send(nick.encode() + b"\r\n")
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
        while self.buffer.count(token) < count:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise AssertionError(f"{token!r} seen {self.buffer.count(token)} times, "
                                     f"wanted {count}")
            if not chunk:
                raise AssertionError("closed")
            self.buffer += chunk
        end = 0
        for _ in range(count):
            end = self.buffer.index(token, end) + len(token)
        end = self.buffer.index(b"\n", end) + 1
        seen, self.buffer = self.buffer[:end], self.buffer[end:]
        return seen

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


def test_chat_between_clients_with_crlf_lf_iac_and_bad_utf8(start):
    server = start()
    alice, bob, carol = User(server.port, "alice"), User(server.port, "bob"), User(server.port, "carol")
    bob.send(b"from bob with CRLF\r\n")
    alice.expect(rb"<bob> from bob with CRLF\r\n")
    carol.send(b"from carol \xff\xf4with LF\xff\xfd\x06\n")
    alice.expect(rb"<carol> from carol with LF\r\n")
    carol.send("안녕 ".encode() + b"\xe9\n")
    alice.expect("<carol> 안녕 \ufffd\r\n".encode())
    carol.expect(rb"not valid utf-8")
    bob.send(b"/quit\r\n")
    alice.expect(rb"-- bob has quit \(quit\)")
    assert bob.closed()


def test_over_long_line_and_flooder_hurt_only_themselves(start):
    server = start("--max-line", "512", "--rate", "5", "--burst", "10")
    alice, flooder = User(server.port, "alice"), User(server.port, "flood")
    flooder.send(b"x" * 5000 + b"\n")
    flooder.expect(rb"line too long \(over 512 bytes\)")
    flooder.send(b"".join(b"spam %d\n" % i for i in range(200)))
    flooder.expect(rb"Slow down")
    time.sleep(0.5)
    alice.send(b"still talking\n")
    seen = alice.expect(rb"<alice> still talking")
    spam = re.findall(rb"<flood> spam", seen)
    assert 5 <= len(spam) <= 13  # the burst and a little refill, not 200
    assert b"xxxx" not in seen


def test_client_that_stops_reading_is_dropped_while_others_chat(start):
    server = start("--rate", "0", "--max-buffer", "262144")
    talker, listener = User(server.port, "talker"), User(server.port, "listener")
    stuck = User(server.port, "stuck", rcvbuf=4096)
    line = b"y" * 1000 + b"\n"
    # Enough to fill the stuck client's kernel buffers and then the cap.
    received = 0
    dropped = False
    for _ in range(40):
        talker.send(line * 500)
        seen = listener.expect_count(b"<talker> y", 500)
        received += seen.count(b"<talker>")
        if re.search(rb"-- stuck has quit \(not reading: output buffer full\)", seen):
            dropped = True
            break
    if not dropped:
        listener.expect(rb"-- stuck has quit \(not reading: output buffer full\)", timeout=30)
    talker.send(b"after\n")
    listener.expect(rb"<talker> after")
    assert received >= 500
    stuck.sock.close()


def test_keepalive_is_on_and_sigterm_says_goodbye(start):
    server = start()
    alice, bob = User(server.port, "alice"), User(server.port, "bob")
    if shutil.which("ss") or os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
        # (CI installs iproute2, so there this check always runs.)
        # The timer column shows "keepalive" once no data is in flight.
        for _ in range(50):
            out = subprocess.run(["ss", "-tnoH", "state", "established",
                                  f"( sport = :{server.port} )"],
                                 capture_output=True, text=True).stdout
            if out.count("keepalive") == 2:
                break
            time.sleep(0.1)
        assert out.count("keepalive") == 2, out
    code, log = server.stop()
    alice.expect(rb"\*\*\* Server shutting down\. Bye\.")
    bob.expect(rb"\*\*\* Server shutting down\. Bye\.")
    assert alice.closed() and bob.closed()
    assert code in CLEAN_EXIT and "Server Shut Down." in log
    assert "Traceback" not in log
    assert "alice" in log and "connect from" in log


def test_client_mistakes_never_log_a_traceback(start):
    server = start("--max-line", "128")
    user = User(server.port, "alice")
    user.send(b"\xff\xfa" + b"\x00" * 100)       # unterminated telnet subnegotiation
    user.send(b"\xff\xf0\n/join ../..\n/charset rot13\n/msg\n/history -5\n" + b"\x80" * 300 + b"\n")
    user.expect(rb"line too long")
    user.send(b"\x00\x01\x02\n")
    user.sock.close()
    code, log = server.stop()
    assert code in CLEAN_EXIT and "Server Shut Down." in log
    assert "Traceback" not in log and "Unhandled" not in log
