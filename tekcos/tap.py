"""``twistd tekcos``: command-line options and the service tree."""
from __future__ import annotations

import os
import socket
import sys

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python import usage

from tekcos import __version__, exits
from tekcos import config as settings
from tekcos.address import dual_stack, listen_backlog
from tekcos.chat.hub import Hub
from tekcos.chat.server import ChatFactory, ChatService
from tekcos.chat.session import SessionConfig
from tekcos.hosts import host_port
from tekcos.listening import ListeningService
from tekcos.push.udp import push_service

def endpoint_string(value: str) -> str:
    """A bare port number means TCP on every address: one IPv6 socket that
    takes IPv4 too where the system allows it, else every IPv4 address.
    The accept queue is the kernel's longest (Twisted's default, 50, drops
    SYNs when a crowd reconnects at once after a restart)."""
    if not value.isdecimal():
        return value
    backlog = listen_backlog()
    if dual_stack():
        return f"tcp6:{value}:interface=\\:\\::backlog={backlog}"
    return f"tcp:{value}:backlog={backlog}"


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Run the tekcos LAN chat hub. Settings come from the command line, "
                "then --config FILE (TOML, see conf/tekcos.toml), then defaults.")
    optParameters = [["config", "c", None, "TOML configuration file"],
                     ["worker", None, None, "(set by --workers for the processes it starts)",
                      int]] + [
        [s.name, None, None, f"{s.help}" + (f" [default: {s.default}]" if s.default not in (None, "") else "")]
        for s in settings.SETTINGS.values() if s.name != "listen" and s.default is not False
    ]
    # On/off settings are flags on the command line (true/false in the file).
    optFlags = [[s.name, None, s.help] for s in settings.SETTINGS.values()
                if s.default is False]

    # twistd prints its whole usage text before an error; a person or a script
    # needs the one line that names the bad setting.
    exit_on_error = True

    def __init__(self):
        super().__init__()
        self["listen"] = []

    def opt_version(self) -> None:
        """print tekcos's version and exit"""
        sys.stdout.write(f"tekcos {__version__}\n")
        raise SystemExit(0)

    def opt_listen(self, value: str) -> None:
        """extra listening endpoint, repeatable: 'tcp:9000', 'ssl:9443:privateKey=key.pem:certKey=cert.pem', 'unix:/run/tekcos.sock'; a bare number means TCP"""
        self["listen"].append(value)

    def opt_no_mdns(self) -> None:
        """do not announce the server over mDNS/DNS-SD"""
        self["mdns"] = "false"

    def opt_no_relay(self) -> None:
        """send users to the node that keeps a file instead of bringing it here"""
        self["relay"] = "false"

    def parseOptions(self, options=None):
        # As given: what --workers starts its other processes with.
        self.raw_args = list(sys.argv[1:] if options is None else options)
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if not self.exit_on_error:
                raise
            sys.stderr.write(f"twistd tekcos: error: {e}\n")
            raise SystemExit(2)

    def postOptions(self) -> None:
        try:
            file_values = settings.load_toml(self["config"]) if self["config"] else {}
            cli = {name: self.get(name) or None if settings.SETTINGS[name].default is False
                   else self.get(name) for name in settings.SETTINGS}
            values = settings.resolve(cli, file_values, self["config"] or "config")
            endpoint_strings = [endpoint_string(e) for e in values["listen"]]
            if values["port"] is not None:
                endpoint_strings.insert(0, endpoint_string(str(values["port"])))
            for desc in endpoint_strings:
                _check_endpoint(desc)
            self.web_endpoint = endpoint_string(values["web"]) if values["web"] else None
            if self.web_endpoint:
                _check_endpoint(self.web_endpoint, "--web")
            if values["udp-port"] or self.web_endpoint:
                _check_downloads(values["downloads"])
        except settings.ConfigError as e:
            raise usage.UsageError(str(e)) from None
        worker = self.get("worker")
        if worker is not None and not 1 <= worker < values["workers"]:
            raise usage.UsageError(f"--worker: must be between 1 and {values['workers'] - 1}")
        if values["workers"] > 1:
            from tekcos.workers import shareable
            for desc in endpoint_strings:
                if not shareable(desc):
                    raise usage.UsageError(f"--workers: {desc!r} cannot be shared by workers "
                                           "(only plain TCP ports can)")
        self.settings = values
        self.endpoints = endpoint_strings


