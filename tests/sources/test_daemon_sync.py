"""The daemon's sync job (leader only) against a real Prometheus, on simulated time: it fills
the store every cycle (cold starts too: they reach the tuner's input and the cold-start-rate
metric); when Prometheus goes away the cycles keep planning on what is stored
(fail warm), and the lag and the errors show in the metrics, `status` and `explain`."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from prewarm import config
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.metrics import Metrics
from prewarm.store import Store
from promtest import write_config

pytestmark = pytest.mark.slow


def test_daemon_syncs_each_cycle_and_fails_warm(tmp_path, prometheus, exporter, sim_start, capsys):
    from prewarm.cli.main import main

    m = lambda minute: sim_start + timedelta(minutes=minute)  # noqa: E731
    for minute in range(1, 6):
        exporter.at(m(minute) + timedelta(seconds=30), "requests", minute)
    exporter.at(m(2) + timedelta(seconds=30), "cold", 1)
    exporter.at(m(4) + timedelta(seconds=30), "cold", 2)
    path = write_config(tmp_path, prometheus.url, "sum(increase(test_requests_total[1m]))",
                        shared='delay = "0s"', top='[daemon]\ncycle_interval = "60s"',
                        endpoint="cold_starts_query = 'sum(increase(test_cold_starts_total[1m]))'")
    settings = config.load(path)
    store = Store(settings.store.url)
    metrics = Metrics(CollectorRegistry())
    exporter.limit = m(6)
    prometheus.wait_scraped(m(6))
    sim = SimulatedScheduler(m(6))
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store, metrics=metrics)
    try:
        daemon._lead()
        sim.run_until(m(6))
        assert (m(6), "sync") in sim.ran
        assert [r[1] for r in store.history("chat", sim_start, m(6))] == [0, 1, 2, 3, 4, 5]
        assert metrics.registry.get_sample_value("prewarm_source_lag_seconds", {"endpoint": "chat"}) == 0
        sim.run_until(m(7))
        assert store.current_plan("chat"), "the cycle planned from the synced history"
        # Cold starts from the source reach the tuner's input and the metric: 3 of 15 requests.
        assert metrics.registry.get_sample_value("prewarm_observed_cold_start_rate", {"endpoint": "chat"}) == 0.2

        prometheus.stop()
        sim.run_until(m(10))
        assert [t for t, job in sim.ran if job == "sync"] == [m(6), m(7), m(8), m(9), m(10)]
        assert sim.errors == []
        assert metrics.registry.get_sample_value(
            "prewarm_source_errors_total", {"endpoint": "chat", "source": "prometheus"}) == 3
        # The store reached m(7) (the sync at m(7) still found Prometheus); three minutes behind now.
        assert metrics.registry.get_sample_value("prewarm_source_lag_seconds", {"endpoint": "chat"}) == 180
        assert store.current_plan("chat"), "plans keep running on what is stored"
    finally:
        daemon._step_down()
        store.close()

    capsys.readouterr()
    main(["--config", str(path), "status", "--json"])
    doc = json.loads(capsys.readouterr().out)
    src = doc["endpoints"][0]["source"]
    assert src["kind"] == "prometheus" and src["failures"] == 3 and "cannot reach" in src["error"]
    main(["--config", str(path), "explain", "chat"])
    out = capsys.readouterr().out
    assert "min behind: source cannot reach" in out
