"""Backtester: trace loading, the worker model, rolling origin, policies, frontier, CLI."""
from __future__ import annotations

import csv
import json
import subprocess
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from prewarm.backtest import frontier as fr
from prewarm.backtest.baselines import Cmd
from prewarm.backtest.predictive import BATCH_SAFE, PredictiveSettings
from prewarm.backtest.runner import BacktestConfig, run
from prewarm.backtest.simulator import ColdStart, Simulator, WorkerModel
from prewarm.backtest.traces import Trace, load_cold_starts, load_trace
from prewarm.errors import InputError
from prewarm.units import parse_timestamp

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
ALIBABA = TRACES / "alibaba_genai_2026"
DAY = 86400.0


def ts(text: str) -> float:
    return parse_timestamp(text).timestamp()


@pytest.fixture(scope="module")
def m0002():
    return load_trace(ALIBABA / "requests.csv", ["M0002"])["M0002"]


def short_cfg(**kw) -> BacktestConfig:
    # The static guard as the daemon runs it, its smoothing chosen between two values (the
    # default three cost a third more replays and test nothing more)
    base = BacktestConfig(start_s=ts("2024-11-27T00:00:00Z"), end_s=ts("2024-11-28T00:00:00Z"),
                          worker=WorkerModel(1, 60.0), cold_start=ColdStart(fixed_s=30.0),
                          warmup_s=6 * 3600.0,
                          predictive=PredictiveSettings(history_s=3 * DAY, smoothing_choices_s=(3600.0, 10800.0)))
    return replace(base, **kw)


