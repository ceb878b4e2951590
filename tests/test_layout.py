"""The package layout holds what docs/architecture.md says of it: the
dependency rules (and no import cycles), the sans-IO cores import no I/O,
every module that arms a timer is in the timers table, and every private
third-party API in use is in the table of debts."""
import ast
import pathlib
import re

import tekcos

PACKAGE = pathlib.Path(tekcos.__file__).parent
DOC = (PACKAGE.parent / "docs" / "architecture.md").read_text()
FEATURES = ("chat", "push", "scan")
SHARED = {"address", "admission", "exits", "identity", "ratelimit", "text", "config",
          "listening", "hello", "store", "delivery", "delivery_nodes", "compat", "hosts", "heap", "mdns"}
# No sockets, file system, clock, threads or Twisted (time is passed in).
SANS_IO = ["push/sender.py", "push/offering.py", "push/handshake.py", "push/receiver.py", "push/offers.py",
           "push/offer_desk.py", "push/incoming.py",
           "push/policy.py",
           "hosts.py", "push/congestion.py", "push/rtt.py",
           "push/wire.py", "scan/arp.py", "scan/ndp.py", "scan/service.py", "chat/session.py",
           "chat/names.py", "chat/lineedit.py", "text.py", "ratelimit.py", "admission.py",
           "delivery_nodes.py",
           "config.py", "federation/core.py", "federation/checks.py", "federation/url.py", "chat/detached.py"]
IO_MODULES = {"twisted", "socket", "os", "time", "threading", "select", "selectors",
              "subprocess", "concurrent", "psutil", "netifaces", "scapy", "fcntl", "termios",
              "tty", "resource", "shutil", "tempfile", "multiprocessing", "asyncio"}
# Plain modules that must stay free of Twisted, though they do I/O.
NO_TWISTED = ["chat/hub.py", "chat/commands.py", "chat/confusables.py", "hello.py",
              "identity.py", "address.py", "push/storage.py", "push/resume.py",
              "push/worker.py", "scan/iface.py", "scan/report.py", "web/origins.py",
              "store.py"]


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    """Module -> the tekcos modules it imports (anywhere in the file)."""
    return {name: {n for n in imported(path) if n in MODULES and n != name}
            for name, path in MODULES.items()}


def area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tekcos"


def test_dependency_rules():
    broken = []
    for module, targets in graph().items():
        here = area(module)
        for target in targets:
            there = area(target)
            if there == "tekcos" or there == here:
                continue
            if here in SHARED:
                ok = there in SHARED or (here == "hello" and
                                         target in ("tekcos.push", "tekcos.push.wire")) \
                    or (here == "config" and target == "tekcos.federation.url")
            elif here in FEATURES:
                ok = there in SHARED
            elif here == "web":
                ok = there in SHARED or there in ("chat", "push")
            elif here == "gui":      # a front end over the chat, push and scan engines
                ok = there in SHARED or there in FEATURES
            elif here == "federation":    # joins chat hubs: the hub, its names
                ok = there in SHARED or there == "chat"
            else:   # tap, cli: the composition roots
                ok = there not in ("tap", "cli")
            if not ok:
                broken.append(f"{module} imports {target}")
    assert broken == []


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node, [])
    assert cycles == []


def test_sans_io_cores_import_no_io_and_are_documented():
    for module in SANS_IO:
        used = {n.split(".")[0] for n in imported(PACKAGE / module)} & IO_MODULES
        assert used == set(), module
        stem = module.rsplit("/", 1)[-1]
        assert stem in DOC.split("## Sans-IO cores")[1].split("\n## ")[0], module


# The push engine's cores are sans-IO all the way down: nothing they import,
# directly or through other tekcos modules, does I/O (the storage and the
# clock are handed to them).
SANS_IO_DEEP = ["push/sender.py", "push/handshake.py", "push/receiver.py", "push/offers.py",
                "push/offer_desk.py", "push/incoming.py",
                "push/policy.py",
                "push/congestion.py", "push/rtt.py", "push/wire.py", "hosts.py"]


