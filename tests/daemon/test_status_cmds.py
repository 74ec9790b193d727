"""`prewarm status`, `explain`, `hold` and `release`, through the CLI, on a plan and forecast
made by `prewarm once`."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from daemon_helpers import write_config
from prewarm.cli.main import cli, main
from prewarm.cycle import apply_due
from prewarm.runtime import Runtime
from prewarm import config
from prewarm.store import CountRow, Store

FORECAST = '[forecast]\nmodel = "test-repeat-day"\nhistory = "25h"\nhorizon = "2h"\nstep = "5m"\nresolution = "fixed"\n'
# Pinned so the peak an hour ahead is not smoothed into now (the default smoothing is +-1 h).
FORECAST += '[planner]\nquantile = "hi-80"\nsmoothing = "0s"\nscale_in_delay = "10m"\nidle_timeout_rule = "fixed"\n'
# ... and Poisson sizing: the test's one spike would otherwise read as bursty and size to the cap.
FORECAST += 'burstiness = "poisson"\n'
# ... and no static guard: its first judgement replays the day of history nine times (13 of the
# 14 s each setup took); the guard and what status and explain say of it are
# tests/test_static_guard.py's.
FORECAST += 'static_guard = "off"\n'


@pytest.fixture
def env(tmp_path, sqlite_url, faulty):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    store = Store(sqlite_url)
    # A quiet endpoint with a peak an hour from now, yesterday: so today too.
    rows = [CountRow("api", now - timedelta(minutes=m), 1200 if 24 * 60 - 40 >= m >= 24 * 60 - 70 else 6)
            for m in range(1, 26 * 60)]
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("api"), rows)
    store.close()
    cfg = write_config(tmp_path / "prewarm.toml", sqlite_url,
                       [{"name": "api", "dir": faulty.dir, "max_workers": 8, "cold_start_s": 120, "service_time_s": 2}],
                       extra=FORECAST)

    def run(*args, ok=True):
        result = CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run("once")
    return run, now, faulty, sqlite_url, cfg


def test_status_shows_target_next_change_and_provider_state(env):
    run, now, faulty, _, _ = env
    doc = json.loads(run("status", "--json").output)
    (ep,) = doc["endpoints"]
    assert ep["endpoint"] == "api" and ep["provider"] == "faulty"
    assert ep["static_guard"] is None  # [planner] static_guard = "off" (tests/test_static_guard.py: on)
    assert ep["target"] == faulty.target("api") == ep["provider_state"]["desired"] >= 1
    nxt = ep["next_change"]
    assert nxt is not None and nxt["warm_workers"] > ep["target"], "the peak's warm-up is the next change"
    assert now < datetime.fromisoformat(nxt["at"].replace("Z", "+00:00")) < now + timedelta(hours=1)
    text = run("status").output
    assert "api" in text and "faulty" in text and "static guard" not in text
    faulty.control(read_fail=True)
    doc = json.loads(run("status", "--json").output)
    assert "read failed" in doc["endpoints"][0]["provider_state"]["error"]


def test_explain_gives_forecast_quantile_lead_floor_caps_and_traffic(env, capsys):
    run, now, faulty, _, cfg = env
    doc = json.loads(run("status", "--json").output)
    peak_at = doc["endpoints"][0]["next_change"]["at"]
    ex = json.loads(run("explain", "api", "--at", peak_at, "--json").output)
    assert ex["target"] == doc["endpoints"][0]["next_change"]["warm_workers"]
    # The peak step that binds may be partly in the lull (5-minute steps): still far above 6/min, and
    # over what 8 workers serve, so the cap binds whatever minute the test runs in.
    assert ex["quantile"] == "hi-80" and ex["lead_s"] == 120 and ex["forecast_rpm"] > 40
    # The peak needs more workers than max_workers allows: explain says so.
    assert ex["why"] == "forecast, capped at max_workers" and ex["target"] == ex["cap"] == 8 < ex["need"]
    assert ex["floor"] == 0
    assert ex["forecast"]["hi-80"] == pytest.approx(ex["forecast_rpm"], rel=0.01)
    assert ex["forecast"]["mean"] < ex["forecast"]["hi-80"]
    assert ex["last_traffic"]["requests"] == 6
    text = run("explain", "api", "--at", peak_at).output
    assert "8 workers warm (forecast, capped at max_workers)" in text and "hi-80" in text
    assert "started 120 s ahead (the cold start)" in text and " UTC" in text
    assert "max_workers 8" in text and "last actual traffic: 6 requests" in text
    assert "None" not in text and "upper 80% band (hi-80); the mean is" in text
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(cfg), "explain", "nope"])
    assert exit_.value.code == 2 and "unknown endpoint 'nope' (configured: api)" in capsys.readouterr().err


def test_hold_applies_at_once_is_kept_by_planner_and_reconcile_and_release_is_audited(env):
    run, now, faulty, url, cfg = env
    before = faulty.target("api")
    doc = json.loads(run("hold", "api", "6", "--for", "30m", "--note", "launch", "--json").output)
    assert doc["result"] == "ok" and doc["target"] == 6
    assert faulty.target("api") == 6, "applied through the provider at once"
    # The daemon's reconcile keeps it (the stored plan was made before the hold) ...
    settings = config.load(cfg)
    rt = Runtime(settings)
    try:
        (outcome,) = apply_due(rt, datetime.now(timezone.utc))
        assert outcome.target == 6 and outcome.reason["why"] == "hold"
    finally:
        rt.close()
    # ... and so does the planner.
    run("once")
    store = Store(url)
    plan = store.current_plan("api")
    assert plan[0]["warm_workers"] == 6 and plan[0]["reason"]["why"] == "hold"
    assert faulty.target("api") == 6
    released = run("release", "api").output
    assert store.active_hold("api", datetime.now(timezone.utc)) is None
    audit = [(a["verb"], a["result"], a["requested"].get("target")) for a in store.actions("api")]
    assert ("hold", "ok", 6) in audit and ("release", "ok", 6) in audit
    # release applies at once, as hold does: the plan made without the hold is in force.
    from prewarm.apply import due_command
    planned = due_command(store.current_plan("api"), datetime.now(timezone.utc))
    assert planned["reason"]["why"] != "hold"
    assert faulty.target("api") == planned["warm_workers"]
    assert f"planned target {planned['warm_workers']} applied" in released or \
        (planned["warm_workers"] == 6 and "no planned change due now" in released)
    hold_row = next(a for a in store.actions("api") if a["verb"] == "hold")
    assert hold_row["reason"]["note"] == "launch" and hold_row["requested"]["previous"] == before
    assert "no hold to release" in run("release", "api").output
    store.close()


def test_status_shows_audit_records_waiting_in_the_spool_until_an_apply_writes_them(env):
    from prewarm.audit_spool import default_path, AuditSpool

    run, now, faulty, url, _ = env
    assert json.loads(run("status", "--json").output)["audit_waiting"] is None
    # What a process that died during a database outage left behind.
    AuditSpool(default_path()).append("api", dict(ts=now - timedelta(minutes=5), provider="faulty", verb="apply",
                                                  requested={"target": 3}, reason={"why": "forecast"},
                                                  result="ok", error=None, retryable=None, duration_ms=2.0,
                                                  command_id=None))
    doc = json.loads(run("status", "--json").output)
    assert doc["audit_waiting"] == {"records": 1, "spool": str(default_path())}
    assert "1 audit records wait in" in run("status").output
    run("once")  # the database answers: the apply writes the record
    assert json.loads(run("status", "--json").output)["audit_waiting"] is None
    store = Store(url)
    try:
        assert (now - timedelta(minutes=5), 3) in [(a["ts"], a["requested"]["target"]) for a in store.actions("api")]
    finally:
        store.close()


def test_hold_above_max_workers_says_capped_and_status_and_explain_show_the_cap(env):
    run, now, faulty, url, cfg = env
    out = run("hold", "api", "20", "--for", "30m").output
    assert "holding at least 20 warm" in out and "capped at max_workers 8" in out and "provider target 8" in out
    assert faulty.target("api") == 8
    doc = json.loads(run("status", "--json").output)["endpoints"][0]
    assert doc["target"] == 8 and doc["why"] == "hold" and doc["hold"]["capped_at"] == 8
    assert "(capped at max_workers 8)" in run("status").output
    ex = json.loads(run("explain", "api", "--json").output)
    assert ex["target"] == 8 and ex["hold"] == {"workers": 20, "until": ex["hold"]["until"], "capped_at": 8}
