"""The cycle at scale: forecasts cached between staggered refreshes, a batch of endpoints
read in a few queries and written in one transaction, unchanged plans confirmed (not
rewritten) with their needs still recorded, fail warm on a failed refresh."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

import prewarm.forecasting
from prewarm import config
from prewarm.cycle import plan_cycle
from prewarm.runtime import Runtime
from prewarm.metrics import Metrics
from prewarm.store import CountRow, Store, migrate
from prewarm.store import schema as t
from prewarm.store.store import same_schedule

from .conftest import empty_database

NOW = datetime(2026, 3, 4, 9, tzinfo=timezone.utc)


def write(tmp_path, n: int, refresh: str = "10m", url: str | None = None):
    url = url or f"sqlite:///{tmp_path / 'p.db'}"
    lines = [f'[store]\nurl = "{url}"\n',
             f'[forecast]\nmodel = "seasonal-naive"\nhistory = "2d"\nhorizon = "2h"\nstep = "5m"\n'
             f'resolution = "fixed"\nrefresh_interval = "{refresh}"\n']
    for i in range(n):
        lines.append(f'[[endpoints]]\nname = "ep{i:02d}"\n[endpoints.provider]\nkind = "dry-run"\n'
                     f'[endpoints.capacity]\nmax_workers = 20\ncold_start = "2m"\n')
    path = tmp_path / "prewarm.toml"
    path.write_text("\n".join(lines))
    return config.load(path, env={})


def seed(store: Store, n: int) -> None:
    for i in range(n):
        name = f"ep{i:02d}"
        rows = []
        for m in range(-2 * 1440, 0, 5):
            at = NOW + timedelta(minutes=m)
            hour = at.hour + at.minute / 60
            rows.append(CountRow(name, at, int(5 * (5 + 40 * math.exp(-((hour - 10 - i / 10) / 1.5) ** 2))),
                                 bucket_s=300))
        with store.begin() as c:
            store.insert_counts(c, store.endpoint_id(name, conn=c), rows)


@pytest.fixture
def fleet(tmp_path, monkeypatch, db_url):
    """(make_runtime(n, refresh), calls): calls[-1] is the endpoints of each forecast call. On
    each store: a runtime on a new SQLite file, or on the server database emptied."""
    calls: list[list[str]] = []
    real = prewarm.forecasting.forecast_endpoints

    def counting(history, *args, **kwargs):
        calls.append(sorted(history["unique_id"].unique()))
        return real(history, *args, **kwargs)

    monkeypatch.setattr(prewarm.forecasting, "forecast_endpoints", counting)
    made = []

    def make(n: int, refresh: str = "10m") -> Runtime:
        where = tmp_path / f"rt{len(made)}"
        where.mkdir()
        server = not db_url.startswith("sqlite")
        if server:
            empty_database(db_url)
        settings = write(where, n, refresh, db_url if server else None)
        rt = Runtime(settings, metrics=Metrics(CollectorRegistry()))
        seed(rt.store, n)
        made.append(rt)
        return rt

    yield make, calls
    for rt in made:
        rt.close()


def refreshed(calls) -> list[str]:
    return [name for call in calls for name in call]


def test_refresh_is_staggered_and_cycles_between_replan_from_the_cache(fleet):
    make, calls = fleet
    rt = make(8)
    first = plan_cycle(rt, NOW)
    assert all(o.plan is not None for o in first.values())
    assert sorted(refreshed(calls)) == sorted(first), "a new runtime refreshes every forecast at once"
    per_cycle = []
    for minute in range(1, 11):
        calls.clear()
        out = plan_cycle(rt, NOW + timedelta(minutes=minute))
        assert all(o.plan is not None and o.error is None for o in out.values()), "every plan, every cycle"
        per_cycle.append(refreshed(calls))
    # Over one refresh interval each forecast is refreshed exactly once, spread over the cycles.
    assert sorted(n for names in per_cycle for n in names) == sorted(first)
    assert max(len(names) for names in per_cycle) < 8 and sum(1 for names in per_cycle if names) >= 4
    # Each cycle planned from a forecast sliced to its own now.
    assert all(o.plan.commands[0].at == NOW + timedelta(minutes=10) for o in out.values())


def test_a_batch_costs_the_same_transactions_whatever_its_size(fleet):
    make, calls = fleet

    def transactions(n: int) -> int:
        rt = make(n, refresh="1d")
        plan_cycle(rt, NOW)
        calls.clear()
        count = []
        sa.event.listen(rt.store.engine, "begin", lambda conn: count.append(1))
        plan_cycle(rt, NOW + timedelta(minutes=1))
        assert calls == [], "no refresh due"
        rt.close()
        return len(count)

    small, large = transactions(2), transactions(12)
    assert small == large <= 8


def test_an_unchanged_plan_is_confirmed_and_its_needs_still_recorded(fleet):
    make, _ = fleet
    rt = make(1)

    def plans() -> int:
        with rt.store.begin() as c:
            return c.execute(sa.select(sa.func.count()).select_from(t.plans)).scalar()

    for minute in range(3):  # the first cycles move the scale-down along with recent traffic
        plan_cycle(rt, NOW + timedelta(minutes=minute))
    before, written = rt.store.current_plan("ep00"), plans()
    out = plan_cycle(rt, NOW + timedelta(minutes=3))
    after = rt.store.current_plan("ep00")
    assert plans() == written, "the same commands are not written again"
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert [(c.at, c.warm_workers) for c in out["ep00"].plan.commands][1:] == \
        [(r["at"], r["warm_workers"]) for r in after if r["at"] > NOW + timedelta(minutes=3)]
    assert after[0]["issued_at"] == NOW + timedelta(minutes=3), "confirmed: the plan's age restarts"
    needs = rt.store.recent_needs("ep00", NOW - timedelta(minutes=5), NOW + timedelta(minutes=5))
    assert [at for at, _ in needs] == [NOW + timedelta(minutes=m) for m in range(4)], "a need every cycle"
    # A plan first issued more than forecast_snapshot_interval (1 h) ago is written afresh.
    plan_cycle(rt, NOW + timedelta(minutes=63))
    assert rt.store.current_plan("ep00")[0]["id"] != before[0]["id"]


def test_a_failed_refresh_plans_from_the_cached_forecast_while_it_covers_the_horizon(fleet, monkeypatch):
    make, _ = fleet
    rt = make(2)
    plan_cycle(rt, NOW)

    def broken(*args, **kwargs):
        raise RuntimeError("forecaster crashed (injected)")

    monkeypatch.setattr(prewarm.forecasting, "forecast_endpoints", broken)
    out = plan_cycle(rt, NOW + timedelta(minutes=11))  # every forecast is due by now
    for o in out.values():
        assert o.plan is not None and o.stage == "forecast" and "planned from the last forecast" in o.error
    assert rt.store.current_plan("ep00")[0]["issued_at"] == NOW + timedelta(minutes=11)
    assert rt.metrics.registry.get_sample_value("prewarm_errors_total", {"stage": "forecast", "endpoint": "ep00"}) == 1
    # Two refresh intervals on, the cache no longer covers the horizon: the last plan stays.
    out = plan_cycle(rt, NOW + timedelta(minutes=21))
    assert all(o.plan is None and o.stage == "forecast" for o in out.values())
    assert rt.store.current_plan("ep00")[0]["issued_at"] == NOW + timedelta(minutes=11)


def test_a_failed_history_read_is_counted_once_per_endpoint_across_batches(fleet, monkeypatch):
    import prewarm.refresh

    make, _ = fleet
    rt = make(3)
    plan_cycle(rt, NOW)
    monkeypatch.setattr(prewarm.refresh, "REFRESH_BATCH", 1)  # three refresh batches in one cycle

    def unreachable(*args, **kwargs):
        raise RuntimeError("database away (injected)")

    monkeypatch.setattr(rt.store, "history_frame", unreachable)
    out = plan_cycle(rt, NOW + timedelta(minutes=11))  # every forecast is due by now
    for name, o in out.items():
        assert o.plan is not None and o.stage == "history" and "planned from the last forecast" in o.error
        assert rt.metrics.registry.get_sample_value("prewarm_errors_total", {"stage": "history", "endpoint": name}) == 1


def test_same_schedule_compares_what_is_asked_from_now_on():
    at = [NOW - timedelta(minutes=10), NOW + timedelta(minutes=30)]
    current = [(at[0], 3, None), (at[1], 5, 600.0)]
    new = [{"at": NOW, "warm_workers": 3}, {"at": at[1], "warm_workers": 5, "idle_timeout_s": 600.0}]
    assert same_schedule(current, new, NOW)
    assert not same_schedule(current, [dict(new[0]), {**new[1], "warm_workers": 6}], NOW)
    assert not same_schedule(current, [dict(new[0]), {**new[1], "at": at[1] + timedelta(minutes=1)}], NOW)
    assert not same_schedule(current, [dict(new[0]), {**new[1], "idle_timeout_s": None}], NOW)
    assert not same_schedule(current, new[:1], NOW), "a change dropped"
    assert not same_schedule([], new, NOW)


def test_migration_0005_carries_the_recorded_needs_over(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(engine, "0004")
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO endpoints (id, name, created_at) VALUES (1, 'a', '2026-03-04 08:00:00.000000')"))
        c.execute(sa.text("INSERT INTO plans (endpoint_id, issued_at, horizon_end, current, need_now) VALUES "
                          "(1, '2026-03-04 08:59:00.000000', '2026-03-04 10:00:00.000000', 1, 4)"))
    migrate.upgrade(engine)
    engine.dispose()
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    assert store.recent_needs("a", NOW - timedelta(hours=1), NOW) == [(NOW - timedelta(minutes=1), 4)]
    store.close()
