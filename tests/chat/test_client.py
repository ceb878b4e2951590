"""The chat client: its plain session logic, address parsing, and the real
command against a real server (pipe and terminal)."""
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import pytest_twisted

from tekcos.chat.client import ClientSession, parse_address
from tests.twistd import User, free_port

TEKCOS = [sys.executable, "-m", "tekcos.cli"]


def test_parse_address():
    assert parse_address("host") == ("host", 9000)
    assert parse_address("host:9100") == ("host", 9100)
    assert parse_address("[::1]:9100") == ("::1", 9100)
    assert parse_address("::1") == ("::1", 9000)
    for bad in ["host:0", "host:x", ":9000", "a:b:c", "[::1]x"]:
        with pytest.raises(ValueError):
            parse_address(bad)


def make_session(nick):
    shown, sent = [], []
    return ClientSession(shown.append, sent.append, nick), shown, sent


def test_session_holds_input_until_the_nick_is_accepted():
    s, shown, sent = make_session("bot")
    s.user_line("early")
    s.quit()
    assert sent == []
    s.server_line("*** Choose a nick (...)")
    assert sent == [b"bot\n"]
    s.server_line("*** You are in lobby (you are alone here).")
    assert sent == [b"bot\n", b"early\n", b"/quit\n"]   # LF: never offered telnet
    assert s.quitting and s.refusal is None
    assert shown[0] == "*** Choose a nick (...)"


def test_session_refused_nick_quits_without_sending_queued_lines():
    s, shown, sent = make_session("bot")
    s.user_line("never sent")
    s.server_line("*** Choose a nick:")
    s.server_line("*** Error: The nick bot is taken; choose another.")
    assert s.refusal == "The nick bot is taken; choose another."
    assert sent == [b"bot\n", b"/quit\n"]


def run_client(*args, input=b"", timeout=30):
    return subprocess.run(TEKCOS + ["chat", *args], input=input, capture_output=True,
                          timeout=timeout)


