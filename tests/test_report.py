"""`prewarm report`: a store filled by the daemon's own jobs over half a simulated day (dry-run
provider, demo-shaped traffic with cold starts reported), the page written from it, and the
page opened in a real browser (headless Chromium): it renders, its script runs without
error, and a screenshot shows the charts."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from prewarm import config
from prewarm.cli.main import main
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.demo import daily_rate
from prewarm.report.data import step_hours, target_steps
from prewarm.report.html import BAND_OPACITY, COLORS, guard_section
from prewarm.store import CountRow, Store

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # the daemon runs from here
RUN = timedelta(hours=12)
CONFIG = """
[store]
url = "{url}"
[daemon]
cycle_interval = "10m"
reconcile_interval = "10m"
forecast_snapshot_interval = "30m"
[metrics]
enabled = false
[forecast]
history = "7d"
horizon = "2h"
[[endpoints]]
name = "chat"
[endpoints.capacity]
concurrency = 4
service_time = "20s"
cold_start = "10m"
max_workers = 8
price_per_worker_hour = 2.5
[endpoints.provider]
kind = "dry-run"
"""


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store as a daemon leaves it: a week of counts before T0 and half a day after
    (cold starts reported), and the daemon's forecasts, plans, actions and scores of that half day.
    Another endpoint, `batch`, has counts and no config."""
    d = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{d / 'prewarm.db'}"
    store = Store(url)
    first = T0 - timedelta(days=7)
    minutes = int((RUN + timedelta(days=7)).total_seconds() // 60)
    rng = np.random.default_rng(5)
    for name, scale in (("chat", 1.0), ("batch", 0.3)):
        rows = [CountRow(name, t, int(rng.poisson(scale * daily_rate(t))), cold_starts=int(rng.random() < 0.03))
                for m in range(minutes) for t in [first + timedelta(minutes=m)]]
        with store.begin() as c:
            store.insert_counts(c, store.endpoint_id(name), rows)
    cfg = d / "prewarm.toml"
    cfg.write_text(CONFIG.format(url=url))
    settings = config.load(cfg)
    sim = SimulatedScheduler(T0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store)
    daemon._lead()
    sim.run_until(T0 + RUN)
    daemon._step_down()
    assert not sim.errors
    store.close()
    return cfg


def run_report(cfg: Path, *args: str) -> int:
    try:
        main(["--config", str(cfg), "report", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    # As root in a container the sandbox cannot start; a fresh profile per run.
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "UTC"})


def test_the_report_renders_in_a_real_browser(filled, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert run_report(filled, "chat", "--since", "2026-03-01T22:00Z", "--until", "2026-03-02T12:00Z",
                      "--out", str(out)) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # self-contained
    for heading in ("Forecast band against actual traffic", "Warm target and what the provider held",
                    "Cold starts", "Worker-hours and cost against static settings", "Forecast accuracy",
                    "Last changes and failures"):
        assert heading in page, heading
    assert "best static, on-demand" in page and "scored forecasts" in page
    # The static guard's judgements, made by the daemon's guard job as it started, and why.
    guard = re.search(r'<section class="card" id="ep-chat">.*?<h3>Static guard</h3>(.*?)<h3>', page).group(1)
    assert "<li>Judged at 2026-03-02 00:00 UTC (auto), in force from then: the plan" in guard, guard
    assert "Why: the plan alone held on the trailing 7.0 days" in guard or "Why: guarded" in guard, guard

    dom = chromium("--dump-dom", f"file://{out}", tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout, "the page's script did not run to its end"
    assert '<div id="js-errors"></div>' in dom.stdout, "the page's script raised an error"

    shot = tmp_path / "shot.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1400", f"file://{out}", tmp=tmp_path)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1400)
    pixels = list(img.get_flattened_data())
    background = pixels[0]
    assert sum(p != background for p in pixels) > 0.25 * len(pixels), "the page is mostly blank"

    def near(color: str, opacity: float = 1.0, tol: int = 24) -> int:
        rgb = [round(255 - opacity * (255 - int(color[i:i + 2], 16))) for i in (1, 3, 5)]  # over white
        return sum(all(abs(a - b) <= tol for a, b in zip(p, rgb)) for p in pixels)

    # Each chart drew something: traffic, the forecast band, the planned and held targets.
    assert near(COLORS["actual"]) > 500, "no traffic line"
    assert near(COLORS["band"], BAND_OPACITY) > 2000, "no forecast band"
    assert near(COLORS["planned"], 0.45) > 1000, "no planned target"
    assert near(COLORS["held"]) > 200, "no held target"


def test_a_script_error_shows_in_the_page(filled, tmp_path):
    """The sentinel the browser test reads can fail: a page whose script throws says so."""
    out = tmp_path / "report.html"
    assert run_report(filled, "chat", "--since", "2026-03-02T00:00Z", "--until", "2026-03-02T06:00Z", "--no-static",
                      "--out", str(out)) == 0
    page = out.read_text()
    mark = "document.documentElement.setAttribute('data-rendered', 'ok');"
    assert mark in page
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace(mark, "null.boom();\n" + mark))
    dom = chromium("--dump-dom", f"file://{broken}", tmp=tmp_path)
    assert re.search(r'<div id="js-errors">script error: [^<]*null[^<]*</div>', dom.stdout), dom.stdout[-3000:]
    assert 'data-rendered="ok"' not in dom.stdout


