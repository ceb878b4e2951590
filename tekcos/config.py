"""Settings: one table of every tunable, read from defaults, a TOML file and
the command line (in rising order of precedence).

Names here are the stable contract that scripts, ``conf/tekcos.toml`` and the
benchmarks rely on: the command-line flag is ``--NAME`` and the TOML key is
``NAME``.  :func:`resolve` is the only place that validates values, so a bad
value gets the same one-line :class:`ConfigError` wherever it came from.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any, Callable

from tekcos.hosts import DEFAULT_PORT


class ConfigError(ValueError):
    """A setting has a bad value; ``str()`` is a one-line message naming it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any]


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number, not a boolean")
        if isinstance(value, str):
            value = value.strip()
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a whole number, got {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"must be a whole number, got {value!r}")
        if number < low or (high is not None and number > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}, got {number}")
        return number

    return parse


def _number(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number, got {value!r}") from None
        if not (low <= number <= high):
            raise ValueError(f"must be between {low:g} and {high:g}, got {number:g}")
        return number

    return parse


def _text(max_len: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {value!r}")
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters")
        if any(ord(c) < 32 and c != "\n" for c in value):
            raise ValueError("must not contain control characters")
        return value

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {value!r}")
        return value

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "yes", "true", "on"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _endpoint(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("must be a port number or an endpoint string such as 'tcp:8080'")
    return str(value).strip()


def _endpoints(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError("must be a list of endpoint strings such as 'tcp:9000'")
    return [i.strip() for i in items]


def _names(value: Any) -> list[str]:
    items = [v for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("must be a list of host names or origins such as "
                         "'https://chat.example.org'")
    names = [i.strip() for i in items if i.strip()]
    for name in names:
        if len(name) > 255 or any(c.isspace() or ord(c) < 32 for c in name):
            raise ValueError(f"not a host name or origin: {name!r}")
    return names


def _redis_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a URL such as redis://10.0.0.2:6379/0")
    if value.strip():
        from tekcos.federation.url import RedisURL
        RedisURL(value.strip())
    return value.strip()


def _node_name(value: Any) -> str:
    from tekcos.federation.url import node_error
    if not isinstance(value, str):
        raise ValueError("must be a name such as lab-a")
    if value.strip() and node_error(value.strip()):
        raise ValueError(node_error(value.strip()))
    return value.strip()


def _host_name(value: Any) -> str:
    import ipaddress
    if not isinstance(value, str):
        raise ValueError("must be a host name or an address")
    value = value.strip().strip("[]")
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if len(value) > 253 or not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            for label in value.rstrip(".").split(".")):
        raise ValueError(f"{value!r} is not a host name or an address")
    return value


def _networks(value: Any) -> list[str]:
    import ipaddress
    items = [v for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("must be a list of networks such as '10.0.0.0/8'")
    networks = []
    for item in (i.strip() for i in items if i.strip()):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"not a network or address: {item!r} (try '10.0.0.0/8')") from None
    return networks


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("port", None, "TCP port for the chat (default 9000 when no --listen is given)",
                _integer(1, 65535)),
        Setting("listen", [], "extra listening endpoint, repeatable: 'tcp:9000', "
                "'ssl:9443:privateKey=key.pem:certKey=cert.pem', 'unix:/run/tekcos.sock'; "
                "a bare number means TCP", _endpoints),
        Setting("history", 20, "lines of history each room keeps and replays on /join",
                _integer(0, 10000)),
        Setting("history-bytes", 64 * 1024, "bytes of history each room keeps at most "
                "(oldest lines go first)", _integer(0, 1 << 30)),
        Setting("max-line", 2048, "longest accepted input line in bytes",
                _integer(64, 1 << 20)),
        Setting("rate", 5.0, "sustained lines per second per connection (0 = no limit)",
                _number(0, 1e6)),
        Setting("burst", 20, "lines a connection may send at once before --rate applies",
                _integer(1, 1_000_000)),
        Setting("paste-lines", 500, "lines over --rate that wait their turn per connection "
                "(a paste arrives whole, paced); beyond that (or --max-buffer bytes) they are "
                "dropped", _integer(0, 1_000_000)),
        Setting("max-per-ip", 32, "simultaneous connections per client address (0 = no cap)",
                _integer(0, 1_000_000)),
        Setting("max-buffer", 1 << 20, "unsent output in bytes after which a client that "
                "does not read is disconnected", _integer(4096, 1 << 30)),
        Setting("max-clients", 10000, "chat connections at once (never more than the "
                "descriptor limit allows); one more gets a reason and is closed",
                _integer(1, 1_000_000)),
        Setting("nick-timeout", 60.0, "seconds a new connection has to choose a nick "
                "before it is told why and closed (0 = no limit)", _number(0, 86400)),
        Setting("crowd", 100, "room size from which joins and quits are summarised in one "
                "line before the next message instead of one line each (0 = never)",
                _integer(0, 1_000_000)),
        Setting("max-rooms-per-user", 20, "rooms one user may be in at once (/join adds one, "
                "/part leaves one)", _integer(1, 1000)),
        Setting("redis", "", "join other tekcos servers as one hub through this Redis: "
                "redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS); empty: this "
                "server alone", _redis_url),
        Setting("workers", 1, "processes serving the chat on the same TCP ports "
                "(SO_REUSEPORT), one hub through --redis (required with more than 1); the "
                "first also serves pushes, the web page and mDNS", _integer(1, 64)),
        Setting("node-name", "", "this server's name among the nodes of a hub (default: its "
                "host name)", _node_name),
        Setting("node-address", "", "the host name or address where users of other nodes "
                "fetch the files kept here (default: this machine's first LAN address)",
                _host_name),
        Setting("relay", True, "bring files kept on other nodes for users here to this node, "
                "so that they fetch them here (off: they are sent to the node that keeps them); "
                "--no-relay turns it off", _boolean),
        Setting("motd", "", "message of the day shown after the greeting", _text(4000)),
        Setting("udp-port", None, "UDP port for pushes and discovery (default: the same number "
                "as --port, or 9000; 0 turns UDP off)", _integer(0, 65535)),
        Setting("downloads", "downloads", "directory where pushed files are stored",
                _text(4096)),
        Setting("state-dir", "state", "directory of the server's database (tekcos.db: the file "
                "list, room topics and history, kept across restarts)", _text(4096)),
        Setting("max-file-size", 4 << 30, "largest file a push may offer, in bytes",
                _integer(0, (1 << 63) - 1)),
        Setting("max-message", 4096, "largest pushed message, in bytes", _integer(1, 65536)),
        Setting("max-transfers", 32, "pushes in progress at once", _integer(1, 10000)),
        Setting("transfer-timeout", 30.0, "seconds of silence after which a push is dropped "
                "(a file's part is kept for --resume-hours)", _number(1, 86400)),
        Setting("keep-days", 7.0, "days a file sent to someone (tekcos push --for) is kept "
                "once it is on the server, fetched or not", _number(0.001, 3650)),
        Setting("quota-per-sender", 2 << 30, "bytes kept for people from one sender address "
                "at most; an offer past it is refused", _integer(0, 1 << 62)),
        Setting("resume-hours", 24.0, "hours an interrupted file push is kept so that the same "
                "push run again continues it (0: never kept)", _number(0, 24 * 365)),
        Setting("scan-access", "operators", "who may /scan the LAN from the chat: operators, "
                "everyone or nobody", _choice("operators", "everyone", "nobody")),
        Setting("oper-password", "", "password for /oper (empty: nobody can become an "
                "operator)", _text(200)),
        Setting("scan-cooldown", 60.0, "seconds between two /scan runs", _number(0, 86400)),
        Setting("scan-iface", "", "interface for /scan (default: the default route's)",
                _text(64)),
        Setting("scan-network", "", "network for /scan (default: the interface's subnet)",
                _text(64)),
        Setting("web", "", "serve the web page (chat, file drop, neighbours, /metrics) on this "
                "port or endpoint ('8080', 'ssl:8443:privateKey=key.pem:certKey=cert.pem'); "
                "empty: no web page", _endpoint),
        Setting("web-origins", [], "other names browsers may reach the web page by (DNS names "
                "or origins such as 'https://chat.example.org' for a reverse proxy), comma-"
                "separated; its own addresses, host name and .local name are always allowed",
                _names),
        Setting("metrics-allow", [], "networks besides loopback that may read /metrics, comma-"
                "separated ('10.0.0.0/8,fd00::/8'); others get 403", _networks),
        Setting("web-downloads", False, "let browsers download received files from /files/ "
                "(off: nothing received is ever served back)", _boolean),
        Setting("mdns", True, "announce the server on the LAN over mDNS/DNS-SD (HOSTNAME.local, "
                "_tekcos._tcp for the chat, _http._tcp for the page); --no-mdns turns it off",
                _boolean),
        Setting("watch-interval", 30.0, "seconds between checks of the server's own address "
                "(announced in lobby when it changes; 0 = off)", _number(0, 86400)),
    ]
}

def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML config file; raise ConfigError with a one-line reason."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file: {path}") from None
    except OSError as e:
        raise ConfigError(f"--config: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--config: {path} is not valid TOML: {e}") from None
    for key in data:
        if key not in SETTINGS:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return data


def resolve(cli: dict[str, Any], file: dict[str, Any] | None = None,
            file_name: str = "config") -> dict[str, Any]:
    """Merge command line over file over defaults and validate every value.

    ``cli`` maps setting names to the raw strings given (``None`` = not given).
    Returns a dict with every setting name (dashes kept) mapped to a clean value.
    """
    file = file or {}
    result: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        raw = cli.get(name)
        origin = f"--{name}"
        if raw is None or raw == []:
            if name in file:
                raw, origin = file[name], f"{file_name}: {name}"
            else:
                result[name] = setting.default
                continue
        try:
            result[name] = setting.parse(raw)
        except ValueError as e:
            raise ConfigError(f"{origin}: {e}") from None
    if result["history-bytes"] > result["max-buffer"] // 2:
        # The history is replayed to every joiner and counts against their
        # output limit: a longer one would disconnect whoever joins.
        raise ConfigError(f"--history-bytes: must be at most half of --max-buffer "
                          f"({result['max-buffer'] // 2}), got {result['history-bytes']}")
    if result["workers"] > 1 and not result["redis"]:
        raise ConfigError("--workers: more than one worker needs --redis (the workers are "
                          "one hub through it)")
    if result["port"] is None and not result["listen"]:
        result["port"] = DEFAULT_PORT
    # The chat port people are told about (HELLO): --port, or the first TCP
    # endpoint of --listen.  UDP uses the same number unless told otherwise.
    result["chat-port"] = result["port"] or first_tcp_port(result["listen"])
    if result["udp-port"] is None:
        result["udp-port"] = result["chat-port"] or DEFAULT_PORT
    return result


def first_tcp_port(descriptions: list[str]) -> int | None:
    """The port of the first tcp/tcp6/ssl endpoint (or bare number), if any."""
    for desc in descriptions:
        if desc.isdecimal():   # a bare number means TCP
            return int(desc)
        kind, _, rest = desc.partition(":")
        if kind not in ("tcp", "tcp6", "ssl"):
            continue
        for field in rest.split(":"):
            name, eq, value = field.partition("=")
            value = value if eq else name
            if (not eq or name == "port") and value.isdecimal():
                return int(value)
    return None

