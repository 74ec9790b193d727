"""Daemon tests: the `faulty` provider plugin on the path (in this process and in the
`prewarm` processes the tests start), helpers importable as `daemon_helpers`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE / "plugin"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture(autouse=True, scope="session")
def faulty_plugin():
    from prewarm.providers import registry
    registry.available.cache_clear()
    assert "faulty" in registry.available(), "the test provider plugin is not visible"
    yield
    registry.available.cache_clear()


@pytest.fixture
def faulty(tmp_path):
    from daemon_helpers import Faulty
    return Faulty(tmp_path / "provider")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'prewarm.db'}"


@pytest.fixture
def procs():
    """`prewarm` processes a test started; any still running at the end is killed."""
    running = []
    yield running
    for p in running:
        if p.poll() is None:
            p.kill()
            p.wait(10)
