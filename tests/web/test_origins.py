"""The names the web page answers to (DNS rebinding)."""
from tekcos.web.origins import AllowedHosts, host_of


def test_host_headers_are_parsed_as_browsers_send_them():
    assert host_of(b"Example.ORG.:8080") == "example.org"
    assert host_of("[FE80::1]:80") == "fe80::1"
    assert host_of("10.0.0.1") == "10.0.0.1"
    for bad in (b"a:b", "[::1", "[::1]x", b"\xff", ""):
        assert host_of(bad) is None, bad


def test_its_own_addresses_are_looked_up_again_when_they_change():
    now = [0.0]
    addresses = {"10.0.0.5"}
    lookups = []

    def lookup():
        lookups.append(now[0])
        return set(addresses)
    hosts = AllowedHosts([], "lab", addresses=lookup, now=lambda: now[0])
    assert hosts.host_allowed("10.0.0.5:8080")
    assert not hosts.host_allowed("10.0.0.6")
    addresses.add("10.0.0.6")            # DHCP gave another address
    assert not hosts.host_allowed("10.0.0.6")   # not within the same second
    now[0] = 1.0
    assert hosts.host_allowed("10.0.0.6")
    for _ in range(100):                 # unknown names cost no look-ups
        assert not hosts.host_allowed("evil.example")
    assert len(lookups) == 2


def test_origins_must_be_ours_or_listed():
    hosts = AllowedHosts(["https://chat.example.org", "alias.lan"], "lab.example.org",
                         addresses=lambda: {"10.0.0.5"})
    assert hosts.origin_allowed(None, "whatever")                     # not a browser
    assert hosts.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert hosts.origin_allowed("http://lab.local:8080", "lab.local:8080")
    assert hosts.origin_allowed("http://alias.lan", "alias.lan")
    # A reverse proxy: the browser's origin is listed, the Host is the proxy's upstream.
    assert hosts.origin_allowed("https://chat.example.org", "127.0.0.1:8080")
    assert not hosts.origin_allowed("http://evil.example", "evil.example")
    assert not hosts.origin_allowed("http://10.0.0.5:8080", "10.0.0.5:8081")
    assert not hosts.origin_allowed("null", "127.0.0.1:8080")
