"""Observing the daemon: every metric the issue names exists and moves (fresh registry per
test), and /healthz fails while the loop is stuck."""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

from prometheus_client import CollectorRegistry

from daemon_helpers import free_port, seed_plan, utc, wait_for, write_config
from prewarm import config
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.metrics import Metrics, MetricsServer
from prewarm.store import CountRow, Store

T0 = utc(2026, 3, 2, 8)
FORECAST = '[forecast]\nmodel = "test-repeat-day"\nhistory = "25h"\nhorizon = "1h"\nstep = "5m"\nresolution = "fixed"\n'


def samples(metrics: Metrics) -> dict[tuple, float]:
    out = {}
    for family in metrics.registry.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snap, name, **labels):
    return snap.get((name, tuple(sorted(labels.items()))))


def test_every_metric_exists_and_moves(tmp_path, sqlite_url, faulty):
    store = Store(sqlite_url)
    rows = [CountRow("api", T0 - timedelta(minutes=m), 30 + (m % 7), cold_starts=m % 2) for m in range(1, 26 * 60)]
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("api"), rows)
    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url,
                                        [{"name": "api", "dir": faulty.dir, "max_workers": 20}], extra=FORECAST))
    metrics = Metrics(CollectorRegistry())
    sim = SimulatedScheduler(T0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store, metrics=metrics)
    before = samples(metrics)
    daemon._lead()
    exposed = samples(metrics)
    # Failure counters exist at 0 from the start, so rate() and increase() see the first failure.
    assert value(exposed, "prewarm_errors_total", stage="provider", endpoint="api") == 0
    assert value(exposed, "prewarm_actions_total", provider="faulty", result="error") == 0
    assert value(exposed, "prewarm_target_cold_start_rate", endpoint="api") == 0.02
    sim.run_until(T0 + timedelta(minutes=2, seconds=45))
    # The reconcile at 2:30 saw the plan issued by the cycle at 2:00.
    assert value(samples(metrics), "prewarm_plan_age_seconds", endpoint="api") == 30
    # Planned at 2:00 from the forecast made at the first cycle or at its staggered refresh.
    assert 0 <= value(samples(metrics), "prewarm_forecast_age_seconds", endpoint="api") <= 120
    faulty.control(read_fail=True)
    sim.run_until(T0 + timedelta(minutes=3))
    after = samples(metrics)
    assert not sim.errors

    moved = {
        "forecast mean": value(after, "prewarm_forecast_requests_per_minute", endpoint="api", band="mean"),
        "forecast quantile": value(after, "prewarm_forecast_requests_per_minute", endpoint="api", band="hi-80"),
        "planned": value(after, "prewarm_planned_warm_workers", endpoint="api"),
        "actual": value(after, "prewarm_actual_warm_workers", endpoint="api"),
        "desired": value(after, "prewarm_provider_desired_workers", endpoint="api"),
        "cold-start rate": value(after, "prewarm_observed_cold_start_rate", endpoint="api"),
        "actual requests": value(after, "prewarm_observed_requests_per_minute", endpoint="api"),
        "actions": value(after, "prewarm_actions_total", provider="faulty", result="ok"),
        "provider latency": value(after, "prewarm_provider_latency_seconds_count", provider="faulty", verb="apply"),
        "provider errors": value(after, "prewarm_errors_total", stage="provider", endpoint="api"),
        "cycle duration": value(after, "prewarm_cycle_duration_seconds_count"),
        "last success": value(after, "prewarm_last_successful_cycle_timestamp_seconds"),
        "leader": value(after, "prewarm_leader"),
    }
    assert {k: v for k, v in moved.items() if not v or v <= 0} == {}
    assert 30 <= moved["actual requests"] <= 36  # the largest of the last 5 minutes: 30 + (m % 7)
    assert 0.01 < moved["cold-start rate"] < 0.02  # one cold start every other minute, ~33 requests a minute
    assert moved["forecast quantile"] > moved["forecast mean"]
    assert moved["planned"] == moved["desired"] == moved["actual"]
    for key in ("prewarm_actions_total", "prewarm_cycle_duration_seconds_count"):
        assert not any(k[0] == key and v > 0 for k, v in before.items())
    daemon._step_down()
    assert value(samples(metrics), "prewarm_leader") == 0
    store.close()