# -- traces -----------------------------------------------------------------------------------
def test_per_minute_counts_are_spread_within_their_minute_deterministically(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("ts,endpoint,requests\n2024-01-01T00:00:00Z,a,3\n2024-01-01T00:01:00+00:00,a,0\n"
                 "2024-01-01T00:02:00,a,2\n2024-01-01T00:00:00Z,b,1\n")
    one, two = load_trace(f, seed=7), load_trace(f, seed=7)
    a = one["a"].arrivals
    t0 = ts("2024-01-01T00:00:00Z")
    assert len(a) == 5 and np.all(np.diff(a) >= 0)
    assert np.all((a[:3] >= t0) & (a[:3] < t0 + 60)) and np.all((a[3:] >= t0 + 120) & (a[3:] < t0 + 180))
    assert np.array_equal(a, two["a"].arrivals)
    assert one["a"].service_s is None and len(one["b"]) == 1


def test_alibaba_requests_carry_service_times_and_an_all_endpoint(m0002):
    traces = load_trace(ALIBABA / "requests.csv", ["M0002", "__all__"])
    assert len(traces["M0002"]) == 4289 and len(traces["__all__"]) == 14279
    assert np.nanmedian(traces["M0002"].service_s) == pytest.approx(18, abs=1)


def test_azure_timestamps_and_cold_start_csv():
    code = load_trace(TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")
    assert list(code) == ["code"] and len(code["code"]) == 8819
    cs = load_cold_starts(ALIBABA / "cold_start_latency.csv")
    assert np.percentile(cs, 50) == pytest.approx(22.7, abs=0.2)


def test_bad_inputs_name_the_problem(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("ts,endpoint,requests\n2024-01-01T00:00:00Z,a,-1\n")
    with pytest.raises(InputError, match="line 2"):
        load_trace(f)
    g = tmp_path / "cs.csv"
    g.write_text("ms\n1\n")
    with pytest.raises(InputError, match="seconds"):
        load_cold_starts(g)
    with pytest.raises(InputError, match="no endpoint nope"):
        load_trace(ALIBABA / "per_minute.csv", ["nope"])


# -- worker model ---------------------------------------------------------------------------
def simulate(arrivals, service, commands=(), concurrency=1, cold=10.0, timeout=60.0, end=None):
    arrivals = np.asarray(arrivals, float)
    sim = Simulator(WorkerModel(concurrency, timeout), ColdStart(fixed_s=cold), 0.0, arrivals)
    cmds = sorted(commands)
    i = 0
    for a in arrivals:
        while i < len(cmds) and cmds[i][0] <= a:
            sim.command(*cmds[i])
            i += 1
        sim.serve(a, service)
    for c in cmds[i:]:
        sim.command(*c)
    sim.finish(end if end is not None else arrivals[-1] + 1000)
    return sim


def test_worker_model_cold_requests_on_demand_workers_and_cost():
    # First request cold (no worker): a worker starts at 0, ready at 10, serves until 15, stops
    # 60 s later (75). A request at 30 is warm; at 200 cold again.
    sim = simulate([0.0, 30.0, 200.0], 5.0, end=400.0)
    assert sim.cold.tolist() == [True, False, True]
    assert sim.wait_s.tolist() == [10.0, 0.0, 10.0]
    assert sim.worker_s == pytest.approx((95 - 0) + (275 - 200))  # 30+5+60 = 95; 200+10+5+60


def test_two_second_threshold_and_concurrency_slots():
    # Concurrency 2: two overlapping requests share one warm worker; a third waits > 2 s: cold.
    sim = simulate([0.0, 1.0, 1.5, 2.0], 10.0, commands=[(-100.0, 1, None)], concurrency=2, cold=30.0)
    assert sim.cold.tolist() == [False, False, True, True]
    # Waiting 1.5 s for a slot is not cold.
    sim = simulate([0.0, 8.5], 10.0, commands=[(-100.0, 1, None)], cold=30.0)
    assert sim.cold.tolist() == [False, False] and sim.wait_s[1] == pytest.approx(1.5)


def test_target_is_a_floor_and_idle_timeout_applies_beyond_it():
    sim = simulate([100.0], 5.0, commands=[(0.0, 2, 0.0), (500.0, 0, 0.0)], cold=10.0, end=1000.0)
    assert not sim.cold.any()
    assert sim.worker_s == pytest.approx(2 * 500.0)  # both held to 500, then stop at once


# -- rolling origin -------------------------------------------------------------------------
def test_changing_the_trace_after_t_changes_no_command_before_t(m0002):
    cfg = short_cfg()
    cut = ts("2024-11-27T15:00:00Z")
    base = run(m0002, "predictive", cfg)
    keep = m0002.arrivals < cut
    extra = np.sort(np.concatenate([m0002.arrivals[keep], cut + np.random.default_rng(1).random(400) * 9 * 3600]))
    svc = np.concatenate([m0002.service_s[keep], np.full(len(extra) - keep.sum(), 18.0)])
    changed = run(Trace("M0002", extra, svc), "predictive", cfg)

    def before(r):
        return [(c.t, c.warm_workers, c.idle_timeout_s) for c in r.schedule if c.t < cut]
    assert before(base) and before(base) == before(changed)
    after = [(c.t, c.warm_workers) for c in base.schedule if c.t >= cut]
    assert after != [(c.t, c.warm_workers) for c in changed.schedule if c.t >= cut]


def _cut_file(src: Path, dest: Path, cut_iso: str, time_column: int = 0) -> Path:
    """The trace with every row at or after `cut_iso` removed (as the issue's reproduction)."""
    with src.open() as fin, dest.open("w") as fout:
        fout.write(fin.readline())
        for line in fin:
            if line.split(",", time_column + 1)[time_column] < cut_iso:
                fout.write(line)
    return dest


def _before(result, cut: float) -> list:
    return [(c.t, c.warm_workers, c.idle_timeout_s) for c in result.schedule if c.t < cut]


@pytest.mark.parametrize("cut_iso", ["2024-11-24T07:00", "2024-11-25T15:30", "2024-11-27T12:00"])
def test_cutting_the_trace_at_t_changes_no_command_before_t(tmp_path, cut_iso):
    # Rows after t removed from the file itself (not values changed): what the replay does
    # before t may depend only on rows before t. The per-minute file holds other endpoints
    # too, and its minutes are spread at random: an endpoint's arrivals must not depend on
    # how many rows (of any endpoint) come later. The reproduction (fixed cold start,
    # the CLI's day of warm-up), scored up to the cut.
    src = ALIBABA / "per_minute.csv"
    cut = ts(cut_iso + ":00Z")
    cfg = BacktestConfig(start_s=ts("2024-11-24T00:00:00Z"), end_s=cut + 600, worker=WorkerModel(1, 60.0),
                         cold_start=ColdStart(fixed_s=40.0), service_time_s=23.0,
                         predictive=PredictiveSettings(smoothing_choices_s=(3600.0, 10800.0)))  # two: cheaper
    whole = run(load_trace(src, ["M0002"])["M0002"], "predictive", cfg)
    part = run(load_trace(_cut_file(src, tmp_path / "cut.csv", cut_iso), ["M0002"])["M0002"], "predictive", cfg)
    assert _before(whole, cut) and _before(whole, cut) == _before(part, cut)
    assert [p for t, p in whole.tunings if t < cut] == [p for t, p in part.tunings if t < cut]


def test_cutting_the_request_trace_keeps_every_command_and_draw_before_t(tmp_path):
    # The per-request file (service times from the trace, measured cold starts drawn per start)
    # cut at t, for one model and for the sum of all models.
    src = ALIBABA / "requests.csv"
    header = src.open().readline().strip().split(",")
    cut_iso = "2024-11-27T11:00:00"
    cut = ts(cut_iso + "Z")
    cfg = short_cfg(cold_start=ColdStart(samples_s=load_cold_starts(ALIBABA / "cold_start_latency.csv")))
    cut_path = _cut_file(src, tmp_path / "cut.csv", cut_iso.replace("T", " "), header.index("gmt_create"))
    whole = load_trace(src, ["M0004", "__all__"], seed=1)
    part = load_trace(cut_path, ["M0004", "__all__"], seed=1)
    for name in ("M0004", "__all__"):
        k = int(np.searchsorted(whole[name].arrivals, cut))
        assert np.array_equal(whole[name].arrivals[:k], part[name].arrivals[:k])
    a, b = (run(t["M0004"], "predictive", replace(cfg, seed=1)) for t in (whole, part))
    assert _before(a, cut) and _before(a, cut) == _before(b, cut)


def test_a_cross_series_forecaster_gets_one_origin_per_call_never_a_later_history():
    # A forecaster not known to fit each series alone could learn from the histories of later
    # origins in a batch: the replay gives it one origin at a time, each history cut at the
    # replay's clock; the built-in per-series ones are batched.
    from prewarm.backtest import predictive as pr
    from prewarm.forecasters.seasonal_mean import SeasonalMeanForecaster

    calls = []

    class Pooled(SeasonalMeanForecaster):  # not per-series as far as the replay knows
        name = "pooled-test"

        def forecast(self, history, **kw):
            calls.append((history["unique_id"].nunique(), history["ds"].max()))
            return super().forecast(history, **kw)

    trace = Trace("x", np.sort(ts("2024-01-01T00:00:00Z") + np.random.default_rng(0).random(3000) * 3 * DAY), None)
    cfg = BacktestConfig(start_s=ts("2024-01-03T00:00:00Z"), end_s=ts("2024-01-03T06:00:00Z"),
                         service_time_s=5.0, warmup_s=3600.0, forecaster=Pooled(season_s=86400),
                         predictive=PredictiveSettings(tune=False, guard="off"))
    run(trace, "predictive", cfg)
    assert len(calls) >= 12 and all(n == 1 for n, _ in calls)
    assert not pr.batch_safe(Pooled()) and pr.batch_safe(SeasonalMeanForecaster())
    forecasts = pr.Forecasts(trace, Pooled(), PredictiveSettings(), 60.0, 3600.0)
    with pytest.raises(pr.LookAheadError, match="one call"):
        forecasts._fit([cfg.start_s, cfg.start_s + 1800], cfg.start_s)


@pytest.mark.parametrize("name", sorted(BATCH_SAFE))
def test_batched_forecasts_equal_single_ones(name):
    # What lets the replay batch origins: each series' forecast is what it gets alone.
    import pandas as pd
    from prewarm.forecasters import registry

    rng = np.random.default_rng(5)
    frames = []
    for uid, n in (("a", 700), ("b", 900), ("c", 400)):
        ds = pd.date_range("2024-01-01", periods=n, freq="5min")
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(2 + (uid == "b") * 20, n)}))
    history = pd.concat(frames, ignore_index=True)
    model = registry.create(name)
    together = model.forecast(history, horizon=12, step_s=300, levels=(80, 95))
    for uid, part in history.groupby("unique_id"):
        alone = model.forecast(part.reset_index(drop=True), horizon=12, step_s=300, levels=(80, 95))
        mine = together[together["unique_id"] == uid].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone.reset_index(drop=True), check_dtype=False)


