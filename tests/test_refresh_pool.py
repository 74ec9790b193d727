"""Forecast refreshes in background processes ([daemon] refresh_processes): real child
processes on the real store; the cycle plans from what it holds and never waits for a
refresh unless it holds nothing usable. What touches the store runs on SQLite, PostgreSQL and
MariaDB (`any_store_url`); the pool's own faults (killed, hung, broken children) on SQLite."""
from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from prewarm import config
from prewarm.cycle import plan_cycle
from prewarm.runtime import Runtime
from prewarm.daemon import refresh_pool_for
from prewarm.metrics import Metrics
from prewarm.refresh_pool import RefreshPool
from demo_endpoints import START, endpoints_toml, ingest_demo_traffic
from waiting import wait_for

from .conftest import empty_database

DAY = START + timedelta(days=3)

CONFIG = """
[store]
url = "{url}"
[daemon]
refresh_processes = 1
[forecast]
model = "seasonal-naive"
history = "3d"
horizon = "2h"
refresh_interval = "10m"
{endpoints}
"""
NAMES = ("chat", "code", "embed")


def seeded(url: str, tmp) -> str:
    from prewarm.store import Store

    store = Store(url)
    ingest_demo_traffic(store, tmp, NAMES)
    store.close()
    return url


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    """One store with three days of demo traffic for each endpoint (module scope: the
    children take seconds to start, so the tests share data, not runtimes)."""
    tmp = tmp_path_factory.mktemp("pool")
    return seeded(f"sqlite:///{tmp / 'p.db'}", tmp)


@pytest.fixture(scope="module", ids=["sqlite", "postgresql", "mariadb"],
                params=["sqlite", pytest.param("pg_url", marks=pytest.mark.postgres),
                                        pytest.param("maria_url", marks=pytest.mark.mariadb)])
def any_store_url(request, tmp_path_factory):
    """`store_url` on each engine (the server databases emptied and seeded for this module)."""
    if request.param == "sqlite":
        return request.getfixturevalue("store_url")
    url = request.getfixturevalue(request.param)
    empty_database(url)
    return seeded(url, tmp_path_factory.mktemp("pool-server"))


def settings_for(tmp_path, url: str):
    path = tmp_path / "prewarm.toml"
    path.write_text(CONFIG.format(url=url, endpoints=endpoints_toml(NAMES)))
    return config.load(path, env={})


def pooled_runtime(tmp_path, url: str):
    settings = settings_for(tmp_path, url)
    rt = Runtime(settings, metrics=Metrics(CollectorRegistry()))
    rt.refresh_pool = refresh_pool_for(settings, url)
    assert isinstance(rt.refresh_pool, RefreshPool)
    return rt


@pytest.fixture
def pooled(tmp_path, store_url):
    rt = pooled_runtime(tmp_path, store_url)
    yield rt
    rt.close()


@pytest.fixture
def pooled_any(tmp_path, any_store_url):
    """`pooled` on each engine."""
    rt = pooled_runtime(tmp_path, any_store_url)
    yield rt
    rt.close()


def test_without_the_setting_there_is_no_pool(tmp_path, store_url):
    settings = settings_for(tmp_path, store_url).model_copy(update={"daemon": config.DaemonSettings()})
    assert refresh_pool_for(settings, store_url) is None


def test_first_cycle_waits_and_plans_as_an_in_cycle_refresh_would(pooled_any, tmp_path, any_store_url):
    pooled = pooled_any
    outcomes = plan_cycle(pooled, DAY, save=True)
    assert all(o.error is None and o.plan is not None for o in outcomes.values()), outcomes
    # The same code on the same history: the same forecasts and plans as refreshing in the cycle.
    plain = Runtime(settings_for(tmp_path, any_store_url))
    try:
        reference = plan_cycle(plain, DAY, save=False)
    finally:
        plain.close()
    for name in NAMES:
        assert outcomes[name].plan.commands == reference[name].plan.commands
        assert outcomes[name].model == reference[name].model
        cached = pooled.forecasts[name]
        assert cached.made_at == DAY and DAY < cached.due <= DAY + timedelta(minutes=10)