def test_every_endpoint_with_history_by_default_and_unconfigured_ones_say_so(filled, tmp_path, capsys):
    out = tmp_path / "all.html"
    assert run_report(filled, "--since", "2026-03-02T00:00Z", "--until", "2026-03-02T06:00Z", "--no-static",
                      "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "'batch' is not configured" in err
    page = out.read_text()
    assert 'id="ep-batch"' in page and 'id="ep-chat"' in page and "not configured" in page
    assert page.count("Static settings not replayed (--no-static).") == 2 and "best static," not in page


def test_the_static_guard_section_says_what_is_in_force_in_the_window():
    """The judgements in force over the window (one made before it, one in it), what each held
    the plan to and why; off; never judged; none kept for the window; a failed last attempt
    (fail warm: the judgement before it stays)."""
    from types import SimpleNamespace

    from prewarm.planner.model import StaticSetting
    from prewarm.report.data import GuardState, Judged

    def page(guard):
        return guard_section(SimpleNamespace(guard=guard, start=utc(2026, 3, 2), end=utc(2026, 3, 3)))

    why = "guarded: the plan alone ran 4.10% cold"
    before = Judged(utc(2026, 3, 1, 6), "auto", StaticSetting(1, 10800.0), why)
    inside = Judged(utc(2026, 3, 2, 6), "always", StaticSetting(2, None), None)
    text = page(GuardState("auto", [before, inside], inside.judged_at))
    assert ('[planner] static_guard = "auto". The judgements in force over the window, oldest first:</p><ul>'
            "<li>Judged at 2026-03-01 06:00 UTC (auto), in force from the window&#x27;s start: the plan is held at or "
            "above floor 1, keep-alive 3h. Why: guarded: the plan alone ran 4.10% cold.</li>"
            "<li>Judged at 2026-03-02 06:00 UTC (always), in force from then: the plan is held at or above "
            "floor 2, the platform&#x27;s keep-alive.</li></ul>") in text
    alone = Judged(utc(2026, 3, 1), "auto", None, "the plan alone held on the trailing 7.0 days")
    assert "the plan runs alone. Why: the plan alone held" in page(GuardState("auto", [alone], alone.judged_at))
    assert "No judgement kept was in force during the window (the last was made at 2026-03-03 00:00 UTC" in page(
        GuardState("auto", [], utc(2026, 3, 3)))
    assert "Off for this endpoint" in page(None)
    assert "Not judged yet" in page(GuardState("auto", [], None))
    failed = GuardState("auto", [before], before.judged_at, failed_at=utc(2026, 3, 2, 7),
                        error="history: database is locked")
    assert ("The last attempt, at 2026-03-02 07:00 UTC, failed: history: database is locked. The judgement before "
            "it stays in force") in page(failed)
    # A failure before the last judgement is history, not news (static_guard.failed_attempt, which
    # guard_state reads the stored row with).
    from prewarm.static_guard import failed_attempt

    assert failed_attempt({"judged_at": alone.judged_at, "attempted_at": utc(2026, 2, 28), "error": "old"}) is None
    assert "failed" not in page(GuardState("auto", [alone], alone.judged_at))


@pytest.mark.parametrize("args, message", [
    (["nope"], "no history in the store for 'nope'"),
    (["--since", "yesterday"], "--since"),
    (["--since", "2099-01-01T00:00Z"], "not in the past"),
    (["--since", "2026-03-02T00:00Z", "--until", "2026-03-01T00:00Z"], "before --until"),
    (["--out", "/nonexistent-dir/x.html"], "no such directory"),
])
def test_bad_input_exits_2_and_writes_nothing(filled, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert run_report(filled, *args) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_target_in_force_follows_each_plan_until_the_next():
    steps = [(utc(2026, 3, 2, 0), utc(2026, 3, 1, 23, 50), 1), (utc(2026, 3, 2, 0), utc(2026, 3, 2, 2), 3),
             (utc(2026, 3, 2, 1), utc(2026, 3, 2, 1), 2), (utc(2026, 3, 2, 1), utc(2026, 3, 2, 5), 0)]
    got = target_steps(steps, utc(2026, 3, 2, 0, 30), utc(2026, 3, 2, 6))
    # The first plan's 02:00 change never came: the second plan, issued at 01:00, ruled from then on.
    assert got == [(utc(2026, 3, 2, 0, 30), 1), (utc(2026, 3, 2, 1), 2), (utc(2026, 3, 2, 5), 0)]
    assert step_hours(got, utc(2026, 3, 2, 0, 30), utc(2026, 3, 2, 6)) == pytest.approx(0.5 * 1 + 4 * 2)


def test_the_report_reads_are_the_same_on_every_database(store):
    """The store reads behind the report, on SQLite, PostgreSQL and MariaDB."""
    t0 = utc(2026, 3, 2, 8)
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("chat"), [CountRow("chat", t0 + timedelta(minutes=m), 5)
                                                           for m in range(10)])
    store.endpoint_id("idle")  # an endpoint without counts is not listed
    store.save_forecast("chat", t0, "m", 60, [{"ds": t0 + timedelta(minutes=m), "mean": 4.0, "lo-80": 3.0,
                                               "hi-80": 5.0} for m in range(10)])
    store.save_plan("chat", t0, t0 + timedelta(hours=1), "m", [
        {"at": t0, "warm_workers": 2, "reason": {"why": "forecast"}},
        {"at": t0 + timedelta(minutes=5), "warm_workers": 3, "reason": {"why": "forecast"}}])
    for minute, result, target in ((-5, "ok", 1), (1, "error", 4), (2, "ok", 2), (6, "unchanged", 3)):
        store.record_action("chat", ts=t0 + timedelta(minutes=minute), provider="dry-run", verb="apply",
                            requested={"target": target, "previous": 0}, result=result)
    assert store.endpoints_with_history() == ["chat"]
    rows = store.forecast_rows("chat", t0 - timedelta(hours=1), t0 + timedelta(minutes=2), t0 + timedelta(minutes=4))
    assert rows == [(t0, t0 + timedelta(minutes=m), 4.0, 3.0, 5.0) for m in (2, 3)]
    assert store.plan_steps("chat", t0 - timedelta(hours=1), t0 + timedelta(hours=1)) == [
        (t0, t0, 2), (t0, t0 + timedelta(minutes=5), 3)]
    # Accepted targets only, led by the one in force at the start.
    assert store.applied_targets("chat", t0, t0 + timedelta(hours=1)) == [
        (t0 - timedelta(minutes=5), 1), (t0 + timedelta(minutes=2), 2), (t0 + timedelta(minutes=6), 3)]
    # The static guard's judgements and a failed attempt after the last, as the report reads them.
    from types import SimpleNamespace

    from prewarm.backtest.judgement import ABOVE_TARGET, Evidence
    from prewarm.planner.model import StaticSetting
    from prewarm.report.data import guard_state

    best = StaticSetting(1, 600.0, 0.01, 12.5)
    evidence = Evidence(ABOVE_TARGET, 0.02, 3 * 86400.0, best, 300, 12, 10.0, 11.0)
    store.save_static_guard("chat", mode="auto", attempted_at=t0 - timedelta(days=1), setting=None, span_s=86400.0)
    store.save_static_guard("chat", mode="auto", attempted_at=t0, setting={"floor": 1, "keepalive_s": 600.0},
                            span_s=3 * 86400.0, evidence=evidence.as_dict())
    store.save_static_guard("chat", mode="auto", attempted_at=t0 + timedelta(hours=1), error="history: boom")
    settings = SimpleNamespace(planner_for=lambda ep: SimpleNamespace(static_guard="auto"))
    start, end = t0 - timedelta(hours=1), t0 + timedelta(days=1)
    state = guard_state(store, settings, SimpleNamespace(name="chat"), start, end)
    assert [(j.judged_at, j.setting, j.summary) for j in state.judgements] == [
        (t0 - timedelta(days=1), None, None), (t0, StaticSetting(1, 600.0), evidence.text())]
    text = guard_section(SimpleNamespace(guard=state, start=start, end=end))
    assert "Judged at 2026-03-01 08:00 UTC (auto), in force from the window&#x27;s start: the plan runs alone.</li>" \
        in text
    assert "Judged at 2026-03-02 08:00 UTC (auto), in force from then: the plan is held at or above floor 1, " \
           "keep-alive 10m. Why: guarded" in text
    assert "The last attempt, at 2026-03-02 09:00 UTC, failed: history: boom." in text
    # Before the first judgement: none was in force.
    early = guard_state(store, settings, SimpleNamespace(name="chat"), t0 - timedelta(days=3), t0 - timedelta(days=2))
    assert early.judgements == [] and "No judgement kept was in force" in guard_section(
        SimpleNamespace(guard=early, start=t0 - timedelta(days=3), end=t0 - timedelta(days=2)))
    never = guard_state(store, settings, SimpleNamespace(name="idle"), start, end)
    assert never.judgements == [] and "Not judged yet" in guard_section(SimpleNamespace(guard=never, start=start, end=end))
