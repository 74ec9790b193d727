from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from promtest import PrometheusServer, SimExporter, utc_minute  # noqa: E402


@pytest.fixture
def sim_start() -> datetime:
    # Far enough back that the whole test stays in the past, near enough for Prometheus's
    # head block (it refuses samples more than an hour older than its newest).
    return utc_minute(datetime.now(timezone.utc) - timedelta(minutes=45))


@pytest.fixture
def exporter(sim_start):
    exp = SimExporter(sim_start, step_s=2)
    yield exp
    exp.stop()


@pytest.fixture
def prometheus(tmp_path, exporter):
    server = PrometheusServer(tmp_path, [f"127.0.0.1:{exporter.port}"]).start()
    yield server
    server.close()
