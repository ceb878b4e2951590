"""Options parsing, makeService and the twistd plugin."""
import os
import subprocess
import sys

import pytest
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from tekcos.chat.server import ChatService
from tekcos.listening import describe
from tekcos.tap import Options, endpoint_string, makeService
from tests.twistd import REPO


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    # The default --downloads is relative: keep it out of the repository.
    monkeypatch.chdir(tmp_path)


def parse(*argv):
    """Options as twistd would make them; never announced over mDNS (the
    tests must not multicast on the machine's interfaces) unless ``--mdns``
    is given."""
    options = Options()
    options.exit_on_error = False
    if not any(a.startswith("--mdns") for a in argv):
        argv = ("--no-mdns", *argv)
    options.parseOptions(list(argv))
    return options


def test_defaults_listen_on_9000():
    options = parse()
    assert options.endpoints == [endpoint_string("9000")]
    assert options.settings["rate"] == 5.0


def test_port_and_repeated_listen(tmp_path):
    options = parse("--port", "9100", "--listen", "9200", "--listen", f"unix:{tmp_path}/s")
    assert options.endpoints == [endpoint_string("9100"), endpoint_string("9200"),
                                f"unix:{tmp_path}/s"]


def test_listen_alone_replaces_the_default_port():
    assert parse("--listen", "tcp:9300").endpoints == ["tcp:9300"]


def test_config_file_and_precedence(tmp_path):
    conf = tmp_path / "t.toml"
    conf.write_text('history = 5\nrate = 0\nmotd = "hi"\nport = 9400\n')
    options = parse("--config", str(conf), "--history", "9")
    assert options.settings["history"] == 9
    assert options.settings["rate"] == 0
    assert options.settings["motd"] == "hi"
    assert options.endpoints == [endpoint_string("9400")]


@pytest.mark.parametrize("argv, needle", [
    (["--history", "-1"], "--history: must be between 0 and 10000"),
    (["--listen", "bogus:1"], "--listen: bad endpoint 'bogus:1'"),
    (["--listen", "ssl:9443:privateKey=/nonexistent.pem"], "--listen: bad endpoint"),
    (["--config", "/nonexistent.toml"], "no such file"),
])
def test_bad_values_are_usage_errors(argv, needle):
    with pytest.raises(usage.UsageError, match=needle):
        parse(*argv)


class UDPMemoryReactor(MemoryReactorClock):
    def __init__(self):
        super().__init__()
        self.udpPorts = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpPorts.append((port, protocol, interface))

        class Port:
            def stopListening(self):
                return None
        return Port()


def test_make_service_builds_the_tree(tmp_path):
    reactor = UDPMemoryReactor()
    downloads = tmp_path / "dl"
    (downloads.parent).mkdir(exist_ok=True)
    options = parse("--port", "9500", "--listen", "9501", "--downloads", str(downloads),
                    "--state-dir", str(tmp_path / "state"))
    assert downloads.is_dir()          # created when the options are checked
    (downloads / ".00000000000000ab.part").write_bytes(b"x")   # left by a killed server
    (downloads / ".draft.part").write_bytes(b"mine")           # the operator's
    top = makeService(options, reactor=reactor)
    children = list(top)
    # The database closes last (services stop in reverse order): after the
    # chat's goodbyes, which may still be recorded.
    assert type(children[0]).__name__ == "_CloseStore"
    assert isinstance(children[1], ChatService)
    assert (tmp_path / "state" / "tekcos.db").is_file()
    ports = [c for c in children if isinstance(c, StreamServerEndpointService)]
    assert len(ports) == 2
    assert sorted(os.listdir(downloads)) == [".draft.part"]
    top.startService()
    # --port listens last: once it accepts (what scripts and tests wait
    # for), every other endpoint listens too.
    assert [p[0] for p in reactor.tcpServers] == [9501, 9500]
    assert children[-1] is ports[-1]
    assert [p[0] for p in reactor.udpPorts] == [9500]   # UDP shares the number
    top.stopService()


def test_udp_port_zero_turns_udp_off(tmp_path):
    reactor = UDPMemoryReactor()
    options = parse("--udp-port", "0", "--downloads", str(tmp_path),
                    "--state-dir", str(tmp_path / "state"))
    makeService(options, reactor=reactor).startService()
    assert reactor.udpPorts == []


def test_unwritable_downloads_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(usage.UsageError, match="--downloads: cannot create"):
        parse("--downloads", str(blocker / "sub"))


def run(*argv, timeout=60):
    # These run in a temporary folder: PYTHONPATH keeps them on the code
    # under test (and its twistd plugin), not on an installed copy.
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": REPO})


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


@pytest.mark.slow   # a twistd process
def test_twistd_help_lists_tekcos():
    result = run(*TWISTD, "--help")
    assert result.returncode == 0
    assert "tekcos" in result.stdout
    assert "LAN chat hub" in result.stdout


@pytest.mark.slow   # a twistd process
def test_twistd_bad_option_is_one_line_and_non_zero():
    result = run(*TWISTD, "-n", "tekcos", "--no-mdns", "--max-line", "abc")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "twistd tekcos: error: --max-line: must be a whole number, got 'abc'"]
    assert "Traceback" not in result.stdout + result.stderr


def test_hello_tells_the_first_tcp_endpoint_when_only_listen_is_given(tmp_path):
    reactor = UDPMemoryReactor()
    options = parse("--listen", "unix:" + str(tmp_path / "s"), "--listen", "tcp:9611",
                    "--listen", "9612", "--downloads", str(tmp_path),
                    "--state-dir", str(tmp_path / "state"))
    top = makeService(options, reactor=reactor)
    [udp] = [c for c in top if hasattr(c, "port_number")]
    assert udp.protocol.core.server_info["chat_port"] == 9611
    assert udp.port_number == 9611     # UDP takes the same number


@pytest.mark.slow   # a twistd process
def test_version_says_tekcos():
    from tekcos import __version__
    result = run(*TWISTD, "tekcos", "--version")
    assert result.returncode == 0 and result.stdout == f"tekcos {__version__}\n"
    result = run(sys.executable, "-m", "tekcos.cli", "--version")
    assert result.returncode == 0 and result.stdout == f"tekcos {__version__}\n"


@pytest.mark.slow   # a twistd process
def test_a_port_in_use_is_one_line_naming_the_endpoint(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(*TWISTD, "-n", "--pidfile=", "-l", str(tmp_path / "log"), "tekcos",
                     "--no-mdns", "--port", str(port), "--udp-port", "0", "--downloads", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"twistd tekcos: cannot listen on {describe(endpoint_string(str(port)))}: "
        "Address already in use"]
    assert "Traceback" not in result.stdout + (tmp_path / "log").read_text()


def test_web_listener_and_downloads_flag():
    options = parse("--web", "8080")
    assert options.web_endpoint == endpoint_string("8080")
    assert options.settings["web-downloads"] is False
    assert parse("--web-downloads").settings["web-downloads"] is True
    assert parse().web_endpoint is None
    with pytest.raises(usage.UsageError, match=r"^--web: bad endpoint 'nonsense:1'"):
        parse("--web", "nonsense:1")


def test_web_service_listens_beside_the_chat(tmp_path):
    reactor = MemoryReactorClock()
    top = makeService(parse("--port", "9100", "--web", "8081", "--udp-port", "0",
                            "--downloads", str(tmp_path / "dl"),
                            "--state-dir", str(tmp_path / "state")), reactor=reactor)
    top.privilegedStartService()
    top.startService()
    ports = sorted(port for port, *_ in reactor.tcpServers)
    assert ports == [8081, 9100]
    top.stopService()