def _check_endpoint(desc: str, option: str = "--listen") -> None:
    from twisted.internet import reactor
    try:
        endpoints.serverFromString(reactor, desc)
    except Exception as e:  # parsing errors come as many types (ValueError, SSL errors)
        detail = str(e) or type(e).__name__
        raise settings.ConfigError(f"{option}: bad endpoint {desc!r}: {detail}") from None


def _check_downloads(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise settings.ConfigError(f"--downloads: cannot create {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise settings.ConfigError(f"--downloads: {path} is not writable")


def makeService(config: Options, reactor=None) -> MultiService:
    if reactor is None:
        from twisted.internet import reactor
    values = config.settings
    worker = config.get("worker")
    web_endpoint = getattr(config, "web_endpoint", None)
    if worker:
        from tekcos.workers import worker_settings
        values = worker_settings(values, worker)
        web_endpoint = None
    hub = Hub(reactor.seconds, history=values["history"], history_bytes=values["history-bytes"],
              crowd=values["crowd"], push_rate=values["rate"], push_burst=values["burst"],
              max_rooms=values["max-rooms-per-user"])
    store = open_store(values["state-dir"], values["history"])
    hub.restore(store.snapshot)
    hub.store = store
    hub.pushes_enabled = bool(values["udp-port"])
    hub.oper_password = values["oper-password"]
    chat_log = Logger(namespace="tekcos.chat")
    hub.log = lambda text: chat_log.info("{text}", text=text)
    session_config = SessionConfig(rate=values["rate"], burst=values["burst"],
                                   motd=values["motd"], server_name=socket.gethostname(),
                                   paste_lines=values["paste-lines"],
                                   paste_bytes=values["max-buffer"], clock=reactor)
    factory = ChatFactory(hub, session_config, max_line=values["max-line"],
                          max_per_ip=values["max-per-ip"], max_buffer=values["max-buffer"],
                          max_clients=client_limit(values["max-clients"]),
                          nick_timeout=values["nick-timeout"], clock=reactor)
    top = MultiService()
    _CloseStore(store).setServiceParent(top)   # stopped last: after the chat's goodbyes
    ChatService(factory, reactor).setServiceParent(top)
    if values["redis"]:
        _add_federation(top, hub, values, reactor, worker or 0)
    _add_neighbourhood(top, hub, values, reactor)
    if values["mdns"]:
        _add_mdns(top, values, web_endpoint)
    udp = None
    if values["udp-port"]:
        info = {"server": socket.gethostname(), "version": __version__,
                "chat_port": values["chat-port"]}   # what HELLO tells people
        deliveries = _deliveries(hub, store, values, reactor, top)

        def completed(received) -> None:
            _log_received(received)
            if received.request:   # kept for someone: they are told, not the lobby
                deliveries.delivered(received.request, received.name, received.size,
                                     reactor.seconds())
            else:
                hub.push_received(received)

        udp = push_service(values, completed, info, reactor, deliveries)
        udp.setServiceParent(top)
        if values["redis"] and values["relay"]:
            deliveries.relays = _relays(deliveries, reactor)
    elif values["redis"]:
        # No pushes here, but users here may be offered files kept by
        # other nodes (and answer them).
        _deliveries(hub, store, values, reactor, top)
    if web_endpoint:
        from tekcos.web.service import web_service
        web_service(web_endpoint, values, factory,
                    udp.receiver if udp is not None else None, reactor).setServiceParent(top)
    # The chat endpoints last, and --port (the first of them) last of all:
    # once it accepts, everything else is up.  (A TCP port accepts as soon as
    # it listens, before the reactor runs, while the next endpoint, a TLS one
    # loading its certificate, may still be starting.)
    shared = values["workers"] > 1
    if shared and not worker:
        from tekcos.workers import Workers
        Workers(reactor, values["workers"], config.raw_args).setServiceParent(top)
    for desc in reversed(config.endpoints):
        if shared:
            from tekcos.workers import SharedPortEndpoint
            endpoint = SharedPortEndpoint(reactor, desc)
        else:
            endpoint = endpoints.serverFromString(reactor, desc)
        ListeningService(endpoint, factory, desc).setServiceParent(top)
    return top


def _add_federation(top, hub, values, reactor, worker: int = 0) -> None:
    """``--redis``: this server is one node of a hub (tekcos/federation/);
    with ``--workers``, each worker is one (``NAME-wK``)."""
    from tekcos.federation.core import Federation
    from tekcos.federation.link import RedisLink
    from tekcos.federation.url import RedisURL
    node = values["node-name"] or node_name_from(socket.gethostname())
    if values["workers"] > 1:
        from tekcos.workers import node_name
        node = node_name(node, worker)
    log = Logger(namespace="tekcos.federation")
    link = None
    federation = Federation(hub, node, publish=lambda data: link.publish(data),
                            log=lambda text: log.info("{text}", text=text))
    link = RedisLink(federation, RedisURL(values["redis"]), reactor)
    hub.federation = federation
    link.setServiceParent(top)


def _add_mdns(top, values, web_endpoint) -> None:
    """Announce the chat and the page on the LAN (tekcos/mdns.py)."""
    from tekcos import mdns
    web_port = None
    if web_endpoint and not values["web"].startswith("ssl:"):
        web_port = settings.first_tcp_port([values["web"]])
    records = mdns.records(socket.gethostname(), values["chat-port"], web_port, __version__,
                           values["udp-port"], values["node-name"])
    mdns.Advertiser(socket.gethostname(), records, mdns.lan_addresses).setServiceParent(top)


def node_name_from(hostname: str) -> str:
    """A node name made of a host name (what the name rules allow of it)."""
    import re
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname.split(".")[0])[:32].strip("-._")
    return name or "node"


_push_log = Logger(namespace="tekcos.push")


def _log_received(received) -> None:
    """One log line per completed push: what, how big, from whom, how fast."""
    sender = f"{received.sender or 'anonymous'}@{received.address[0]}"
    sent = received.size - received.resumed
    rate = sent / received.seconds / 1e6 if received.seconds > 0 else 0.0
    resumed = f", resumed after {received.resumed} bytes" if received.resumed else ""
    what = f"file {received.name!r}" if received.kind == "file" else "a message"
    to = f" for offer {received.request}" if received.request else ""
    _push_log.info("received {what} ({size} bytes) from {sender}{to} in {seconds:.1f} s, "
                   "{rate:.1f} MB/s{resumed}", what=what, size=received.size, sender=sender,
                   to=to, seconds=received.seconds, rate=rate, resumed=resumed)


DELIVERY_SWEEP = 60.0    # seconds between looks for silent offers and expired files


def _node_where(values: dict) -> str:
    """HOST:PORT where users of other nodes fetch what is kept here."""
    if not values["udp-port"] or not values["redis"]:
        return ""
    host = values["node-address"]
    if not host:
        from tekcos import mdns
        addresses = mdns.lan_addresses()
        host = addresses[0] if addresses else socket.gethostname()
    return host_port(host, values["udp-port"])


def _deliveries(hub, store, values: dict, reactor, top):
    """Files addressed to people: restored from the store, swept now and
    every DELIVERY_SWEEP seconds."""
    from twisted.application.internet import TimerService

    from tekcos.delivery import Deliveries, Ready
    deliveries = Deliveries(hub, store, reactor.seconds, values["downloads"],
                            keep_days=values["keep-days"], quota=values["quota-per-sender"],
                            udp_port=values["udp-port"], node_where=_node_where(values))
    deliveries.restore(Ready(**row) for row in store.snapshot.deliveries)
    hub.deliveries = deliveries
    timer = TimerService(DELIVERY_SWEEP, lambda: deliveries.tick(reactor.seconds()))
    timer.clock = reactor
    timer.setServiceParent(top)
    return deliveries


RELAY_TIMEOUT = 30.0     # seconds a node keeping a file may go silent mid-relay


def _relays(deliveries, reactor):
    """Files kept on other nodes, brought here for users here."""
    from twisted.internet import defer

    from tekcos.push.get import fetch
    from tekcos.push.relay import Relays

    def fetch_file(code: str, where: str, output: str):
        # The part file is put away before the reactor stops: the fetch
        # waits for ``stopping``, which fires once it has ended.
        stopping = defer.Deferred()

        def ended(result):
            if not stopping.called:
                stopping.callback(None)
            return result
        return fetch(reactor, code, where, output, timeout=RELAY_TIMEOUT, stopping=stopping,
                     follow=False, reserve=None, relay=True).addBoth(ended)

    return Relays(deliveries.downloads, fetch_file, deliveries.relayed, deliveries.relay_failed,
                  log=lambda text: _push_log.info("{text}", text=text))


def open_store(state_dir: str, history: int):
    """The server's database, or exit with one line naming it (a damaged or
    unreadable file never means a silent empty start)."""
    from tekcos.store import Store, StoreError
    try:
        store, snapshot = Store.open(state_dir, history)
    except StoreError as e:
        exits.cannot_start(str(e))
    store.snapshot = snapshot
    log = Logger(namespace="tekcos.store")
    store.on_error = lambda e: log.warn("cannot write to {path}: {e} (the chat goes on; what "
                                        "it says now is not kept)", path=store.path, e=e)
    return store


class _CloseStore(Service):
    """Writes what is queued to the database and closes it on shutdown."""

    def __init__(self, store):
        self.store = store

    def stopService(self):
        super().stopService()
        self.store.close()


# Descriptors kept free for everything but chat clients: pushes being stored,
# the UDP socket, log files, listening sockets, scans.
FD_RESERVE = 256


def client_limit(wanted: int, limits=None) -> int:
    """``wanted``, lowered to what the open-file limit allows after the
    reserve.  Raises the soft limit towards the hard one first, as servers
    that expect many connections do."""
    import resource
    getrlimit = limits.getrlimit if limits else resource.getrlimit
    setrlimit = limits.setrlimit if limits else resource.setrlimit
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < target:
        new = target if hard == resource.RLIM_INFINITY else min(target, hard)
        try:
            setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def _add_neighbourhood(top: MultiService, hub: Hub, values: dict, reactor) -> None:
    """/scan, /neighbors and the watch on the server's own address."""
    from twisted.application.internet import TimerService

    from tekcos.scan import iface as ifaces
    from tekcos.scan.engine import Scanner
    from tekcos.scan.ipv6 import both_families
    from tekcos.scan.service import Neighbourhood

    if values["scan-access"] == "nobody" and not values["watch-interval"]:
        return

    def select():
        # Both families are scanned: a link without IPv4 is scanned on IPv6.
        return ifaces.select(ifaces.local_system(), values["scan-iface"] or None,
                             values["scan-network"] or None, ipv6=True)

    hood = Neighbourhood(Scanner(reactor, scan_function=both_families), reactor.seconds,
                         select,
                         access=values["scan-access"],
                         cooldown=values["scan-cooldown"], announce=hub.announce,
                         log=lambda text: _scan_log.info("{text}", text=text))
    hub.neighbourhood = hood
    if hub.federation is not None:     # /neighbors shows every node's LAN
        hood.ask_others = hub.federation.ask_neighbours
    if values["watch-interval"]:
        timer = TimerService(values["watch-interval"], hood.check_address)
        timer.clock = reactor
        timer.setServiceParent(top)


_scan_log = Logger(namespace="tekcos.scan")
