"""bench/rate_oracle.py is a bound the docs draw conclusions from (docs/backtesting.md): its
"forecast" must be the trace's own rate at the steps asked for, aligned to the replay's grid."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from rate_oracle import RateOracle  # noqa: E402

from prewarm.backtest.traces import Trace  # noqa: E402


def test_the_oracle_forecasts_the_rate_that_followed():
    step = 300
    base = 1_700_000_100.0 // step * step  # the grid starts at the step the first arrival is in
    # quiet for 2 hours (1 request a step), then 6 requests a step for 2 hours
    per_step = [1] * 24 + [6] * 24
    arrivals = np.concatenate([base + k * step + np.linspace(1, step - 1, n) for k, n in enumerate(per_step)])
    oracle = RateOracle(Trace("e", np.sort(arrivals), None), step, window_s=step)  # no averaging
    grid0 = np.floor(arrivals.min() / step) * step
    # the history ends with the step before step 20: the forecast starts at step 20
    history = pd.DataFrame({"unique_id": "a", "ds": pd.to_datetime((grid0 + np.arange(20) * step) * 1e9),
                            "y": per_step[:20]})
    out = oracle.forecast(history, horizon=10, step_s=step, levels=(80,))
    assert list(out["mean"]) == per_step[20:30]
    assert list(out["ds"]) == list(pd.to_datetime((grid0 + np.arange(20, 30) * step) * 1e9))
    assert (out["lo-80"] <= out["mean"]).all() and (out["hi-80"] >= out["mean"]).all()
    # an hour's window: the centred mean of the true counts
    smooth = RateOracle(Trace("e", np.sort(arrivals), None), step, window_s=3600)
    assert smooth.forecast(history, horizon=10, step_s=step)["mean"].iloc[4] == pytest.approx(np.mean(per_step[18:30]))