# -- policies and frontier ------------------------------------------------------------------
def test_policies_order_as_expected_on_real_traffic(m0002):
    cfg = short_cfg(cold_start=ColdStart(samples_s=load_cold_starts(ALIBABA / "cold_start_latency.csv")))
    res = {p: run(m0002, p, cfg) for p in ("clairvoyant", "always-on", "keepalive:60", "keepalive:3600",
                                           "reactive", "hybrid-histogram", "predictive")}
    assert res["clairvoyant"].cold_rate == 0
    assert res["clairvoyant"].worker_hours < min(r.worker_hours for r in res.values() if r.policy != "clairvoyant")
    assert res["always-on"].cold_rate == 0
    assert res["always-on"].worker_hours == pytest.approx(24 * round(res["always-on"].worker_hours / 24))
    assert res["keepalive:3600"].cold_rate < res["keepalive:60"].cold_rate
    assert res["keepalive:3600"].worker_hours > res["keepalive:60"].worker_hours
    assert res["predictive"].cold_rate <= 0.05 and res["predictive"].commands > 0
    assert all(c.reason for c in res["predictive"].schedule)


def test_envelope_and_ratios():
    pts = [fr.Point(0, 60, 0.10, 10), fr.Point(0, 600, 0.04, 30), fr.Point(1, 60, 0.05, 40), fr.Point(2, 60, 0.0, 50)]
    front = fr.envelope(pts)
    assert [(p.floor, p.keepalive_s) for p in front] == [(2, 60), (0, 600), (0, 60)]
    assert fr.hours_at(front, 0.05) == 30 and fr.cold_at(front, 35) == 0.04

    class R:  # what compare reads from a Result
        cold_rate, worker_hours = 0.04, 20.0
    c = fr.compare(front, R)
    assert c.hours_ratio == pytest.approx(20 / 30) and c.cold_ratio == pytest.approx(0.04 / 0.10) and c.beats

    # A plan cheaper than every static setting (none runs on its 8 worker-hours): its cold
    # rate is compared with the cheapest setting's (10 hours, 10% cold), which has more hours.
    # (Before: an infinite cold ratio, a miss, for running cheaper than any static setting.)
    class Cheaper:
        cold_rate, worker_hours = 0.02, 8.0
    c = fr.compare(front, Cheaper)
    assert c.cold_ratio == pytest.approx(0.02 / 0.10) and c.hours_ratio == pytest.approx(8 / 50) and c.beats

    class CheaperColder:  # more cold starts than the cheapest setting: no win on cold
        cold_rate, worker_hours = 0.20, 8.0
    assert fr.compare(front, CheaperColder).cold_ratio == pytest.approx(2.0)
    only_warm = [fr.Point(3, 60, 0.0, 70)]

    class ZeroCold:
        cold_rate, worker_hours = 0.0, 8.0
    assert fr.compare(only_warm, ZeroCold).cold_ratio == 1.0  # both at zero: a tie
    assert math.isinf(fr.compare(only_warm, Cheaper).cold_ratio)  # cold where the static setting has none
    assert math.isinf(fr.compare([], Cheaper).cold_ratio)


