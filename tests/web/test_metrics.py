"""/metrics answers loopback and the metrics-allow networks, 403 to others."""
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.test.requesthelper import DummyRequest

from tekcos.chat.hub import Hub
from tekcos.web.metrics import MetricsResource, Sources, allowed


def scrape(resource, address):
    request = DummyRequest([b""])
    request.client = address
    body = resource.render_GET(request)
    return request.responseCode or 200, body


def test_loopback_and_listed_networks_only():
    import ipaddress
    nets = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert allowed("127.0.0.1", []) and allowed("::1", []) and allowed("::ffff:127.0.0.1", [])
    assert allowed("10.9.8.7", nets) and allowed("::ffff:10.1.1.1", nets)
    assert allowed("fd12::5", nets) and allowed("fe80::1%eth0", [ipaddress.ip_network("fe80::/10")])
    assert not allowed("192.168.1.20", nets) and not allowed("192.168.1.20", [])
    assert not allowed(None, nets) and not allowed("not an address", nets)


def test_the_resource_refuses_a_lan_phone_and_serves_loopback_and_the_allowed_network():
    hub = Hub(lambda: 0.0)
    resource = MetricsResource(Sources(hub, lambda: {"telnet": 0, "websocket": 0}),
                               allow=["10.0.0.0/8"])
    code, body = scrape(resource, IPv4Address("TCP", "192.168.1.20", 5000))
    assert code == 403 and b"metrics-allow" in body and b"tekcos_" not in body
    for address in (IPv4Address("TCP", "127.0.0.1", 5000), IPv4Address("TCP", "10.2.3.4", 5000),
                    IPv6Address("TCP", "::1", 5000)):
        code, body = scrape(resource, address)
        assert code == 200 and b"tekcos_" in body, address


def test_a_node_of_several_reports_what_it_relayed_dropped_and_how_redis_answers():
    from prometheus_client.parser import text_string_to_metric_families
    from tests.federation.test_core import two_nodes
    a, b, deliver, channel, _ = two_nodes()
    alice, bob = a.user("alice"), b.user("bob")
    alice.type("hello\nagain\n")
    deliver()
    b.hub.federation.received(b"{not json", 0.0)
    federation = b.hub.federation
    federation.link_state(False)
    federation.link_state(True)
    federation.round_trip = 0.0042
    resource = MetricsResource(Sources(b.hub, lambda: {"telnet": 1}))
    code, body = scrape(resource, IPv4Address("TCP", "127.0.0.1", 5000))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode())
               for s in family.samples}
    heard = federation.relayed_in
    assert heard >= 3              # bob's node heard alice's nick and her two lines at least
    assert samples[("tekcos_federation_relayed_total", (("direction", "in"),))] == heard
    assert samples[("tekcos_federation_relayed_total", (("direction", "out"),))] == \
        federation.relayed_out
    assert samples[("tekcos_federation_dropped_total", ())] == 1
    assert samples[("tekcos_federation_reconnects_total", ())] == 1
    assert samples[("tekcos_federation_redis_up", ())] == 1
    assert samples[("tekcos_federation_redis_round_trip_seconds", ())] == 0.0042
    assert samples[("tekcos_federation_nodes", ())] == len(federation.nodes)
    # A single server has none of these.
    code, body = scrape(MetricsResource(Sources(Hub(lambda: 0.0), lambda: {})),
                        IPv4Address("TCP", "127.0.0.1", 5000))
    assert b"tekcos_federation" not in body