def test_due_refreshes_run_in_the_background_and_are_taken_up_later(pooled_any):
    pooled = pooled_any
    plan_cycle(pooled, DAY)
    later = DAY + timedelta(minutes=11)  # every forecast is due again
    outcomes = plan_cycle(pooled, later)
    # Planned at once from the forecasts held, the refreshes handed to the pool.
    assert all(o.error is None for o in outcomes.values())
    assert all(pooled.forecasts[n].made_at == DAY for n in NAMES)
    assert pooled.refresh_pool.busy() == set(NAMES)
    gauge = pooled.metrics.registry.get_sample_value
    assert gauge("prewarm_refresh_in_flight") == 3
    assert all(gauge("prewarm_forecast_age_seconds", {"endpoint": n}) == 11 * 60 for n in NAMES)
    plan_cycle(pooled, later)
    assert len(pooled.refresh_pool.jobs) <= 1, "a refresh in flight is not submitted twice"
    for job in pooled.refresh_pool.jobs:
        job.future.result(timeout=120)
    # The next cycle takes the new forecasts up, cached as made at the cycle that asked for them.
    outcomes = plan_cycle(pooled, later + timedelta(minutes=1))
    assert all(o.error is None for o in outcomes.values())
    assert all(pooled.forecasts[n].made_at == later for n in NAMES)
    assert all(pooled.forecasts[n].due == later + timedelta(minutes=10) for n in NAMES)
    assert pooled.refresh_pool.busy() == set()
    assert gauge("prewarm_refresh_in_flight") == 0
    assert all(gauge("prewarm_forecast_age_seconds", {"endpoint": n}) == 60 for n in NAMES)


def assert_planned_from_the_last_forecast(rt, outcomes, why: str) -> None:
    for name in NAMES:
        out = outcomes[name]
        assert out.plan is not None and out.plan.commands, "fail warm: still planned from the last forecast"
        assert out.stage == "forecast" and why in out.error
        assert rt.forecasts[name].made_at == DAY
        # Counted where the metrics are, in the daemon, once.
        errors = rt.metrics.registry.get_sample_value("prewarm_errors_total", {"stage": "forecast", "endpoint": name})
        assert errors == 1


def test_a_failing_pool_keeps_the_forecasts_held_and_says_so(pooled, tmp_path):
    plan_cycle(pooled, DAY)
    pooled.refresh_pool.close()
    # A pool whose children cannot reach the store: every refresh fails.
    pooled.refresh_pool = RefreshPool(1, f"sqlite:///{tmp_path / 'missing' / 'nothing.db'}")
    later = DAY + timedelta(minutes=11)
    plan_cycle(pooled, later)
    for job in pooled.refresh_pool.jobs:
        with pytest.raises(Exception):
            job.future.result(timeout=120)
    outcomes = plan_cycle(pooled, later + timedelta(minutes=1))
    assert_planned_from_the_last_forecast(pooled, outcomes, "planned from the last forecast")


def test_a_killed_child_is_replaced(pooled):
    plan_cycle(pooled, DAY)
    pool = pooled.refresh_pool
    for pid in list(pool._executor._processes):
        os.kill(pid, signal.SIGKILL)
    later = DAY + timedelta(minutes=11)
    outcomes = plan_cycle(pooled, later)  # submits to the broken pool, or finds it broken
    assert all(o.plan is not None for o in outcomes.values())
    for _ in range(3):  # the failure is collected, the pool replaced, the refresh submitted again
        for job in list(pool.jobs):
            try:
                job.future.result(timeout=120)
            except Exception:  # noqa: BLE001 - the broken pool's jobs
                pass
        later += timedelta(minutes=1)
        outcomes = plan_cycle(pooled, later)
        assert all(o.plan is not None for o in outcomes.values())
    for job in list(pool.jobs):
        job.future.result(timeout=120)
    plan_cycle(pooled, later + timedelta(minutes=1))
    assert all(pooled.forecasts[n].made_at > DAY for n in NAMES), "refreshed again after the child died"


