"""The local provider starts real worker processes that load before they answer."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from datetime import datetime, timezone

import pytest

from prewarm.endpoint_policy import capacity_model
from prewarm.providers.base import EndpointRef
from prewarm.providers.local import LocalConfig, LocalProvider
from prewarm.readiness import learned_lead, watch


@pytest.fixture
def provider(tmp_path):
    p = LocalProvider(LocalConfig(load_time_s=0.6, state_dir=str(tmp_path / "w")), EndpointRef("chat", 0, 3))
    yield p
    p.stop_all()


def test_workers_load_then_serve_and_stop(provider, tmp_path):
    asked = time.monotonic()
    res = provider.apply(2)
    assert res.changed and res.previous == 0 and len(res.detail["started"]) == 2
    state = provider.read()
    assert state.desired == 2 and state.ready == 0  # still loading: connections refused
    report = provider.wait_ready(2, timeout_s=20)
    assert report.ready and time.monotonic() - asked >= 0.6  # each worker loads for 0.6 s
    port = provider.read().detail["ports"][0]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/infer", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["output"] == "ok"
    # Idempotent, and a new provider object (a later `prewarm once`) sees the same workers.
    again = LocalProvider(provider.config, provider.endpoint)
    assert again.apply(2).changed is False and again.read().ready == 2
    pids = again.read().detail["pids"]
    assert again.apply(1).changed and again.read().desired == 1
    stopped = [p for p in pids if p not in again.read().detail["pids"]]
    assert len(stopped) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(stopped[0], 0)


def test_target_is_clamped_to_max_workers(provider):
    assert provider.apply(10).target == 3 and provider.read().desired == 3


def test_readiness_is_measured_recorded_and_learned(provider, store):
    from prewarm import config

    class Rt:  # what watch() needs of the runtime: the store
        pass
    rt = Rt()
    rt.store = store
    settings = config.Settings.model_validate({"endpoints": [{"name": "chat", "capacity": {
        "cold_start": "30s", "cold_start_learn": True, "cold_start_percentile": 90}}]})
    ep = settings.endpoints[0]
    for n in range(1, 3):
        provider.apply(n)
        watch(rt, ep, provider, n, datetime.now(timezone.utc), timeout_s=20, background=False)
    measured = store.ready_durations("chat")
    assert len(measured) == 2 and all(0.5 <= s < 20 for s in measured)
    assert capacity_model(ep, measured).cold_start_s == 30  # too few samples: configured lead
    samples = measured + [1.0, 1.2, 0.9, 5.0]
    assert learned_lead(samples, 90) == 5.0
    assert capacity_model(ep, samples).cold_start_s == 5.0


def test_a_recycled_pid_is_not_taken_for_a_worker(provider):
    # A live process (this test) whose start time differs from the recorded one.
    (provider.dir / "worker-1.json").write_text(json.dumps(
        {"pid": os.getpid(), "port": 1, "started_at": 0, "start_ticks": 1}))
    assert provider.read().desired == 0
    assert not (provider.dir / "worker-1.json").exists()