# -- CLI ------------------------------------------------------------------------------------
def cli(*args):
    exe = Path(sys.executable).parent / "prewarm"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_cli_json_schedule_and_bad_flags(tmp_path):
    out = tmp_path / "s.csv"
    r = cli("backtest", str(ALIBABA / "requests.csv"), "--endpoint", "M0004", "--from", "2024-11-29T00:00:00Z",
            "--to", "2024-11-30T00:00:00Z", "--json", "--emit-schedule", str(out), "--service-time", "20s")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # quiet when piped
    data = json.loads(r.stdout)
    assert data["results"][0]["endpoint"] == "M0004" and 0 <= data["results"][0]["cold_rate"] <= 1
    rows = list(csv.DictReader(out.open()))
    assert rows and set(rows[0]) == {"ts", "endpoint", "warm_workers", "idle_timeout_s"}
    assert rows[0]["ts"].endswith("Z")
    bad = cli("backtest", str(ALIBABA / "requests.csv"), "--worker-concurrency", "0")
    assert bad.returncode == 2 and "--worker-concurrency" in bad.stderr
    bad = cli("backtest", str(ALIBABA / "requests.csv"), "--policy", "keepalive:soon")
    assert bad.returncode == 2 and "--policy" in bad.stderr
    for choices in ("1h,soon", "1h,60m"):
        bad = cli("backtest", str(ALIBABA / "requests.csv"), "--smoothing-choices", choices)
        assert bad.returncode == 2 and "--smoothing-choices" in bad.stderr and choices in bad.stderr


