"""The real ``twistd tekcos`` on loopback, spoken to with plain sockets."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.twistd import CLEAN_EXIT, User, wait_until


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
    server = start("--max-line", "512", "--rate", "50", "--burst", "10", "--paste-lines", "40")
    alice, flooder = User(server.port, "alice"), User(server.port, "flood")
    flooder.send(b"x" * 5000 + b"\n")
    flooder.expect(rb"line too long \(over 512 bytes\)")
    flooder.send(b"".join(b"spam %d\n" % i for i in range(200)))
    flooder.expect(rb"Pacing your lines")
    flooder.expect(rb"Too much at once")
    # The burst and the 40 waiting lines arrive, paced and in order; the
    # rest is dropped and counted once the waiting lines have gone out.
    told = flooder.expect(rb"(\d+) line\(s\) were dropped: too many were waiting")
    dropped = int(re.search(rb"(\d+) line\(s\) were dropped", told).group(1))
    alice.send(b"still talking\n")
    seen = alice.expect(rb"<alice> still talking")
    spam = [int(n) for n in re.findall(rb"<flood> spam (\d+)", seen)]
    assert spam == list(range(len(spam))) and 49 <= len(spam) <= 60
    assert dropped == 200 - len(spam)
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
    # ss comes with iproute2 (installed by .ci/run); without it this check
    # cannot run, and that is a failure, not a skip.
    assert shutil.which("ss"), "ss (Debian's iproute2) is needed: apt-get install iproute2"
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
    # The IRC users' commands with odd arguments, and telnet answering the
    # BINARY offer with garbage and in loops.
    other = User(server.port, "other")
    for line in ["/kick", "/kick other \x1b[2J", "/ban alice", "/mode +i +o", "/invite",
                 "/whois " + "x" * 3000, "/ignore \u3164", "/away " + "y" * 500, "/kill other",
                 "/wall", "/op", "/unban", "/names " + "../" * 10, "/help /kick extra"]:
        other.send(line.encode() + b"\n")
    other.send(b"\xff\xfd\x00\xff\xfb\x00" * 40 + b"\xff\xfe\x00\xff\xfc\x00" * 40 + b"\n")
    other.send(b"\xff\xfa\x00" + b"\x00" * 5000 + b"\n/quit\n")
    other.expect(rb"Bye|too many telnet commands", timeout=10)
    user.sock.close()
    code, log = server.stop()
    assert code in CLEAN_EXIT and "Server Shut Down." in log
    assert "Traceback" not in log and "Unhandled" not in log


class Terminal:
    """A real program in a pseudo-terminal: what a person sees, and keys."""

    def __init__(self, argv):
        import pty
        self.pid, self.fd = pty.fork()
        if self.pid == 0:   # the child: become the program
            os.execvp(argv[0], argv)
        self.screen = b""

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def expect(self, text: bytes, timeout: float = 20) -> None:
        import select
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not shown; screen: {self.screen[-400:]!r}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.screen += os.read(self.fd, 65536)
                except OSError:   # the program ended
                    raise AssertionError(f"{text!r} not shown before the program ended; "
                                         f"screen: {self.screen[-400:]!r}")

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail(f"{program} is not installed (CI installs it in .ci/run)")
        pytest.skip(f"{program} is not installed")
    return path


def test_ctrl_c_in_debian_telnet_then_the_user_still_sees_the_room(start):
    server = start()
    term = Terminal([need("telnet"), "127.0.0.1", str(server.port)])
    try:
        term.expect(b"Choose a nick")
        term.type(b"tel\r")
        term.expect(b"You are in lobby")
        other = User(server.port, "other")
        other.send(b"before\r\n")
        term.expect(b"<other> before")
        # Ctrl-C: telnet sends IAC IP, IAC DO TIMING-MARK and shows nothing
        # more until the server answers the timing mark (RFC 860).
        term.type(b"half typed\x03")
        term.expect(b"^C")
        term.type(b"still here\r")
        # Once the room has this line, the server has read the Ctrl-C before it.
        seen = other.expect(rb"<tel> [^\r]*\r\n")
        assert seen.endswith(b"<tel> still here\r\n")   # the half-typed line was dropped
        term.expect(b"<tel> still here")
        other.send(b"after the interrupt\r\n")
        term.expect(b"<other> after the interrupt")
    finally:
        term.close()
    code, log = server.stop()
    assert "Traceback" not in log


def test_a_character_mode_client_is_echoed_and_edited_by_the_server(start):
    server = start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    got = b""

    def read_until(want: bytes) -> bytes:
        nonlocal got
        deadline = time.monotonic() + 20
        while want not in got:
            assert time.monotonic() < deadline, (want, got[-300:])
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        seen, got = got[:got.index(want) + len(want)], got[got.index(want) + len(want):]
        return seen

    read_until(b"Choose a nick")
    # What Windows telnet starts with: WILL NAWS; it then waits for WILL ECHO.
    sock.sendall(b"\xff\xfb\x1f")
    assert read_until(b"\xff\xfb\x03").endswith(b"\xff\xfe\x1f\xff\xfb\x00\xff\xfb\x01\xff\xfb\x03")
    sock.sendall(b"\xff\xfd\x01\xff\xfd\x03")      # DO ECHO, DO SGA: character mode
    sock.sendall(b"\xff\xfe\x00")                    # DONT BINARY: refused, still fine
    for key in b"winn":                             # one key per packet
        sock.sendall(bytes([key]))
        read_until(bytes([key]))                    # each key is echoed
    sock.sendall(b"\x08")                           # backspace
    read_until(b"\b \b")
    sock.sendall(b"\r\0")                           # Enter
    read_until(b"You are in lobby")
    other = User(server.port, "other")
    sock.sendall(b"hel")
    read_until(b"hel")
    other.send(b"interrupting\r\n")
    # The message is printed over the typed line, which is drawn again.
    assert read_until(b"interrupting\r\nhel").endswith(b"<other> interrupting\r\nhel")
    sock.sendall(b"lo\r\n")
    other.expect(rb"<win> hello\r\n")
    sock.close()


def test_clients_that_never_read_pin_at_most_max_buffer_and_memory_comes_back(start):
    psutil = pytest.importorskip("psutil")
    max_buffer = 1 << 20
    server = start("--history", "10000", "--history-bytes", str(max_buffer // 2), "--rate", "0",
                   "--max-line", "4096", "--max-buffer", str(max_buffer), "--max-per-ip", "0")
    process = psutil.Process(server.proc.pid)
    talker = User(server.port, "talker")
    talker.send(b"/join big\r\n")
    talker.expect(b"You are in big")
    line = b"x" * 2000
    talker.send(b"".join(line + b" %d\r\n" % i for i in range(400)))
    talker.expect(rb" 399\r\n")
    base = process.memory_info().rss
    # Each joiner gets the history (512 KiB) on /join, then asks for it again
    # and again without reading anything.
    joiners = [User(server.port, f"j{i}", rcvbuf=4096) for i in range(40)]
    for joiner in joiners:
        joiner.send(b"/join big\r\n" + b"/history\r\n" * 16)   # 8 MiB asked for
    peak = base
    for joiner in joiners:
        peak = max(peak, process.memory_info().rss)
        assert joiner.closed(timeout=30)   # disconnected for not reading
    peak = max(peak, process.memory_info().rss)
    # Before: the history alone (20 MB with these settings) was queued for
    # every joiner, uncounted, and the memory stayed after they left.
    per_client = (peak - base) / len(joiners)
    assert per_client <= max_buffer + 64 * 1024 + 256 * 1024, per_client
    talker.send(b"/who\r\n")
    talker.expect(rb"\*\*\* big \(1\): @talker")   # @: it created the room
    # The memory comes back once they are gone.
    wait_until(lambda: process.memory_info().rss - base < 8 * max_buffer, timeout=20,
               what=f"RSS back near {base} after the joiners left")
    code, log = server.stop()
    assert log.count("not reading: output buffer full") == len(joiners)


def test_the_readme_ssl_endpoint_works_with_what_the_install_brings(start, tmp_path):
    # pip install . brings pyOpenSSL (twisted[tls]); a self-signed
    # certificate made with cryptography (its dependency) serves the chat.
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    from tests.twistd import free_port
    tls_port = free_port()
    server = start("--listen", f"ssl:{tls_port}:interface=127.0.0.1:privateKey="
                   f"{tmp_path / 'key.pem'}:certKey={tmp_path / 'cert.pem'}")
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        got = b""
        while b"Choose a nick" not in got:
            chunk = tls.recv(4096)
            assert chunk, got
            got += chunk
        tls.sendall(b"secure\r\n")
        plain = User(server.port, "plain")
        plain.send(b"/who\r\n")
        plain.expect(rb"\*\*\* lobby \(2\): secure")


@pytest.mark.parametrize("mode", ["default", "mode line"])
def test_korean_typed_in_debian_telnet_arrives_as_the_same_utf8(start, mode):
    # Debian's telnet in its default mode mangles bytes such as 0x85 and 0x9A
    # (they look like its control keys) unless the server offers BINARY.
    server = start()
    term = Terminal([need("telnet"), "127.0.0.1", str(server.port)])
    text = "안녕하세요 여러분 👍"
    try:
        term.expect(b"Choose a nick")
        term.type(b"kim\r")
        term.expect(b"You are in lobby")
        if mode == "mode line":          # ^] then "mode line" at telnet's prompt
            term.type(b"\x1d")
            term.expect(b"telnet>")
            term.type(b"mode line\r")
        other = User(server.port, "other")
        term.expect(b"other joined")
        term.type(text.encode() + b"\r")
        seen = other.expect(rb"<kim> [^\r]*\r\n")
        assert seen.endswith(f"<kim> {text}\r\n".encode())
        other.send(f"{text} 반가워요\n".encode())
        term.expect(f"<other> {text} 반가워요".encode())
        assert b"/charset" not in term.screen
    finally:
        term.close()
    code, log = server.stop()
    assert "Traceback" not in log


def test_ten_thousand_silent_clients_arriving_at_once_are_all_greeted(start):
    # A restart: 10,000 clients connect in one burst and, as tekcos chat
    # does, wait for the greeting before saying anything (connecting again
    # after 5 s without one).  The accept queue is the kernel's longest.
    import resource
    import selectors
    count = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 512:
        pytest.fail(f"the open-file limit ({hard}) is below {count + 512}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = start("--max-per-ip", "0", "--max-clients", str(count), "--nick-timeout", "0")
    selector = selectors.DefaultSelector()
    waiting: dict = {}        # socket -> (client number, when it connected)
    greeted, retries = set(), 0

    def connect(number: int) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", server.port))
        selector.register(sock, selectors.EVENT_READ)
        waiting[sock] = (number, time.monotonic())

    started = time.monotonic()
    for number in range(count):
        connect(number)
    try:
        while waiting and time.monotonic() - started < 20:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                number, _ = waiting.pop(sock)
                selector.unregister(sock)
                if b"Choose a nick" in data or b"Welcome" in data:
                    greeted.add(number)
                    sock.close()
                    continue
                sock.close()          # refused or reset: connect again
                retries += 1
                connect(number)
            now = time.monotonic()
            for sock, (number, since) in list(waiting.items()):
                if now - since > 5:   # silent for 5 s: connect again
                    selector.unregister(sock)
                    sock.close()
                    del waiting[sock]
                    retries += 1
                    connect(number)
        elapsed = time.monotonic() - started
    finally:
        for sock in list(waiting):
            sock.close()
        selector.close()
    print(f"{len(greeted)} of {count} greeted in {elapsed:.1f} s, {retries} reconnections")
    assert len(greeted) == count, f"{count - len(greeted)} never greeted"
    code, log = server.stop()
    assert "Traceback" not in log


def test_nc_and_a_script_never_get_a_telnet_byte_and_pastes_arrive_whole(start):
    # The OpenBSD nc that Debian ships, as people and scripts use it: lines
    # in LF, a paste of 30 lines (over the burst of 20) in one go.
    server = start("--rate", "20", "--burst", "20")
    other = User(server.port, "other")
    text = "안녕하세요 여러분 👍"
    lines = ["ncuser", *(f"{text} {i}" for i in range(30)), "/quit"]
    proc = subprocess.run([need("nc"), "-q", "5", "127.0.0.1", str(server.port)],
                          input="".join(line + "\n" for line in lines).encode(),
                          capture_output=True, timeout=60)
    seen = other.expect(rb"-- ncuser has quit")
    said = re.findall(rb"<ncuser> ([^\r]*)\r\n", seen)
    assert said == [f"{text} {i}".encode() for i in range(30)]
    assert b"\xff" not in proc.stdout
    assert b"Pacing your lines" in proc.stdout
