"""Fixtures shared by every test package, and the hypothesis profiles."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.memory import Server
from tests.twistd import TwistdServer

# CI: the same examples every run (derandomized), and a failing example is
# printed with the seed that reproduces it.  Locally, HYPOTHESIS_PROFILE=deep
# explores many more scenarios.
settings.register_profile("ci", max_examples=150, derandomize=True, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=2000, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    """The test layers, by what a test needs (see docs/architecture.md):
    a namespace lab (``netns``: root, ip, nft), a real ``twistd`` or other
    subprocess (``slow``), a browser (``browser``).  ``netns`` and
    ``browser`` tests are ``slow`` too, so ``-m "not slow"`` is the
    in-memory and quick loopback layer."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "lab" in names:
            item.add_marker(pytest.mark.netns)
        if "start" in names or item.get_closest_marker("netns") \
                or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def server():
    return Server()


@pytest.fixture
def start():
    """Start real ``twistd tekcos`` servers; each is stopped afterwards."""
    servers = []

    def starter(*args, **kwargs):
        started = TwistdServer(*args, **kwargs)
        servers.append(started)
        return started

    yield starter
    for started in servers:
        started.stop()


@pytest.fixture
def lab():
    """A network-namespace lab, removed afterwards.  Skipped where namespaces
    cannot be made, except under TEKCOS_REQUIRE_NETNS=1 (CI): a failure there."""
    from tests import netlab
    try:
        made = netlab.Lab()
    except netlab.LabUnavailable as e:
        if os.environ.get("TEKCOS_REQUIRE_NETNS") == "1":
            pytest.fail(f"TEKCOS_REQUIRE_NETNS=1 but {e}")
        pytest.skip(str(e))
    try:
        yield made
    finally:
        made.close()
