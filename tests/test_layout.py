"""The package layout holds: a feature package (chat, push, scan) imports
from another feature only through the shared top-level modules, and the
sans-IO cores import nothing from Twisted."""
import ast
import pathlib

import tekcos

PACKAGE = pathlib.Path(tekcos.__file__).parent
FEATURES = ("chat", "push", "scan")
SANS_IO = ["chat/hub.py", "chat/session.py", "chat/commands.py", "chat/names.py",
           "chat/lineedit.py", "chat/confusables.py", "text.py", "hello.py", "push/wire.py", "push/rtt.py", "push/sender.py",
           "push/receiver.py", "push/storage.py", "push/resume.py", "push/congestion.py",
           "push/worker.py", "scan/arp.py", "scan/iface.py",
           "scan/report.py", "ratelimit.py", "address.py", "exits.py"]


def imported(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_features_do_not_import_each_other():
    crossings = []
    for feature in FEATURES:
        for path in (PACKAGE / feature).glob("*.py"):
            for name in imported(path):
                parts = name.split(".")
                if parts[0] == "tekcos" and len(parts) > 1 and parts[1] in FEATURES \
                        and parts[1] != feature:
                    crossings.append(f"{feature}/{path.name} imports {name}")
    assert crossings == []


def test_sans_io_cores_import_nothing_from_twisted():
    for module in SANS_IO:
        twisted = [n for n in imported(PACKAGE / module) if n.split(".")[0] == "twisted"]
        assert twisted == [], module


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


def test_the_readme_lists_every_chat_command():
    from tekcos.chat.commands import HELP
    readme = (PACKAGE.parent / "README.md").read_text()
    missing = [usage for usage, _ in HELP if f"`{usage}`" not in readme]
    assert missing == []
