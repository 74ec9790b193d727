"""Baselines with a known answer (hybrid-histogram on a periodic trace) and the seasonal-mean
forecaster the backtester uses by default."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prewarm.backtest.runner import BacktestConfig, run
from prewarm.forecasters.seasonal_mean import SeasonalMeanForecaster
from prewarm.backtest.simulator import ColdStart, WorkerModel
from prewarm.backtest.traces import Trace

DAY = 86400.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % DAY


def periodic_trace(period_s: float, days: int = 3) -> Trace:
    arrivals = T0 + np.arange(0.0, days * DAY, period_s)
    return Trace("periodic", arrivals, np.full(len(arrivals), 1.0))


def cfg(**kw) -> BacktestConfig:
    return BacktestConfig(start_s=T0 + 2 * DAY, end_s=T0 + 3 * DAY, worker=WorkerModel(1, 60.0),
                          cold_start=ColdStart(fixed_s=30.0), warmup_s=DAY, **kw)


def test_hybrid_histogram_prewarms_a_periodic_endpoint_just_in_time():
    # A request every 10 min, 1 s each: every idle time is 599 s (bin 9). Pre-warm window
    # 540 s x 0.9 = 486 s, keep-alive 600 s x 1.1 - 486 = 174 s: the worker is loaded 486 s
    # after each request ends, ready 30 s later, and serves the next one warm.
    r = run(periodic_trace(600.0), "hybrid-histogram", cfg())
    assert r.requests == 144 and r.cold_requests == 0
    assert any("pre-warm 486s keep 174s" in c.reason["why"] for c in r.schedule)
    # About 114 s of worker time per period (loaded at +486, used until +600), against the
    # 600 s of a worker kept alive, or the 10-min keep-alive's cold-free 24 h.
    assert r.worker_hours == pytest.approx(144 * 114 / 3600.0, rel=0.05)
    assert r.worker_hours < 0.25 * run(periodic_trace(600.0), "keepalive:660", cfg()).worker_hours


def test_hybrid_histogram_falls_back_to_a_4h_keepalive_when_idle_times_are_spread():
    rng = np.random.default_rng(3)
    gaps = rng.uniform(60.0, 4 * 3600.0, size=2400)  # flat over the histogram's range: CV < 2
    arrivals = T0 + np.cumsum(gaps)
    tr = Trace("spread", arrivals, np.full(len(arrivals), 1.0))
    c = cfg()
    c = BacktestConfig(start_s=float(arrivals[2000]), end_s=float(arrivals[-1]) + 1, worker=c.worker,
                       cold_start=c.cold_start, warmup_s=float(arrivals[2000] - arrivals[1900]))
    r = run(tr, "hybrid-histogram", c)
    whys = {cmd.reason["why"] for cmd in r.schedule}
    assert whys and all("fallback (4 h keep-alive)" in w for w in whys)
    assert {cmd.idle_timeout_s for cmd in r.schedule} == {4 * 3600.0}


def test_seasonal_mean_averages_the_same_time_of_day_over_days():
    step = 3600
    y = np.zeros(24 * 3)
    y[[5, 29, 53]] = [3.0, 6.0, 0.0]  # 05:00 on three days
    hist = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=len(y), freq="h"), "y": y})
    out = SeasonalMeanForecaster(days=7).forecast(hist, horizon=30, step_s=step, levels=(80,))
    assert len(out) == 30 and (out["ds"].iloc[0] == pd.Timestamp("2024-01-04 00:00"))
    assert out["mean"].iloc[5] == pytest.approx(3.0) and out["mean"].iloc[29] == pytest.approx(3.0)
    assert out["mean"].iloc[4] == 0.0
    assert out["hi-80"].iloc[5] >= out["mean"].iloc[5] >= out["lo-80"].iloc[5] >= 0.0
    short = SeasonalMeanForecaster(days=1).forecast(hist, horizon=24, step_s=step)
    assert short["mean"].iloc[5] == 0.0  # yesterday only: the seasonal naive copy


@pytest.mark.parametrize("hours", [6, 30])
def test_seasonal_mean_under_two_days_has_count_aware_bands_not_none(hours):
    """Under two seasons there are no days to take band quantiles across: the bands had zero
    width (NASA with a day of history: 0.4% of the next hours inside its 80% band). They now
    take the calibration layer's default width around the mean, and two days or more keep
    the quantiles across days."""
    from prewarm.forecasters.calibration import default_bands

    step = 300
    rng = np.random.default_rng(3)
    y = rng.poisson(40, size=hours * 12).astype(float)
    hist = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=len(y), freq="5min"), "y": y})
    out = SeasonalMeanForecaster(days=7).forecast(hist, horizon=24, step_s=step, levels=(80, 95))
    mean = out["mean"].to_numpy()
    assert (out["lo-95"] < out["lo-80"]).all() and (out["lo-80"] < mean).all()
    assert (mean < out["hi-80"]).all() and (out["hi-80"] < out["hi-95"]).all()
    expected = default_bands(mean, (80, 95))
    assert np.array_equal(out["hi-80"].to_numpy(), expected["hi-80"])
    # With two days the bands are quantiles across the days again (a copy per day).
    y2 = rng.poisson(40, size=2 * 288).astype(float)
    two = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=len(y2), freq="5min"), "y": y2})
    again = SeasonalMeanForecaster(days=7).forecast(two, horizon=24, step_s=step, levels=(80,))
    copies = np.stack([y2[288:288 + 24], y2[:24]])
    assert np.allclose(again["hi-80"].to_numpy(), np.quantile(copies, 0.9, axis=0))
