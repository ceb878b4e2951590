"""The shipped systemd units: valid for systemd, and consistent with the
README's install (a venv in /opt/tekcos, state in /var/lib/tekcos)."""
import configparser
import os
import pathlib
import shutil
import subprocess

import pytest

CONF = pathlib.Path(__file__).parent.parent / "conf"
UNITS = [CONF / "tekcos.service", CONF / "tekcos-netraw.service"]


def service_section(path) -> dict:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return dict(parser["Service"])


def test_units_run_the_venv_twistd_with_downloads_in_the_state_directory():
    for unit in UNITS:
        service = service_section(unit)
        command = service["ExecStart"].split()
        assert command[0] == "/opt/tekcos/bin/twistd", unit
        assert service["StateDirectory"] == "tekcos"
        downloads = command[command.index("--downloads") + 1]
        assert downloads.startswith("/var/lib/tekcos/"), unit
        assert service["WorkingDirectory"] == "/var/lib/tekcos"
        assert int(service["LimitNOFILE"]) >= 10_000 + 256   # --max-clients + reserve
    assert "CAP_NET_RAW" in service_section(CONF / "tekcos-netraw.service")["AmbientCapabilities"]


def test_systemd_accepts_the_units():
    analyze = shutil.which("systemd-analyze")
    ready = analyze and os.access("/opt/tekcos/bin/twistd", os.X_OK)
    if not ready:
        # CI installs systemd and the README's venv (see .ci/run).
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail("systemd-analyze or /opt/tekcos/bin/twistd is missing")
        pytest.skip("needs systemd-analyze and the venv in /opt/tekcos")
    result = subprocess.run([analyze, "verify", *map(str, UNITS)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # Warnings about these units (not systemd's own) would show up here.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "tekcos" in line]
    assert problems == []