def test_predictive_sizes_for_the_burstiness_it_has_observed():
    # Two days at a steady 30 requests a minute, one minute in ten a burst of 150: per-minute
    # counts far burstier than Poisson. The replay measures that from the history before each
    # origin and the planner holds more workers than Poisson sizing would (peakedness > 1 in
    # every command's reason), which catches most of the bursts.
    rng = np.random.default_rng(3)
    minutes = np.arange(2 * 24 * 60)
    counts = np.where(rng.random(len(minutes)) < 0.1, 150, rng.poisson(30, len(minutes)))
    t0 = ts("2024-01-01T00:00:00Z")
    arrivals = np.sort(np.repeat(t0 + minutes * 60.0, counts) + rng.random(int(counts.sum())) * 60)
    trace = Trace("bursty", arrivals, None)
    cfg = BacktestConfig(start_s=t0 + DAY + 6 * 3600, end_s=t0 + DAY + 9 * 3600, worker=WorkerModel(8, 60.0),
                         cold_start=ColdStart(fixed_s=30.0), service_time_s=20.0, warmup_s=3600.0,
                         predictive=PredictiveSettings(history_s=DAY, tune=False, guard="off"))
    observed = run(trace, "predictive", cfg)
    assert observed.schedule and all(c.reason["peakedness"] > 2 for c in observed.schedule)
    from prewarm.backtest.runner import capacity_for, predictive_policy
    poisson = run(trace, "predictive", replace(cfg, policy=replace(
        predictive_policy(capacity_for(trace, cfg), cfg), burstiness="poisson")))
    assert all(c.reason["peakedness"] == 1 for c in poisson.schedule)
    assert max(c.warm_workers for c in observed.schedule) > max(c.warm_workers for c in poisson.schedule)
    assert observed.cold_requests < poisson.cold_requests / 2


def test_from_counts_spreads_each_bucket_as_the_per_minute_loader(tmp_path):
    # What the daemon hands the static guard from its store: the same arrivals as the loader.
    from prewarm.backtest.traces import from_counts

    f = tmp_path / "t.csv"
    f.write_text("ts,endpoint,requests\n2024-01-01T00:00:00Z,a,3\n2024-01-01T00:02:00Z,a,2\n")
    t0 = ts("2024-01-01T00:00:00Z")
    assert np.array_equal(from_counts("a", [t0, t0 + 120], [3, 2], seed=4).arrivals,
                          load_trace(f, seed=4)["a"].arrivals)
