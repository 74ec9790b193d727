"""The CLI end to end on the embedded default: exit codes, --json, init -> ingest -> once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from prewarm.demo import generate

BIN = Path(sys.executable).parent / "prewarm"


def run(*args, cwd, env=None, check=None):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PREWARM_CONFIG", None)
    proc = subprocess.run([str(BIN), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def test_help_is_fast_and_lists_every_command(tmp_path):
    started = time.monotonic()
    out = run("--help", cwd=tmp_path, check=0).stdout
    elapsed = time.monotonic() - started
    for name in ("init", "db", "ingest", "forecast", "plan", "once", "run", "providers"):
        assert f"  {name}" in out
    # Not a timing assertion on the code path: a guard that --help imports nothing heavy.
    code = "import sys; from prewarm.cli.main import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "sys.stderr.write('HEAVY:' + ','.join(m for m in ('pandas','statsforecast','boto3','sqlalchemy') if m in sys.modules))"
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path).stderr
    assert "HEAVY:" in heavy and heavy.split("HEAVY:")[1].strip() == "", heavy
    assert elapsed < 30  # sanity only; the speed target is measured in bench/


@pytest.fixture
def project(tmp_path):
    run("init", cwd=tmp_path, check=0)
    cfg = (tmp_path / "prewarm.toml").read_text()
    cfg = cfg.replace('kind = "dry-run"', f'kind = "dry-run"\nstate_file = "{tmp_path}/dry.json"')
    (tmp_path / "prewarm.toml").write_text(cfg)
    traffic = tmp_path / "traffic.csv"
    generate(traffic, datetime(2026, 11, 23, tzinfo=timezone.utc), days=3)
    text = traffic.read_text().replace("demo-chat", "chat")
    traffic.write_text(text)
    return tmp_path


def test_init_refuses_to_overwrite(project):
    proc = run("init", cwd=project, check=2)
    assert "exists" in proc.stderr


def test_ingest_forecast_plan_once(project):
    out = json.loads(run("ingest", "traffic.csv", "--json", cwd=project, check=0).stdout)
    assert out[0]["inserted"] == 3 * 1440 and out[0]["endpoints"] == {"chat": 4320}
    again = json.loads(run("ingest", "traffic.csv", "--json", cwd=project, check=0).stdout)
    assert again[0]["inserted"] == 0 and again[0]["unchanged"] == 4320

    at = "2026-11-26T12:00:00Z"
    fc = json.loads(run("forecast", "chat", "--at", at, "--horizon", "1h", "--json", cwd=project, check=0).stdout)
    assert len(fc) >= 60 and set(fc[0]) >= {"ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"}
    assert all(r["lo-95"] <= r["mean"] <= r["hi-95"] for r in fc)

    plan = json.loads(run("plan", "--at", at, "--horizon", "6h", "--json", cwd=project, check=0).stdout)
    cmds = plan[0]["commands"]
    assert plan[0]["endpoint"] == "chat" and cmds and cmds[0]["at"] == at
    # The 14:00 peak (40 req/min x 2 s over concurrency 4) gets more workers than the
    # lull, and they are commanded before the peak.
    peak = max(c["warm_workers"] for c in cmds)
    assert peak > min(c["warm_workers"] for c in cmds)
    assert min(c["at"] for c in cmds if c["warm_workers"] == peak) < "2026-11-26T14:00:00Z"
    # show-only commands change nothing
    assert json.loads(run("plan", "--at", at, "--json", cwd=project, check=0).stdout)
    assert not (project / "dry.json").exists()

    once = json.loads(run("once", "--at", at, "--json", cwd=project, check=0).stdout)
    assert once["planned"]["chat"]["error"] is None
    act = once["actions"][0]
    assert act["result"] == "ok" and act["target"] == cmds[0]["warm_workers"]
    assert json.loads((project / "dry.json").read_text())["chat"]["target"] == act["target"]
    repeat = json.loads(run("once", "--at", at, "--json", cwd=project, check=0).stdout)
    assert repeat["actions"][0]["result"] == "unchanged"


def test_bad_input_exit_codes(project):
    assert run("forecast", "nope", cwd=project, check=2).stderr.startswith("error: unknown endpoint 'nope'")
    assert "not an ISO-8601" in run("plan", "--at", "tuesday", cwd=project, check=2).stderr
    assert "expected a positive duration" in run("forecast", "chat", "--horizon", "0s", cwd=project, check=2).stderr
    assert "'--for'" in run("hold", "chat", "2", "--for", "0m", cwd=project, check=2).stderr
    (project / "bad.csv").write_text("ts,endpoint,requests\n2024-01-01T00:00:00Z,chat,-1\n")
    assert "line 2: requests '-1' is negative" in run("ingest", "bad.csv", cwd=project, check=2).stderr
    (project / "prewarm.toml").write_text("[planner]\nquantile = 7\n")
    err = run("plan", cwd=project, check=2).stderr
    assert "prewarm.toml" in err and "planner.quantile" in err


def test_exit_code_is_the_commands_own_through_the_installed_binary(tmp_path):
    """An endpoint not planned is exit 1 from `once`, `plan` and `explain`, with --json too
    (main() used to drop the code click returned, so `once` exited 0 and cron never saw it);
    an unknown forecaster is refused when the config loads (2), naming the installed ones."""
    run("init", cwd=tmp_path, check=0)
    assert "chat: NOT planned: no history yet" in run("once", cwd=tmp_path, check=1).stdout
    assert json.loads(run("once", "--json", cwd=tmp_path, check=1).stdout)["planned"]["chat"]["error"]
    run("plan", "--json", cwd=tmp_path, check=1)
    assert "no history for 'chat'" in run("forecast", "chat", cwd=tmp_path, check=1).stderr
    run("explain", "chat", cwd=tmp_path, check=1)
    assert json.loads(run("explain", "chat", "--json", cwd=tmp_path, check=1).stdout)["target"] is None
    cfg = tmp_path / "prewarm.toml"
    text = cfg.read_text()
    assert 'model = "select"' in text
    cfg.write_text(text.replace('model = "select"', 'model = "seasonal-meen"'))
    err = run("once", cwd=tmp_path, check=2).stderr
    assert "forecast.model: unknown forecaster 'seasonal-meen'" in err and "seasonal-mean" in err


@pytest.mark.parametrize("address", ["37466", "localhost:abc", ":9464"])
def test_metrics_addr_is_checked_as_the_config_checks_it(tmp_path, address):
    """A bare port listened on every interface, `localhost:abc` was a ValueError (exit 1)."""
    err = run("run", "--metrics-addr", address, cwd=tmp_path, check=2).stderr
    assert "'--metrics-addr'" in err and "expected HOST:PORT such as 127.0.0.1:9464" in err, err


def test_an_unknown_count_column_is_refused_naming_it_and_the_allowed_ones(tmp_path):
    """`cold_start` for `cold_starts` was read as no cold-start column at all."""
    run("init", cwd=tmp_path, check=0)
    (tmp_path / "t.csv").write_text("ts,endpoint,requests,cold_start\n2026-11-23T00:00:00Z,chat,3,1\n")
    err = run("ingest", "t.csv", cwd=tmp_path, check=2).stderr
    assert "unknown column 'cold_start' in the header" in err
    assert "per-minute counts take ts, endpoint, requests, cold_starts, p50_ms, p99_ms" in err
    (tmp_path / "t.csv").write_text("ts,endpoint,requests,cold_starts\n2026-11-23T00:00:00Z,chat,3,1\n")
    assert json.loads(run("ingest", "t.csv", "--json", cwd=tmp_path, check=0).stdout)[0]["inserted"] == 1


def test_runtime_failure_is_exit_1(project):
    err = run("--db", "postgresql://postgres@127.0.0.1:1/none", "once", cwd=project, check=1).stderr
    assert "cannot reach the database" in err


def test_providers_list_shows_keys(tmp_path):
    out = json.loads(run("providers", "list", "--json", cwd=tmp_path, check=0).stdout)
    kinds = {p["kind"]: p for p in out}
    assert {"dry-run", "local"} <= set(kinds)
    assert "load_time_s" in kinds["local"]["keys"] and kinds["local"]["capabilities"]["scale_to_zero"] is True
    assert all("error" not in p for p in out), [p for p in out if "error" in p]


def test_db_upgrade_and_current(tmp_path, pg_url):
    from .conftest import _wipe
    _wipe(pg_url)
    out = run("--db", pg_url, "db", "upgrade", cwd=tmp_path, check=0).stdout
    assert "empty ->" in out
    cur = json.loads(run("--db", pg_url, "db", "current", "--json", cwd=tmp_path, check=0).stdout)
    assert cur["current"] == cur["head"]
