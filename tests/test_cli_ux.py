"""The first hour: forecast tables that fit a screen, progress from 0% with an ETA,
`config check`, unconfigured endpoints with history, 'no history' that says the window."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from prewarm.cli.backtest_cmd import Progress
from prewarm.cli.forecast_cmd import _screenful, coarsen

EXE = os.path.join(os.path.dirname(sys.executable), "prewarm")
T0 = datetime(2026, 1, 5, 10, 7, tzinfo=timezone.utc)


def test_coarsen_averages_on_the_clock_grid():
    recs = [{"ds": T0 + timedelta(minutes=i), "mean": float(i), "hi-80": float(2 * i)} for i in range(20)]
    rows = coarsen(recs, ["mean", "hi-80"], 900)
    # 10:07-10:14 (8 minutes), 10:15-10:26 (12 minutes): the second row starts on the quarter hour.
    assert [r["ds"] for r in rows] == [T0, T0.replace(minute=15)]
    assert rows[0]["mean"] == pytest.approx(sum(range(8)) / 8)
    assert rows[1]["hi-80"] == pytest.approx(2 * sum(range(8, 20)) / 12)
    assert coarsen(recs[:3], ["mean"], 60) == [{"ds": r["ds"], "mean": r["mean"]} for r in recs[:3]]


def test_screenful_picks_a_span_that_fits():
    assert _screenful(60, 6 * 3600) == 900
    assert _screenful(60, 24 * 3600) == 3600
    assert _screenful(300, 3600) == 300
    assert _screenful(3600, 6 * 3600) == 3600


def test_progress_starts_at_zero_through_a_warm_up_and_gives_an_eta():
    out, clock = io.StringIO(), iter([0.0, 10.0, 20.0]).__next__
    p = Progress("M0002 predictive", out, clock=clock)
    p(-86400, 6 * 86400)          # the warm-up day: negative done
    p(-86400 + 7 * 86400 / 4, 6 * 86400)  # a quarter of the way, after 10 s
    p(6 * 86400, 6 * 86400)
    frames = out.getvalue().split("\r")[1:]
    assert frames[0].startswith("M0002 predictive:   0.0%") and "ETA" not in frames[0]
    assert "25.0%" in frames[1] and "(ETA 30s)" in frames[1]
    assert "100.0%" in frames[2] and "ETA" not in frames[2]


def _run(args, cwd, check=0):
    done = subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PREWARM_CONFIG": ""})
    assert done.returncode == check, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("ux")
    _run(["init", "--sample-traffic"], d)
    _run(["ingest", "traffic.csv"], d)
    text = (d / "traffic.csv").read_text().replace(",chat,", ",unlisted,")
    (d / "other.csv").write_text(text)
    _run(["ingest", "other.csv"], d)
    return d


def test_forecast_and_plan_work_on_an_endpoint_with_history_but_no_config(project):
    out = _run(["forecast", "unlisted", "--horizon", "1h"], project)
    assert "'unlisted' is not configured" in out.stderr and out.stdout.startswith("unlisted: select")
    plan = _run(["plan", "unlisted", "--horizon", "1h", "--json"], project)
    assert json.loads(plan.stdout)[0]["endpoint"] == "unlisted"
    nope = _run(["forecast", "nope"], project, check=2)
    assert "unknown endpoint 'nope' (configured: chat)" in nope.stderr


def test_no_history_names_the_window_and_suggests_at(project):
    late = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    err = _run(["forecast", "chat", "--at", late], project, check=1).stderr
    assert "[forecast] history = 14d before" in err and "its history ends at" in err and "try --at" in err
    suggested = err.rsplit("try --at ", 1)[1].split()[0]
    assert _run(["forecast", "chat", "--at", suggested, "--horizon", "1h"], project).stdout.startswith("chat:")


def test_forecast_every_and_json_resolution(project):
    at = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00Z")
    text = _run(["forecast", "chat", "--at", at, "--horizon", "3h", "--every", "1h"], project).stdout
    lines = text.splitlines()
    assert "one row per 1h" in lines[1] and len(lines) == 3 + 3
    assert "peak" in lines[0] and "about" in lines[0]
    rows = json.loads(_run(["forecast", "chat", "--at", at, "--horizon", "3h", "--json"], project).stdout)
    assert len(rows) == 180  # --json: every step of the model


def test_config_check_passes_then_names_what_fails(project):
    ok = _run(["config", "check"], project)
    assert "store" in ok.stdout and "dry-run: reachable" in ok.stdout and "FAIL" not in ok.stdout
    cfg = (project / "prewarm.toml").read_text()
    bad = project / "unreachable.toml"
    bad.write_text(cfg.replace('url = "sqlite:///prewarm.db"',
                               'url = "postgresql+psycopg://nobody:S3cr3tpw@127.0.0.1:9/x"'))
    out = _run(["--config", str(bad), "config", "check"], project, check=1)
    assert "FAIL" in out.stdout and "cannot reach the database" in out.stdout
    assert "S3cr3tpw" not in out.stdout + out.stderr
    off = _run(["--config", str(bad), "config", "check", "--offline", "--json"], project)
    assert all(c["ok"] for c in json.loads(off.stdout))


def test_backtest_from_store_replays_with_the_configured_capacity(project):
    """--from-store equals replaying the exported file with the capacity flags spelled out
    (the starter config: concurrency 4, service time 2s, cold start 30s, 2.5 a worker-hour)."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(days=5)
    window = ["--from", (end - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:00Z"),
              "--to", end.strftime("%Y-%m-%dT%H:%M:00Z"), "--json"]
    stored = json.loads(_run(["backtest", "--from-store", "--endpoint", "chat", *window], project).stdout)
    text = (project / "traffic.csv").read_text()
    flags = ["--cold-start", "30s", "--service-time", "2s", "--worker-concurrency", "4", "--price", "2.5"]
    filed = json.loads(_run(["backtest", "traffic.csv", "--endpoint", "chat", *flags, *window], project).stdout)
    assert stored["worker_model"] == filed["worker_model"]
    assert stored["worker_model"]["concurrency"] == 4
    assert stored["results"] == filed["results"] and stored["results"][0]["requests"] > 0
    assert "chat" in text
    over = json.loads(_run(["backtest", "--from-store", "--endpoint", "chat", "--worker-concurrency", "1",
                            *window], project).stdout)
    assert over["worker_model"]["concurrency"] == 1  # a flag given overrides the config
    assert "needs --endpoint" in _run(["backtest", "--from-store"], project, check=2).stderr
    assert "TRACE" in _run(["backtest"], project, check=2).stderr


def test_backtest_replays_the_daemons_default_forecaster_unless_told(project):
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(days=5)
    window = ["--from", (end - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:00Z"),
              "--to", end.strftime("%Y-%m-%dT%H:%M:00Z"), "--json", "--static-guard", "off", "--service-time", "2s"]
    default = json.loads(_run(["backtest", "traffic.csv", "--endpoint", "chat", *window], project).stdout)
    assert default["forecaster"] == "select"  # the [forecast] model's default
    other = json.loads(_run(["backtest", "traffic.csv", "--endpoint", "chat", "--forecaster", "seasonal-mean",
                             *window], project).stdout)
    assert other["forecaster"] == "seasonal-mean"
    assert "unknown forecaster 'nope'" in _run(["backtest", "traffic.csv", "--forecaster", "nope", *window],
                                               project, check=2).stderr