@pytest.fixture
def silent_store():
    """A PostgreSQL URL whose server accepts the connection and never answers: a refresh
    process that reads history from it hangs, as it would on a wedged database."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # the kernel completes the handshakes; nobody ever reads
    yield f"postgresql://postgres@127.0.0.1:{server.getsockname()[1]}/test"
    server.close()


def children(pool: RefreshPool) -> list:
    return list((pool._executor._processes or {}).values())


def test_a_hung_refresh_times_out_keeps_the_forecasts_and_replaces_the_children(pooled, silent_store):
    plan_cycle(pooled, DAY)
    pooled.refresh_pool.close()
    clock = [0.0]  # the pool's monotonic clock, moved by the test: no race with a real 3 s
    pooled.refresh_pool = pool = RefreshPool(1, silent_store, job_timeout_s=3.0, clock=lambda: clock[0])
    later = DAY + timedelta(minutes=11)
    outcomes = plan_cycle(pooled, later)  # planned from what it holds; the refreshes hang
    assert all(o.error is None and o.plan is not None for o in outcomes.values())
    assert pool.busy() == set(NAMES)
    job = pool.jobs[0]
    wait_for(lambda: job.future.running(), 120, what="the job handed to a child")
    hung = children(pool)
    # A job's clock starts when a cycle first sees it running, so a timeout is noticed up to
    # a cycle late; no cycle before that waited for it.
    outcomes = plan_cycle(pooled, later + timedelta(minutes=1))
    assert all(o.error is None for o in outcomes.values())
    assert job.running_since == 0.0 and pool.busy() == set(NAMES)
    clock[0] = 3.0
    outcomes = plan_cycle(pooled, later + timedelta(minutes=2))
    assert_planned_from_the_last_forecast(pooled, outcomes, "timed out after 3 s")
    assert hung and not any(p.is_alive() for p in hung), "the hung child is stopped"
    # The next cycle submits the refreshes again, to new children.
    assert pool.busy() == set(NAMES)
    assert children(pool) and not set(children(pool)) & set(hung)


def test_a_cycle_waiting_on_a_hung_refresh_gives_up_at_the_timeout(tmp_path, store_url, silent_store):
    """A new runtime holds no forecast, so its first cycle waits for the refreshes: with the
    children's database wedged it must come back (nothing planned, the stored plans stay)."""
    rt = Runtime(settings_for(tmp_path, store_url), metrics=Metrics(CollectorRegistry()))
    rt.refresh_pool = pool = RefreshPool(1, silent_store, job_timeout_s=3.0)
    try:
        outcomes = plan_cycle(rt, DAY)
        assert {o.stage for o in outcomes.values()} == {"forecast"}
        assert all(o.plan is None and "timed out" in o.error for o in outcomes.values())
        assert pool.jobs == []
    finally:
        rt.close()


def test_a_waiting_cycle_plans_each_job_as_it_arrives(tmp_path, any_store_url, monkeypatch):
    """At a (re)start every refresh is waited for; at 10,000 endpoints that is minutes, and
    the first plans should not wait for the last refresh. One endpoint a job here: the cycle
    plans in rounds, the first while later jobs are still in flight."""
    import prewarm.cycle as cycle_module
    import prewarm.refresh_pool as pool_module

    monkeypatch.setattr(pool_module, "JOB_SIZE", 1)
    rounds: list[tuple[list[str], set[str]]] = []
    plan_endpoints = cycle_module._plan_endpoints

    def recorded(rt, eps, *args, **kwargs):
        if eps:
            rounds.append(([ep.name for ep in eps], rt.refresh_pool.busy()))
        return plan_endpoints(rt, eps, *args, **kwargs)

    monkeypatch.setattr(cycle_module, "_plan_endpoints", recorded)
    rt = Runtime(settings_for(tmp_path, any_store_url), metrics=Metrics(CollectorRegistry()))
    rt.refresh_pool = RefreshPool(1, any_store_url)
    try:
        outcomes = plan_cycle(rt, DAY)
    finally:
        rt.close()
    assert all(o.error is None and o.plan is not None for o in outcomes.values()), outcomes
    assert sorted(n for names, _ in rounds for n in names) == sorted(NAMES), "each planned once"
    assert len(rounds) >= 2 and rounds[0][1], "the first planned while other refreshes ran"


