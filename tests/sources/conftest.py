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


@pytest.fixture(scope="session")
def cw_moto():
    """moto in server mode with the CloudWatch front before it (credentials: moto's dummies)."""
    import os

    from moto.server import ThreadedMotoServer

    from cw_front import CloudWatchFront

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "prewarm-fake-secret-7f3a",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent/prewarm-test-aws-config",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/prewarm-test-aws-credentials"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    front = CloudWatchFront(host, port)
    yield front, f"http://{host}:{port}"
    front.stop()
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
