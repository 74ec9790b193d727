"""Faults, injected one at a time into a daemon driven on simulated time: the provider's end
state and the audit log (the `actions` table) say it failed warm."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from daemon_helpers import fresh_pg, proxied, seed_plan, utc, write_config
from tcpproxy import TcpProxy
from prewarm import config
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.metrics import Metrics
from prewarm.store import CountRow, Store

T0 = utc(2026, 3, 2, 8)


def sim_daemon(settings, store, metrics=None):
    sim = SimulatedScheduler(T0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store, metrics=metrics)
    daemon._lead()
    return sim, daemon


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def ok_actions(store, endpoint="api"):
    return [(a["ts"], a["requested"]["target"]) for a in store.actions(endpoint) if a["result"] == "ok"]


def counter(metrics, name, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def settings_for(tmp_path, url, faulty, **daemon):
    return config.load(write_config(tmp_path / "prewarm.toml", url,
                                    [{"name": "api", "dir": faulty.dir, "max_workers": 10}], daemon=daemon))


@pytest.mark.postgres
def test_database_unreachable_keeps_the_last_plan_and_raises_only(tmp_path, pg_url, faulty):
    url = fresh_pg(pg_url)
    from sqlalchemy.engine import make_url
    u = make_url(url)
    proxy = TcpProxy(u.host, u.port or 5432)
    proxied = u.set(port=proxy.port).render_as_string(hide_password=False)
    store = Store(proxied)
    seed_plan(store, "api", T0, [(T0, 1), (at(10), 4), (at(40), 1)])
    metrics = Metrics(CollectorRegistry())
    settings = settings_for(tmp_path, proxied, faulty, cycle_interval="1h")
    try:
        sim, daemon = sim_daemon(settings, store, metrics)
        sim.run_until(at(1))
        assert faulty.target("api") == 1
        proxy.cut()
        sim.run_until(at(15))
        assert faulty.target("api") == 4, "the warm-up in the last plan read is applied with the database down"
        sim.run_until(at(45))
        assert faulty.target("api") == 4, "a scale-down is not applied from a plan that may be out of date"
        assert counter(metrics, "prewarm_errors_total", stage="store", endpoint="api") > 0
        proxy.restore()
        sim.run_until(at(46))
        assert faulty.target("api") == 1, "with the database back, the plan in force applies"
        assert not sim.errors
        # The warm-up made while the database was down reached the audit log afterwards, at its time.
        assert ok_actions(store) == [(T0, 1), (at(10), 4), (at(45.5), 1)]
        assert [c["target"] for c in faulty.changes()] == [1, 4, 1]
    finally:
        proxy.close()
        store.close()


def test_forecast_failing_keeps_the_last_plan(tmp_path, sqlite_url, faulty, monkeypatch):
    import prewarm.forecasting

    def broken(*args, **kwargs):
        raise RuntimeError("forecaster crashed (injected)")

    monkeypatch.setattr(prewarm.forecasting, "forecast_endpoints", broken)
    store = Store(sqlite_url)
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("api"),
                            [CountRow("api", T0 - timedelta(minutes=m), 10) for m in range(1, 120)])
    seed_plan(store, "api", T0, [(T0, 1), (at(10), 3), (at(20), 0)])
    metrics = Metrics(CollectorRegistry())
    sim, daemon = sim_daemon(settings_for(tmp_path, sqlite_url, faulty, cycle_interval="1m"), store, metrics)
    sim.run_until(at(25))
    assert faulty.target("api") == 3, "the last plan's warm-up applies; its scale-down, now stale, does not"
    assert ok_actions(store) == [(T0, 1), (at(10), 3)]
    assert counter(metrics, "prewarm_errors_total", stage="forecast", endpoint="api") >= 20
    assert metrics.registry.get_sample_value("prewarm_last_successful_cycle_timestamp_seconds") == 0
    assert not sim.errors
    store.close()


def test_provider_read_failing_applies_raises_only(tmp_path, sqlite_url, faulty):
    store = Store(sqlite_url)
    seed_plan(store, "api", T0, [(T0, 2), (at(5), 5), (at(10), 1)])
    metrics = Metrics(CollectorRegistry())
    sim, daemon = sim_daemon(settings_for(tmp_path, sqlite_url, faulty, cycle_interval="1h"), store, metrics)
    sim.run_until(at(1))
    faulty.control(read_fail=True)
    sim.run_until(at(6))
    assert faulty.target("api") == 5, "a raise above what the provider was last told is safe without a read"
    sim.run_until(at(12))
    assert faulty.target("api") == 5, "a scale-down is not sent while the provider's state is unknown"
    assert counter(metrics, "prewarm_errors_total", stage="provider", endpoint="api") > 0
    faulty.control(read_fail=False)
    sim.run_until(at(13))
    assert faulty.target("api") == 1
    assert ok_actions(store) == [(T0, 2), (at(5), 5), (at(12.5), 1)]
    assert not sim.errors
    store.close()


def test_throttling_backs_off_without_dropping_or_doubling(tmp_path, sqlite_url, faulty):
    store = Store(sqlite_url)
    seed_plan(store, "api", T0, [(at(1), 3), (at(5), 6)])
    # The retry deadline is min(30 s, reconcile interval): 5 s always holds three jittered
    # backoffs (at most 0.4 + 0.8 + 1.6 s), so the first change is never recorded as an error.
    sim, daemon = sim_daemon(settings_for(tmp_path, sqlite_url, faulty, cycle_interval="1h",
                                          reconcile_interval="5s"), store)
    # Throttled three times, then accepted, within one apply's retry deadline.
    faulty.control(throttle=3)
    sim.run_until(at(1))
    attempts = faulty.calls("apply")
    assert [c["result"] for c in attempts] == ["throttled"] * 3 + ["started", "done"]
    gaps = [b["t"] - a["t"] for a, b in zip(attempts, attempts[1:4])]
    assert all(g > 0 for g in gaps) and sum(gaps) > 0.05, f"no backoff between attempts: {gaps}"
    assert faulty.target("api") == 3
    # Throttled past the deadline: the apply is recorded as an error and tried again by the
    # next pass, which sends it once.
    faulty.control(throttle=10_000)
    sim.run_until(at(5))
    faulty.control(throttle=0)
    sim.run_until(at(5) + timedelta(seconds=6))
    assert faulty.target("api") == 6
    assert [c["target"] for c in faulty.changes()] == [3, 6], "each change reached the provider exactly once"
    results = [(a["requested"]["target"], a["result"], a["retryable"]) for a in store.actions("api")]
    assert results[0] == (3, "ok", None)
    assert results[1] == (6, "error", True)
    assert results[-1] == (6, "ok", None) and [r for r in results if r[1] == "ok"] == [(3, "ok", None), (6, "ok", None)]
    assert not sim.errors
    store.close()


def test_a_cycle_due_while_one_runs_is_skipped(tmp_path, sqlite_url, faulty, monkeypatch):
    """The start-up job's cycle and the interval job's are different jobs to the scheduler: a
    first cycle that outlasts the interval must not run beside the next one (both would write
    a current plan for the same endpoint)."""
    import threading

    from prewarm import daemon as daemon_module

    store = Store(sqlite_url)
    sim, daemon = sim_daemon(settings_for(tmp_path, sqlite_url, faulty), store)
    entered, release, calls = threading.Event(), threading.Event(), []

    def slow_plan_cycle(rt, now):
        calls.append(now)
        entered.set()
        release.wait(10)
        return {}

    monkeypatch.setattr(daemon_module, "plan_cycle", slow_plan_cycle)
    first = threading.Thread(target=daemon.cycle)
    first.start()
    assert entered.wait(10)
    daemon.cycle()  # due while the first runs: skipped, at once
    assert len(calls) == 1
    release.set()
    first.join(10)
    daemon.cycle()  # the next one runs again
    assert len(calls) == 2
    daemon._step_down()
    store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("spooled", [True, False])
def test_audit_records_of_an_outage_survive_a_crash_through_the_spool(tmp_path, pg_url, faulty, spooled):
    """The database goes away, a warm-up is applied (its audit record cannot be written), and
    the daemon dies before the database is back. With the spool the next daemon writes the
    record, at its time; kept in memory only ([daemon] audit_spool = "") it is lost."""
    url = fresh_pg(pg_url)
    from sqlalchemy.engine import make_url
    u = make_url(url)
    proxy = TcpProxy(u.host, u.port or 5432)
    proxied = u.set(port=proxy.port).render_as_string(hide_password=False)
    spool = tmp_path / "spool" / "audit.jsonl"
    store = Store(proxied)
    seed_plan(store, "api", T0, [(T0, 1), (at(10), 4)])
    settings = settings_for(tmp_path, proxied, faulty, cycle_interval="1h",
                            audit_spool=str(spool) if spooled else "")
    try:
        sim, _crashed = sim_daemon(settings, store)
        sim.run_until(at(1))
        proxy.cut()
        sim.run_until(at(15))
        assert faulty.target("api") == 4, "the warm-up is applied with the database down"
        assert spool.exists() == spooled
        # The daemon dies here (nothing stops it, nothing flushes); the database comes back.
        proxy.restore()
        again = Store(proxied)
        sim2 = SimulatedScheduler(at(16))
        Daemon(settings, clock=sim2.clock, scheduler_factory=lambda: sim2, store=again)._lead()
        sim2.run_until(at(17))
        expected = [(T0, 1), (at(10), 4)] if spooled else [(T0, 1)]
        assert ok_actions(again) == expected
        assert not spool.exists(), "written once, the spool is gone"
        assert [c["target"] for c in faulty.changes()] == [1, 4], "nothing applied twice"
        again.close()
    finally:
        proxy.close()
        store.close()


def test_a_standby_writes_the_audit_spool_its_host_kept(tmp_path, sqlite_url, faulty):
    """A leader that died during an outage comes back as a standby (another host leads now):
    it never runs apply, but it writes the records its spool kept once the database answers."""
    from prewarm.audit_spool import AuditSpool

    class AnotherHostLeads:
        def try_acquire(self) -> bool:
            return False

        def release(self) -> None:
            pass

    spool = AuditSpool(tmp_path / "spool" / "audit.jsonl")
    spool.append("api", dict(ts=at(10), provider="faulty", verb="apply", requested={"target": 4},
                             reason={"why": "forecast"}, result="ok", error=None, retryable=None,
                             duration_ms=3.0, command_id=None))
    settings = settings_for(tmp_path, sqlite_url, faulty, audit_spool=str(spool.path))
    store = Store(sqlite_url)
    try:
        daemon = Daemon(settings, lock=AnotherHostLeads(), store=store)
        daemon._tick()
        assert not daemon.leading
        assert ok_actions(store) == [(at(10), 4)]
        assert not spool, "written once, the spool is gone"
        assert faulty.changes() == [], "a standby never acts"
    finally:
        store.close()


@pytest.fixture(params=[pytest.param("pg_url", marks=pytest.mark.postgres),
                        pytest.param("maria_url", marks=pytest.mark.mariadb)], ids=["postgresql", "mariadb"])
def server_url(request):
    return fresh_pg(request.getfixturevalue(request.param))


@pytest.mark.parametrize("lock_when_back", ["free", "taken"])
def test_a_leader_cut_off_from_the_database_applies_the_raises_it_read(tmp_path, server_url, faulty,
                                                                       lock_when_back):
    """Issue 12 item 3: leading with the lock, a raise 3 -> 6 read, the database cut off. The lock
    is lost (the database cannot be asked whether another daemon leads), and the raise still
    applies at its time, as a raise to an absolute target is safe beside another leader; the
    plan's scale-down does not. When the database answers: with the lock free this daemon leads
    again and the plan in force applies; with another daemon leading, nothing more is done."""
    from prewarm import leader
    from prewarm.apply import Mandate

    proxy, url = proxied(server_url)
    store = Store(url)
    seed_plan(store, "api", T0, [(T0, 3), (at(10), 6), (at(20), 2), (at(30), 8)])
    settings = settings_for(tmp_path, url, faulty, cycle_interval="1h", leader_takeover="3s")
    sim = SimulatedScheduler(T0)
    lock, other = leader.for_url(url, takeover_s=3), leader.for_url(server_url, takeover_s=3)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store, lock=lock)
    try:
        daemon._tick()
        assert daemon.leading
        sim.run_until(at(1))
        assert faulty.target("api") == 3
        proxy.cut()
        daemon._tick()
        assert not daemon.leading and daemon.may_act() is Mandate.RAISES
        assert "raises only" in daemon.healthy()[1]
        daemon._tick()  # the database still away: still cut off
        sim.run_until(at(15))
        assert faulty.target("api") == 6, "the raise of the plan last read applies at its time"
        sim.run_until(at(25))
        assert faulty.target("api") == 6, "never a lowering"
        proxy.restore()
        if lock_when_back == "taken":
            assert other.try_acquire()
        daemon._tick()
        if lock_when_back == "free":
            assert daemon.leading
            sim.run_until(at(26))
            assert faulty.target("api") == 2, "leading again, the plan in force applies"
        else:
            assert not daemon.leading and daemon.scheduler is None and daemon.may_act() is Mandate.NONE
            sim.run_until(at(35))
            assert faulty.target("api") == 6, "another daemon leads: the old plan's raises are dropped"
            daemon._tick()  # a standby writes the audit records its outage kept
        assert ok_actions(store)[:2] == [(T0, 3), (at(10), 6)]
        assert [c["target"] for c in faulty.changes()] == ([3, 6, 2] if lock_when_back == "free" else [3, 6])
        assert not sim.errors
    finally:
        daemon._step_down()
        for held in (lock, other):
            held.release()
        proxy.close()
        store.close()


def test_an_endpoint_without_history_is_not_a_failed_cycle(tmp_path, sqlite_url, faulty):
    """Issue 13 item 6: a new endpoint with no traffic ingested yet is not planned, and the
    cycle that planned every other endpoint is still a successful one."""
    store = Store(sqlite_url)
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("api"),
                            [CountRow("api", T0 - timedelta(minutes=m), 10) for m in range(1, 120)])
    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url,
                                        [{"name": "api", "dir": faulty.dir}, {"name": "new", "dir": faulty.dir}],
                                        daemon={"cycle_interval": "1h"}))
    metrics = Metrics(CollectorRegistry())
    try:
        sim, daemon = sim_daemon(settings, store, metrics)
        sim.run_until(at(1))  # the start-up cycle
        assert store.current_plan("api") and not store.current_plan("new")
        assert metrics.registry.get_sample_value("prewarm_last_successful_cycle_timestamp_seconds") > 0
        assert not sim.errors
        daemon._step_down()
    finally:
        store.close()
