"""Running tekcos as another, unprivileged user (for example uid 65534).

The checkout may be private (a ``mktemp -d`` folder, mode 700, or a clone
under ``/root``), and the installed package may sit in root's own Python
tree: neither is readable by that user.  :func:`as_user` therefore copies
the ``tekcos`` package under test into a world-readable folder and runs
``python -m tekcos.cli`` from there with ``PYTHONPATH`` pointing at it.
Before that it checks that the user can start the interpreter and import
the package, and fails the test with one message naming the permission
problem instead of letting a later assertion fail for a misleading reason.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import tekcos


def _readable_copy() -> str:
    """A fresh world-readable folder holding a copy of the tekcos package."""
    folder = tempfile.mkdtemp(prefix="tekcos-asuser-")
    os.chmod(folder, 0o755)
    target = os.path.join(folder, "tekcos")
    shutil.copytree(os.path.dirname(tekcos.__file__), target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for top, dirs, files in os.walk(target):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o755)
        for name in files:
            os.chmod(os.path.join(top, name), 0o644)
    return folder


class AsUser:
    """``run(*args)`` runs ``tekcos ARGS`` as ``user``, optionally inside a
    network namespace; ``close()`` removes the copy."""

    def __init__(self, user: str, netns: str | None = None):
        self.user = user
        self.netns = netns
        self.folder = _readable_copy()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = self.folder
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env = env
        probe = self._run([sys.executable, "-c", "import tekcos.cli"], timeout=60)
        if probe.returncode != 0:
            self.close()
            pytest.fail(f"user {user} cannot run {sys.executable} or import tekcos from "
                        f"{self.folder} (a permission problem: the interpreter or its "
                        f"standard library is not readable by that user): "
                        f"{probe.stderr.strip()[-300:]}", pytrace=False)

    def _prefix(self) -> list[str]:
        cmd = ["ip", "netns", "exec", self.netns] if self.netns else []
        return cmd + ["setpriv", "--reuid", self.user, "--regid", self.user, "--clear-groups"]

    def _run(self, argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self._prefix() + argv, capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder, env=self.env, **kwargs)

    def run(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        return self._run([sys.executable, "-m", "tekcos.cli", *args], timeout, **kwargs)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