def test_the_push_cores_reach_no_io_through_what_they_import():
    edges = graph()
    found = {}
    for module in SANS_IO_DEEP:
        seen, todo = set(), [module_name(PACKAGE / module)]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(edges.get(name, ()))
        for name in seen:
            used = {n.split(".")[0] for n in imported(MODULES[name])} & IO_MODULES
            if used:
                found[f"{module} -> {name}"] = sorted(used)
    assert found == {}


def test_plain_modules_import_nothing_from_twisted():
    for module in NO_TWISTED:
        twisted = [n for n in imported(PACKAGE / module) if n.split(".")[0] == "twisted"]
        assert twisted == [], module


def test_every_module_that_arms_a_timer_is_in_the_timers_table():
    table = DOC.split("## Threads and timers")[1].split("\n## ")[0]
    arming = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                    if re.search(r"\bcallLater\(|LoopingCall\(|TimerService\(", p.read_text()))
    assert arming and [m for m in arming if f"| {m} |" not in table] == []


# Private names of Twisted and autobahn that the code relies on: (the name
# in the table, a pattern that finds its use).
PRIVATE = [("_tempDataLen", r"_tempDataLen"), ("_raiseSynchronously", r"_raiseSynchronously"),
           ("_disconnected", r"\._disconnected\b"), ("CONFIG_ATTRS", r"CONFIG_ATTRS"),
           ("_path", r"\"_path\""), ("_command", r"\"_command\""),
           ("Telnet._write", r"\(conch\.Telnet\):[\s\S]*def _write\("),
           ("dataBuffer", r"\.dataBuffer\b"), ("_connectedAddr", r"_connectedAddr")]


def test_private_third_party_apis_live_in_compat_each_listed_with_a_canary():
    table = DOC.split("## Private third-party APIs")[1].split("\n## ")[0]
    canaries = (PACKAGE.parent / "tests" / "test_compat.py").read_text()
    elsewhere, unlisted, unguarded = [], [], []
    for name, pattern in PRIVATE:
        for path in PACKAGE.rglob("*.py"):
            if re.search(pattern, path.read_text()) and path.name != "compat.py":
                elsewhere.append(f"{name} in {path.relative_to(PACKAGE)}")
        if f"`{name}" not in table and name not in table:
            unlisted.append(name)
        if name.split(".")[-1] not in canaries:
            unguarded.append(name)
    assert (elsewhere, unlisted, unguarded) == ([], [], [])


def test_the_namespace_lab_is_not_installed():
    assert not (PACKAGE / "netlab.py").exists()


def test_every_data_file_of_the_package_is_installed():
    import configparser
    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    declared = {
        f"{package.replace('.', '/')}/{pattern.strip()}"
        for package, patterns in config["options.package_data"].items()
        for pattern in patterns.split(",")
    }
    data = {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert data <= declared


def test_every_package_is_installed():
    # A package missing here works from the checkout and is absent from
    # an installed tekcos (federation was, once).
    import configparser
    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    declared = set(config["options"]["packages"].split())
    found = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert found <= declared


def test_the_readme_lists_every_chat_command():
    from tekcos.chat.commands import HELP
    readme = (PACKAGE.parent / "README.md").read_text()
    missing = [usage for usage, _ in HELP if f"`{usage}`" not in readme]
    assert missing == []


def test_every_server_a_test_or_benchmark_starts_says_whether_it_announces_itself():
    """mDNS is on by default, and announcing multicasts on the machine's
    interfaces: every ``twistd tekcos`` a test or a benchmark starts says
    ``--no-mdns`` (or ``--mdns`` inside a namespace lab it made)."""
    launch = re.compile(r'"-n",[^\]\n]*?(?:\n[^\]\n]*?)?"tekcos",\s*("[^"]*")')
    seen = []
    for path in sorted([*(PACKAGE.parent / "tests").rglob("*.py"), *(PACKAGE.parent / "bench").glob("*.py")]):
        for match in launch.finditer(path.read_text()):
            seen.append((str(path.relative_to(PACKAGE.parent)), match.group(1)))
    assert len(seen) >= 10
    assert [s for s in seen if s[1] not in ('"--no-mdns"', '"--mdns"')] == []