def test_pipe_mode_sends_lines_prints_replies_and_exits_zero(start):
    server = start()
    watcher = User(server.port, "watcher")
    result = run_client(f"127.0.0.1:{server.port}", "--nick", "script",
                        input=b"hello from a script\n/who\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "<script> hello from a script" in out
    assert "*** lobby (2): watcher" in out
    watcher.expect(rb"<script> hello from a script")
    watcher.expect(rb"-- script has quit \(quit\)")


def test_taken_nick_exits_one_with_the_reason(start):
    server = start()
    holder = User(server.port, "taken")  # noqa: F841 (keeps the nick)
    result = run_client(f"127.0.0.1:{server.port}", "--nick", "TAKEN", input=b"x\n")
    assert result.returncode == 1
    assert b"nick refused: The nick TAKEN is taken" in result.stderr


def test_unreachable_and_gone_servers_exit_three(start):
    result = run_client(f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert result.stderr.decode().startswith("tekcos chat: cannot connect to 127.0.0.1:")
    server = start()
    other = User(server.port, "other")
    proc = subprocess.Popen(TEKCOS + ["chat", f"127.0.0.1:{server.port}", "--nick", "z"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    other.expect(rb"-- z joined lobby")   # the client is in before the server stops
    server.stop()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert b"Server shutting down" in out
    assert b"closed the connection" in err


@pytest.mark.slow   # tekcos chat processes
def test_usage_errors_exit_two_with_the_reason():
    result = run_client("host:notaport")
    assert result.returncode == 2
    assert result.stderr == b"tekcos chat: bad port in 'host:notaport'\n"
    result = run_client("host", "--nick", "bad nick")
    assert result.returncode == 2
    assert result.stderr.startswith(b"tekcos chat: --nick: ") and result.stderr.count(b"\n") == 1


def read_pty(fd, until: bytes, timeout=10) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while until not in got:
        r, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        if not r:
            raise AssertionError(f"{until!r} not shown; screen got {got[-300:]!r}")
        got += os.read(fd, 65536)
    return got


class Screen:
    """``tekcos chat`` in a pseudo-terminal, read through a terminal emulator
    (pyte), so that tests see what a person sees."""

    def __init__(self, argv, columns=80, lines=24):
        import pyte
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        import fcntl
        import struct
        import termios
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        # A real terminal answers prompt_toolkit's cursor position requests;
        # this one does not, so it is told not to ask.
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, env=env)
        os.close(slave)
        self.fd = master

    def text(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def expect(self, wanted, timeout=15) -> list[str]:
        """Read until ``wanted(lines)`` is true (or a string is on screen)."""
        check = wanted if callable(wanted) else (lambda lines: any(wanted in l for l in lines))
        deadline = time.monotonic() + timeout
        while not check(self.text()):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"{wanted!r} not on screen:\n" + "\n".join(self.text()))
            try:
                self.stream.feed(os.read(self.fd, 65536))
            except OSError:
                raise AssertionError("the program ended:\n" + "\n".join(self.text()))
        return self.text()

    def type(self, keys: bytes | str) -> None:
        os.write(self.fd, keys.encode() if isinstance(keys, str) else keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.fd)


def _prompt(lines) -> str:
    """The last non-empty line: the prompt with what is typed."""
    return [line for line in lines if line][-1]


def test_terminal_mode_keeps_the_typed_line_while_messages_arrive(start):
    server = start()
    friend = User(server.port, "friend")
    term = Screen(TEKCOS + ["chat", f"127.0.0.1:{server.port}", "--nick", "tty"])
    try:
        term.expect("You are in lobby")
        term.type("half typed 한")
        term.expect(lambda lines: _prompt(lines) == "> half typed 한")
        friend.send(b"interrupting\n")
        # The message is above; the half-typed line is still there, below it.
        lines = term.expect(lambda lines: any("<friend> interrupting" in line for line in lines)
                            and _prompt(lines) == "> half typed 한")
        assert lines.index(next(l for l in lines if "<friend> interrupting" in l)) < \
            lines.index("> half typed 한")
        term.type(" line\r")
        friend.expect("<tty> half typed 한 line".encode())
        term.expect(lambda lines: any(l.endswith("<tty> half typed 한 line") for l in lines)
                    and _prompt(lines) == ">")
        term.type("\x04")                 # Ctrl-D on an empty line quits cleanly
        assert term.proc.wait(timeout=10) == 0
        friend.expect(rb"-- tty has quit \(quit\)")
    finally:
        term.close()


def test_terminal_history_nick_completion_and_ctrl_c(start):
    server = start()
    friend = User(server.port, "frieda")
    term = Screen(TEKCOS + ["chat", f"127.0.0.1:{server.port}", "--nick", "tty"])
    try:
        term.expect("You are in lobby")
        friend.send(b"hi tty\n")
        term.expect("<frieda> hi tty")
        term.type("fri\t")                           # Tab: the nick, as at a line start
        term.expect(lambda lines: _prompt(lines) == "> frieda:")
        term.type("first\r")
        friend.expect(rb"<tty> frieda: first\r\n")
        term.type("\x1b[A")                          # Up: the line again
        term.expect(lambda lines: _prompt(lines) == "> frieda: first")
        term.type("\r")
        friend.expect(rb"<tty> frieda: first\r\n")
        term.type("never sent")
        term.expect(lambda lines: _prompt(lines) == "> never sent")
        term.type("\x03")                            # Ctrl-C: the line goes, tty stays
        term.expect(lambda lines: _prompt(lines) == ">")
        term.type("after\r")
        seen = friend.expect(rb"<tty> after\r\n")
        assert b"never sent" not in seen
        # (once the next prompt is up: between two prompts the terminal is
        # briefly the kernel's, where Ctrl-C is a signal)
        term.expect(lambda lines: any(l.endswith("<tty> after") for l in lines)
                    and _prompt(lines) == ">")
        term.type("\x03")                            # Ctrl-C on an empty line: quit
        assert term.proc.wait(timeout=10) == 0
        friend.expect(rb"-- tty has quit \(quit\)")
    finally:
        term.close()


READY_LINE = rb"is ready: tekcos get \S+ --from \S+"


def _read_until(stream, pattern: bytes, timeout: float = 30) -> bytes:
    """What ``stream`` (a pipe) says until ``pattern`` matches; read
    unbuffered, so that select() sees all there is."""
    import re
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([stream], [], [], left)[0], seen[-500:]
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, seen[-500:]
        seen += chunk
    return seen


def test_accept_in_tekcos_chat_fetches_the_file_by_itself(start, tmp_path):
    import re
    server = start()
    bob = subprocess.Popen(TEKCOS + ["chat", f"127.0.0.1:{server.port}", "--nick", "bob",
                                     "--downloads", str(tmp_path / "got")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    _read_until(bob.stdout, rb"You are in lobby")
    data = os.urandom(1_000_000)
    (tmp_path / "notes.pdf").write_bytes(data)
    push = subprocess.Popen(TEKCOS + ["push", str(tmp_path / "notes.pdf"), "--to",
                                      f"127.0.0.1:{server.port}", "--for", "bob", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    offered = _read_until(bob.stdout, rb"/accept \d+ or /decline")
    number = re.search(rb"/accept (\d+) or", offered).group(1)
    bob.stdin.write(b"/accept " + number + b"\n")
    bob.stdin.flush()
    _read_until(bob.stdout, rb"received, 1000000 bytes .*SHA-256 verified")
    assert (tmp_path / "got" / "notes.pdf").read_bytes() == data
    bob.stdin.close()
    assert bob.wait(timeout=30) == 0
    assert push.wait(timeout=30) == 0


def test_send_in_tekcos_chat_asks_the_person_and_reports(start, tmp_path):
    import re
    server = start()
    bob = User(server.port, "bob")
    (tmp_path / "photo.jpg").write_bytes(os.urandom(300_000))
    alice = subprocess.Popen(TEKCOS + ["chat", f"127.0.0.1:{server.port}", "--nick", "alice"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    _read_until(alice.stdout, rb"You are in lobby")
    alice.stdin.write(f"/send bob {tmp_path / 'photo.jpg'}\n/send bob\n".encode())
    alice.stdin.flush()
    said = _read_until(alice.stdout, rb"usage: /send NICK FILE")
    assert b"*** sending photo.jpg to bob: waiting for bob to accept" in said
    offered = bob.expect(rb"alice offers you photo\.jpg \(300\.0 KB\)\. /accept (\d+)")
    number = re.search(rb"/accept (\d+)", offered).group(1)
    bob.send(b"/accept " + number + b"\r\n")
    bob.expect(READY_LINE)
    said = _read_until(alice.stdout, rb"photo\.jpg: on the server for bob")
    assert b"*** bob accepted photo.jpg" in said
    alice.stdin.close()
    assert alice.wait(timeout=30) == 0


class _Silent:
    """A server that takes the first ``silent`` connections and never says a
    word (as after a lost SYN-cookie ACK), then greets as the real one."""

    def __init__(self, factory, silent: int):
        from twisted.internet.protocol import Protocol
        self.factory, self.silent, self.seen = factory, silent, 0
        self.quiet = Protocol

    def buildProtocol(self, addr):
        self.seen += 1
        if self.seen <= self.silent:
            return self.quiet()
        return self.factory.buildProtocol(addr)

    def doStart(self):
        pass

    def doStop(self):
        pass


def _chat_against(silent: int, monkeypatch):
    import io

    from twisted.internet import reactor

    from tekcos.chat import client
    from tekcos.chat.hub import Hub
    from tekcos.chat.server import ChatFactory
    from tekcos.chat.session import SessionConfig
    monkeypatch.setattr(client, "GREETING_TIMEOUT", 0.2)
    factory = ChatFactory(Hub(reactor.seconds), SessionConfig(), clock=reactor)
    front = _Silent(factory, silent)
    port = reactor.listenTCP(0, front, interface="127.0.0.1")
    read_end, write_end = os.pipe()
    os.write(write_end, b"/quit\n")
    os.close(write_end)
    out = io.BytesIO()
    out.fileno = lambda: 1
    d = client.chat(reactor, f"127.0.0.1:{port.getHost().port}", "bot", stdin_fd=read_end,
                    stdout=out, tty=False)

    def cleanup(result):
        os.close(read_end)
        port.stopListening()
        return result
    return d.addBoth(cleanup), out, front


@pytest_twisted.ensureDeferred
async def test_no_greeting_within_five_seconds_means_connect_again(monkeypatch):
    d, out, front = _chat_against(1, monkeypatch)
    assert await d == 0
    text = out.getvalue().decode()
    assert "*** No greeting from 127.0.0.1:" in text and "connecting again." in text
    assert "*** You are in lobby" in text and front.seen == 2


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_greets_is_given_up_on_with_exit_three(monkeypatch):
    from tekcos.chat.client import GREETING_TRIES, ChatFailure
    d, out, front = _chat_against(10, monkeypatch)
    with pytest.raises(ChatFailure) as failure:
        await d
    assert failure.value.code == 3 and "no greeting from 127.0.0.1:" in str(failure.value)
    assert front.seen == GREETING_TRIES
