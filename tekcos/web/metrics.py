"""``/metrics`` for operators, in the Prometheus text format.

The features keep plain counters (the hub, the push endpoint, the scans,
the uploads); :class:`Collector` reads them when Prometheus scrapes, on the
reactor thread, so nothing is counted twice and nothing is shared with
another thread.  It uses the official ``prometheus_client`` library for the
format, with a registry of its own per server.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web.resource import Resource


@dataclass
class Sources:
    """Where the figures come from (each optional: a server without UDP has
    no push figures)."""
    hub: object
    connections: Callable[[], dict]          # transport -> connected users
    endpoint: object | None = None           # tekcos.push.receiver.Receiver
    uploads: object | None = None            # tekcos.web.upload.Uploads
    neighbourhood: Callable[[], object] = field(default=lambda: None)


class Collector:
    def __init__(self, sources: Sources):
        self.sources = sources

    def collect(self):
        s = self.sources
        hub = s.hub
        users = GaugeMetricFamily("tekcos_users", "Connected chat users by transport",
                                  labels=["transport"])
        for transport, count in sorted(s.connections().items()):
            users.add_metric([transport], count)
        yield users
        yield GaugeMetricFamily("tekcos_rooms", "Chat rooms", value=len(hub.rooms))
        yield CounterMetricFamily("tekcos_lines_in", "Chat lines said (including /me)",
                                  value=hub.lines_in)
        yield CounterMetricFamily("tekcos_lines_out", "Chat lines written to room members",
                                  value=hub.lines_out)
        dropped = CounterMetricFamily("tekcos_dropped", "Messages or clients dropped by limits",
                                      labels=["reason"])
        dropped.add_metric(["flood_control"], hub.dropped_flood)
        dropped.add_metric(["slow_reader"], hub.dropped_slow)
        dropped.add_metric(["push_rate"], hub.dropped_push_lines)
        yield dropped
        pushes = CounterMetricFamily("tekcos_pushes", "Pushes and uploads by outcome",
                                     labels=["via", "outcome"])
        received = CounterMetricFamily("tekcos_received_bytes",
                                       "Bytes of files and messages received", labels=["via"])
        if s.endpoint is not None:
            stats = s.endpoint.stats
            for outcome in ("delivered", "failed", "rejected"):
                pushes.add_metric(["udp", outcome], stats[outcome])
            received.add_metric(["udp"], stats["bytes"])
            yield CounterMetricFamily("tekcos_push_retransmissions",
                                      "DATA datagrams received again (already had them)",
                                      value=stats["duplicates"])
        if s.uploads is not None:
            u = s.uploads
            for outcome, value in (("delivered", u.delivered), ("failed", u.failed),
                                   ("rejected", u.refused)):
                pushes.add_metric(["web", outcome], value)
            received.add_metric(["web"], u.bytes_received)
        yield pushes
        yield received
        hood = s.neighbourhood()
        federation = getattr(hub, "federation", None)
        if federation is not None:
            yield from _federation(federation)
        relays = getattr(getattr(hub, "deliveries", None), "relays", None)
        if relays is not None:
            brought = CounterMetricFamily(
                "tekcos_file_relays", "Files kept on other nodes brought here, by outcome "
                "(refused: too many at once or no room to stage)", labels=["outcome"])
            for outcome in ("relayed", "failed", "refused"):
                brought.add_metric([outcome], relays.stats[outcome])
            yield brought
        scans = CounterMetricFamily("tekcos_scans", "Neighbour scans by outcome",
                                    labels=["outcome"])
        if hood is not None:
            scans.add_metric(["done"], hood.scans_done)
            scans.add_metric(["failed"], hood.scans_failed)
        yield scans


def _federation(federation):
    """This node's part in a hub of several (``--redis``)."""
    relayed = CounterMetricFamily("tekcos_federation_relayed",
                                  "Messages exchanged with the other nodes through Redis",
                                  labels=["direction"])
    relayed.add_metric(["in"], federation.relayed_in)
    relayed.add_metric(["out"], federation.relayed_out)
    yield relayed
    yield CounterMetricFamily("tekcos_federation_dropped",
                              "Malformed messages heard on the channel", value=federation.dropped)
    yield CounterMetricFamily("tekcos_federation_reconnects",
                              "Times Redis was reachable again after a loss",
                              value=federation.reconnects)
    yield GaugeMetricFamily("tekcos_federation_redis_up", "1 while Redis is reachable",
                            value=1 if federation.reachable else 0)
    yield GaugeMetricFamily("tekcos_federation_nodes", "Other nodes heard from",
                            value=len(federation.nodes))
    if federation.round_trip is not None:
        yield GaugeMetricFamily("tekcos_federation_redis_round_trip_seconds",
                                "Round trip of the last heartbeat published to Redis",
                                value=federation.round_trip)


def allowed(host: str | None, networks) -> bool:
    """Whether a client at ``host`` may read the metrics: loopback always,
    else only from one of ``networks`` (``ipaddress`` networks)."""
    try:
        address = ipaddress.ip_address((host or "").split("%")[0])
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None) is not None:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in network for network in networks)


class MetricsResource(Resource):
    """``GET /metrics``: rendered on the reactor thread, for loopback and
    the ``metrics-allow`` networks only (the counters tell who is busy with
    what: not for every phone on the LAN)."""

    isLeaf = True

    def __init__(self, sources: Sources, allow=()):
        super().__init__()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(sources))
        self.networks = [ipaddress.ip_network(n, strict=False) for n in allow]

    def render_GET(self, request):
        if not allowed(getattr(request.getClientAddress(), "host", None), self.networks):
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"/metrics is for loopback and the metrics-allow networks only.\n"
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)
