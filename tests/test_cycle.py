"""The cycle on each store (SQLite, PostgreSQL, MariaDB): plan, apply, snapshot, score, prune."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from prewarm import config
from prewarm.cycle import plan_cycle, run_once
from prewarm.runtime import Runtime
from prewarm.ingest import ingest_file
from prewarm.metrics import Metrics
from demo_endpoints import START, endpoints_toml, ingest_demo_traffic

CONFIG = """
[store]
url = "{url}"
[daemon]
forecast_snapshot_interval = "1h"
retention = "2d"
[forecast]
model = "seasonal-naive"
history = "3d"
horizon = "2h"
""" + endpoints_toml(["chat"])


@pytest.fixture
def rt(tmp_path, store):
    path = tmp_path / "prewarm.toml"
    path.write_text(CONFIG.format(url=store.url))
    settings = config.load(path, env={})
    runtime = Runtime(settings, store=store, metrics=Metrics(CollectorRegistry()))
    ingest_demo_traffic(runtime.store, tmp_path, ["chat"])
    yield runtime
    runtime.close()


def test_cycles_snapshot_score_and_export_accuracy(rt):
    day = START + timedelta(days=3)
    for minute in range(0, 4 * 60, 15):
        outcomes, actions = run_once(rt, day + timedelta(minutes=minute))
        assert outcomes["chat"].error is None
    # One snapshot an hour, not one per cycle.
    issues = rt.store.forecast_issues("chat", day + timedelta(days=1))
    assert len(issues) == 4
    scored = rt.store.accuracy("chat")
    # Snapshots at 00:00 and 01:00 have a 2 h horizon that has passed by 03:45.
    assert {r["issued_at"] for r in scored} == {day, day + timedelta(hours=1)}
    assert all(0 <= r["coverage_80"] <= 1 and r["pinball"] >= 0 and r["mase"] > 0 for r in scored)
    value = rt.metrics.registry.get_sample_value("prewarm_forecast_accuracy", {"endpoint": "chat", "score": "coverage_80"})
    assert value == pytest.approx(scored[0]["coverage_80"]) or value == pytest.approx(scored[1]["coverage_80"])
    assert rt.metrics.registry.get_sample_value("prewarm_planned_warm_workers", {"endpoint": "chat"}) >= 1


def test_prune_drops_old_forecasts_and_plans_but_keeps_the_audit_log(rt):
    day = START + timedelta(days=3)
    run_once(rt, day)
    actions = len(rt.store.actions("chat"))
    rt.last_prune = None
    plan_cycle(rt, day + timedelta(days=3))  # retention is 2 days
    assert rt.store.forecast_issues("chat", day + timedelta(days=1)) == []
    assert rt.store.plan_as_of("chat", day + timedelta(hours=1)) == []
    assert len(rt.store.actions("chat")) == actions and actions > 0


def test_show_commands_store_nothing(rt):
    out = plan_cycle(rt, START + timedelta(days=3, hours=12), save=False)
    assert out["chat"].plan.commands
    assert rt.store.current_plan("chat") == [] and rt.store.last_forecast_time("chat") is None


def test_forecast_accuracy_command(rt, capsys):
    import json

    from prewarm.cli.main import main

    day = START + timedelta(days=3)
    for minute in range(0, 3 * 60 + 1, 30):
        run_once(rt, day + timedelta(minutes=minute))
    main(["--config", rt.settings.config_file, "forecast", "chat", "--accuracy", "--json"])  # returns: exit 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and rows[0]["model"].startswith("seasonal-naive") and rows[0]["steps"] > 60


def test_cold_start_feedback_tunes_the_policy_and_persists(rt, tmp_path):
    from prewarm.endpoint_policy import capacity_model, policy_settings
    from prewarm.planner.tuning import initial_value_s

    # The last day reports 10% of requests as cold: far above the 2% target.
    day = START + timedelta(days=3)
    rows = "\n".join(f"{(day - timedelta(minutes=m)).strftime('%Y-%m-%dT%H:%M:%SZ')},hot,20,2"
                     for m in range(1, 600))
    (tmp_path / "cold.csv").write_text("ts,endpoint,requests,cold_starts\n" + rows + "\n")
    ingest_file(rt.store, tmp_path / "cold.csv")
    settings = rt.settings.model_copy(update={"endpoints": (rt.settings.endpoints[0].model_copy(update={"name": "hot"}),)})
    rt.settings = settings
    ep = settings.endpoints[0]
    start_value = initial_value_s(capacity_model(ep), 0.02)
    plan_cycle(rt, day)
    first = rt.store.tuned_policy("hot")
    assert first is not None and first[1]["tuned"]["cold_start_value_s"] > start_value
    # Up to the ingest cutoff (now - 1 min): the minute before it is not counted yet.
    assert first[1]["observed"] == {"requests": 598 * 20, "cold": 598 * 2}
    # Within tune_interval the knobs stay; a show-only plan stores nothing.
    plan_cycle(rt, day + timedelta(minutes=5))
    plan_cycle(rt, day + timedelta(minutes=90), save=False)
    assert rt.store.tuned_policy("hot") == first
    # A new configured value resets what was tuned from the old one.
    ep2 = ep.model_copy(update={"planner": {"quantile": "hi-95"}})
    rt.settings = settings.model_copy(update={"endpoints": (ep2,)})
    plan_cycle(rt, day + timedelta(minutes=10))
    assert rt.store.tuned_policy("hot")[1]["configured"]["quantile_column"] == "hi-95"
    assert policy_settings(rt.settings, ep2).quantile_column == "hi-95"


def test_the_daemon_sizes_for_the_burstiness_it_observes(rt, tmp_path):
    """The cycle measures the last day's per-minute burstiness at each refresh and the planner
    sizes for it, as the backtester does (planner.burstiness)."""
    day = START + timedelta(days=3)
    # Bursty: 60 requests every tenth minute, nothing between (same mean as 6 a minute).
    rows = "\n".join(f"{(day - timedelta(minutes=m)).strftime('%Y-%m-%dT%H:%M:%SZ')},bursty,{60 if m % 10 == 0 else 0}"
                     for m in range(1, 3 * 1440))
    (tmp_path / "bursty.csv").write_text("ts,endpoint,requests\n" + rows + "\n")
    ingest_file(rt.store, tmp_path / "bursty.csv")
    ep = rt.settings.endpoints[0].model_copy(update={"name": "bursty"})
    rt.settings = rt.settings.model_copy(update={"endpoints": (ep,)})
    plan = plan_cycle(rt, day)["bursty"].plan
    assert rt.dispersion["bursty"] > 20  # Poisson would be 1
    assert plan.commands and max(c.reason["peakedness"] for c in plan.commands) > 2


def test_calendar_event_moves_the_plan_and_explain_names_it(rt):
    from prewarm.cli.status_cmds import explanation

    day = START + timedelta(days=3)
    quiet = plan_cycle(rt, day, save=False)["chat"].plan
    # An hour at 20x: the planner's smoothing (+-2 h by default) must not spread a declared
    # event over four hours (the event's steps are pinned: DemandForecast.pinned).
    launch = {"name": "launch", "start": (day + timedelta(hours=1)).isoformat(),
              "end": (day + timedelta(hours=2)).isoformat(), "scale": 20.0}
    fs = rt.settings.forecast.model_copy(update={"events": (config.ForecastEvent(**launch),)})
    rt.settings = rt.settings.model_copy(update={"forecast": fs})
    rt.forecasts.clear()
    planned = plan_cycle(rt, day)["chat"].plan
    assert max(c.warm_workers for c in planned.commands) > max(c.warm_workers for c in quiet.commands)
    doc = explanation(rt.store, "chat", day + timedelta(minutes=55))
    assert doc["events"] == ["launch"] and doc["target"] >= 1