def test_a_pool_that_breaks_on_submit_is_replaced_and_takes_the_refreshes(tmp_path, store_url):
    """Children killed between cycles: the next submit finds the pool broken, starts a new
    one and hands the refreshes to it in the same cycle (a first cycle still plans all)."""
    rt = Runtime(settings_for(tmp_path, store_url), metrics=Metrics(CollectorRegistry()))
    rt.refresh_pool = pool = RefreshPool(1, store_url)
    try:
        pool._executor.submit(int, 0).result(timeout=120)  # a child is up
        first = children(pool)
        for process in first:
            os.kill(process.pid, signal.SIGKILL)
        wait_for(lambda: pool._executor._broken, 120, what="the executor to see its child gone")
        outcomes = plan_cycle(rt, DAY)
        assert all(o.error is None and o.plan is not None for o in outcomes.values()), outcomes
        assert children(pool) and not set(children(pool)) & set(first)
    finally:
        rt.close()


def test_a_pool_that_cannot_be_restarted_fails_the_refreshes_and_says_why(tmp_path, store_url, monkeypatch):
    """A pool that is broken again as soon as it is restarted: the refreshes fail, counted
    per endpoint, with the reason (not 'no history yet'), and the next cycle tries again."""
    from concurrent.futures import ProcessPoolExecutor

    def broken() -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(1)
        executor.shutdown()  # submit raises RuntimeError, as on a pool that cannot start
        return executor

    rt = Runtime(settings_for(tmp_path, store_url), metrics=Metrics(CollectorRegistry()))
    rt.refresh_pool = pool = RefreshPool(1, store_url)
    try:
        pool._stop_children()
        monkeypatch.setattr(pool, "_new_executor", broken)
        outcomes = plan_cycle(rt, DAY)
        for name in NAMES:
            assert outcomes[name].plan is None and outcomes[name].stage == "forecast"
            assert "refresh processes broken" in outcomes[name].error
            assert rt.metrics.registry.get_sample_value(
                "prewarm_errors_total", {"stage": "forecast", "endpoint": name}) == 1
        assert pool.busy() == set()
    finally:
        rt.close()


def test_a_failure_collected_while_another_group_waits_is_reported_on_its_own_endpoint(pooled, silent_store):
    """chat's [forecast] settings change, so its cycle waits for its refresh; the job it
    waits on also holds code and embed (one job of the old settings) and times out. Their
    failure was filed under chat's group, and code and embed read as planned without error."""
    plan_cycle(pooled, DAY)
    pooled.refresh_pool.close()
    pooled.refresh_pool = RefreshPool(1, silent_store, job_timeout_s=3.0)
    later = DAY + timedelta(minutes=11)
    plan_cycle(pooled, later)  # all three due: one job, hung
    plan_cycle(pooled, later + timedelta(minutes=1))  # the job is seen running: its clock starts
    chat = pooled.settings.endpoint("chat").model_copy(update={"forecast": {"horizon": "3h"}})
    pooled.settings = pooled.settings.model_copy(update={"endpoints": (
        chat, *[ep for ep in pooled.settings.endpoints if ep.name != "chat"])})
    outcomes = plan_cycle(pooled, later + timedelta(minutes=2))  # chat waits: the job times out
    assert outcomes["chat"].plan is None and "timed out" in outcomes["chat"].error
    for name in ("code", "embed"):
        assert outcomes[name].plan is not None, "fail warm: planned from the last forecast"
        assert outcomes[name].stage == "forecast" and "timed out" in outcomes[name].error
