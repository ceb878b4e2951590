"""Addresses as people read them, dual-stack listening and the accept queue."""
import os
import socket

import pytest

from tekcos.address import dual_stack, host_key, listen_backlog, mapped, shown
from tekcos.listening import describe
from tekcos.tap import endpoint_string


def test_ipv4_clients_of_a_dual_stack_socket_are_shown_as_ipv4():
    assert shown("::ffff:10.0.0.7") == "10.0.0.7"
    assert shown("::1") == "::1" and shown("10.0.0.7") == "10.0.0.7" and shown(None) is None
    assert shown("::ffff:a00:7") == "::ffff:a00:7"   # not the dotted form: left alone
    assert mapped("10.0.0.7") == "::ffff:10.0.0.7" and mapped("fe80::1") == "fe80::1"
    assert host_key("::ffff:10.0.0.7") == host_key("10.0.0.7") == "10.0.0.7"


def test_the_accept_queue_is_the_kernels_longest():
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    assert listen_backlog() == max(1024, somaxconn)
    assert f"backlog={listen_backlog()}" in endpoint_string("9000")


def test_a_bare_port_listens_on_every_address_and_says_so():
    desc = endpoint_string("9000")
    if dual_stack():
        assert desc.startswith("tcp6:9000:interface=\\:\\::")
        assert describe(desc) == "TCP port 9000 (IPv4 and IPv6)"
    else:
        assert desc.startswith("tcp:9000:")
        assert describe(desc) == "TCP port 9000 (IPv4)"
    assert describe("ssl:9443:privateKey=k.pem") == "ssl:9443:privateKey=k.pem"
    assert endpoint_string("unix:/run/t.sock") == "unix:/run/t.sock"


def test_dual_stack_means_one_ipv6_socket_takes_ipv4():
    if not dual_stack():
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail("IPv6 (::1, bindv6only=0) is needed for the dual-stack tests")
        pytest.skip("no dual-stack IPv6 here")
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            peer = server.accept()[0]
            assert shown(peer.getpeername()[0]) == "127.0.0.1"
            peer.close()


def test_a_link_local_server_keeps_its_zone_and_needs_one():
    import socket as sockets

    from tekcos.address import resolve_server
    lo = sockets.if_nametoindex("lo")
    assert resolve_server("[fe80::1%lo]:9000") == (sockets.AF_INET6, f"fe80::1%{lo}", 9000)
    with pytest.raises(OSError, match="a link-local address needs its interface"):
        resolve_server("[fe80::1]:9000")
    assert resolve_server("[::1]:9000")[1:] == ("::1", 9000)


def test_host_port_as_written_and_as_checked():
    from tekcos.hosts import host_port, is_host_port
    assert host_port("10.0.0.1", 9000) == "10.0.0.1:9000"
    assert host_port("fd00::1", 9000) == "[fd00::1]:9000"
    for good in ("10.0.0.1:9000", "[fd00::1]:9000", "lab-a.example:9000"):
        assert is_host_port(good)
    for bad in ("10.0.0.1", "fd00::1:9000", "host:port", "a b:1", "x:9000\r\n", None, 9000):
        assert not is_host_port(bad)
