"""Counting every front door: chat and HTTP, per host and in all."""
from tekcos.address import host_key
from tekcos.admission import CHAT, HTTP, Admission


def test_a_host_is_its_ipv4_address_or_its_ipv6_slash_64():
    assert host_key("198.51.100.7") == "198.51.100.7"
    assert host_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert host_key("2001:db8:1:2:aaaa::1") == host_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert host_key("2001:db8:1:3::1") != host_key("2001:db8:1:2::1")
    assert host_key(None) is None and host_key("/run/tekcos.sock") == "/run/tekcos.sock"


def test_temporary_ipv6_addresses_share_their_hosts_caps():
    admission = Admission(max_clients=100, max_per_ip=3)
    for i in range(3):
        assert admission.admit(f"2001:db8::{i + 1}", CHAT) is None
    assert "too many connections from 2001:db8::/64" in admission.admit("2001:db8::99", CHAT)
    assert admission.admit("2001:db8:0:1::1", CHAT) is None
    admission.release("2001:db8::2", CHAT)
    assert admission.admit("2001:db8::77", HTTP) is None
    assert admission.refused == {CHAT: 1, HTTP: 0}


def test_releases_bring_the_counts_back_to_nothing():
    admission = Admission(max_clients=5, max_per_ip=0, http_per_host=2)
    for host in ("a", "a", "b"):
        assert admission.admit(host, HTTP) is None
    assert "too many web requests" in admission.admit("a", HTTP)
    assert admission.admit("c", CHAT) is None and admission.admit("d", CHAT) is None
    assert "the server is full" in admission.admit("e", CHAT)
    for host, kind in (("a", HTTP), ("a", HTTP), ("b", HTTP), ("c", CHAT), ("d", CHAT)):
        admission.release(host, kind)
    assert admission.open == {CHAT: 0, HTTP: 0}
    assert admission.by_host == {CHAT: {}, HTTP: {}}