def test_healthz_fails_while_the_loop_is_stuck(tmp_path, sqlite_url, faulty):
    store = Store(sqlite_url)
    now = datetime.now(timezone.utc)
    seed_plan(store, "api", now, [(now, 2)])
    store.close()
    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url, [{"name": "api", "dir": faulty.dir}],
                                        daemon={"reconcile_interval": "0.5s", "cycle_interval": "1h"}))
    metrics = Metrics(CollectorRegistry())
    daemon = Daemon(settings, metrics=metrics)
    server = MetricsServer(metrics, f"127.0.0.1:{free_port()}", daemon.healthy).start()
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()

    def health() -> int:
        try:
            with urllib.request.urlopen(f"http://{server.address}/healthz", timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        wait_for(lambda: faulty.target("api") == 2, 20, what="the first apply")
        assert health() == 200
        faulty.control(read_block=True)  # every reconcile now hangs in the provider
        stuck = time.monotonic()
        wait_for(lambda: health() == 503, 15, poll=0.2, what="/healthz to fail")
        print(f"/healthz failed {time.monotonic() - stuck:.1f}s after the loop got stuck")
        with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=2) as resp:
            assert resp.status == 200  # the process still answers: only the loop is stuck
        faulty.control(read_block=False)
        wait_for(lambda: health() == 200, 10, poll=0.2, what="/healthz to recover")
    finally:
        faulty.control(read_block=False)
        daemon.stop()
        runner.join(15)
        server.stop()
    assert not runner.is_alive()


def test_json_logs_carry_endpoint_fields(tmp_path, sqlite_url, faulty):
    import json
    import logging

    from prewarm.logs import JsonFormatter

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.records = []

        def emit(self, record):
            self.records.append(record)

    store = Store(sqlite_url)
    seed_plan(store, "api", T0, [(T0, 3)])
    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url, [{"name": "api", "dir": faulty.dir}]))
    sim = SimulatedScheduler(T0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store)
    logger, keep = logging.getLogger("prewarm.apply"), Keep()
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        daemon._lead()
        sim.run_until(T0 + timedelta(seconds=1))
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    applied = [r for r in keep.records if "warm workers" in r.getMessage()]
    assert applied
    doc = json.loads(JsonFormatter().format(applied[0]))
    assert doc["endpoint"] == "api" and doc["target"] == 3 and doc["result"] == "ok" and doc["level"] == "info"
    store.close()


def test_a_reload_exports_the_new_endpoints_series(tmp_path, sqlite_url, faulty):
    """An endpoint added by SIGHUP has its failure counters at 0 and its target exported at
    once, as the ones there at leading do; a changed target is exported."""
    store = Store(sqlite_url)
    old = write_config(tmp_path / "old.toml", sqlite_url, [{"name": "api", "dir": faulty.dir}])
    new = write_config(tmp_path / "new.toml", sqlite_url, [{"name": "api", "dir": faulty.dir},
                                                         {"name": "img", "dir": faulty.dir}],
                       extra="[planner]\ntarget_cold_rate = 0.05\n")
    metrics = Metrics(CollectorRegistry())
    sim = SimulatedScheduler(T0)
    daemon = Daemon(config.load(old), clock=sim.clock, scheduler_factory=lambda: sim, store=store, metrics=metrics,
                    reload=lambda: config.load(new))
    daemon._lead()
    assert value(samples(metrics), "prewarm_errors_total", stage="apply", endpoint="img") is None
    assert daemon.reload()
    snap = samples(metrics)
    assert value(snap, "prewarm_errors_total", stage="apply", endpoint="img") == 0
    assert value(snap, "prewarm_target_cold_start_rate", endpoint="img") == 0.05
    assert value(snap, "prewarm_target_cold_start_rate", endpoint="api") == 0.05
    daemon._step_down()
    store.close()


def test_cannot_lead_yet_is_logged_once_while_it_lasts(tmp_path, sqlite_url, faulty, caplog):
    # Leading fails on every poll (here: the runtime cannot be built): one error line when it
    # starts, not one per poll, and one line when leading works after all.
    import logging

    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url, [{"name": "api", "dir": faulty.dir}]))
    daemon = Daemon(settings)
    attempts = []

    def failing_lead():
        attempts.append(1)
        if len(attempts) <= 5:
            raise RuntimeError("schema check refused")

    daemon._lead = failing_lead
    with caplog.at_level(logging.INFO, logger="prewarm"):
        for _ in range(6):
            daemon._start_leading()
    lines = [r.getMessage() for r in caplog.records if "lead" in r.getMessage()]
    assert len(attempts) == 6
    assert [m for m in lines if m.startswith("cannot lead yet")] == ["cannot lead yet: schema check refused"]
    assert any(m.startswith("leading after all (after 5 failures") for m in lines)
