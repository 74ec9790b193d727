"""A bound, not a forecaster: the rate the trace really had, handed to the planner as its forecast.

`backtest_bench.py --forecaster rate-oracle[:MINUTES]` replays the predictive policy with this in
place of `select`: at each refit origin the "forecast" of every step ahead is the trace's own
request rate around that step (the true counts averaged over a centred window of MINUTES, 60 by
default), with Poisson bands around it. It knows how busy each hour will be, not when each
request comes (the clairvoyant bound knows that). It reads the future on purpose, so it is only
ever a diagnostic: how much of the static envelope a plan could beat if its forecasts of the
rate were perfect. Where even this misses the bar, a better forecaster cannot make the plan
beat it; the planner or the bar is what stands in the way.
"""
from __future__ import annotations

import numpy as np


class RateOracle:
    name = "rate-oracle"
    per_series = True  # each series alone: the replay may batch origins

    def __init__(self, trace, step_s: int, window_s: float = 3600.0) -> None:
        self.step_s = int(step_s)
        self.grid0 = float(np.floor(trace.arrivals[0] / self.step_s) * self.step_s)
        counts = trace.per_step_counts(self.grid0, float(trace.arrivals[-1]) + self.step_s, self.step_s)
        w = max(1, int(round(window_s / self.step_s)))
        kernel = np.ones(w) / w
        self.rate = np.convolve(counts, kernel, mode="same")  # true counts per step, centred mean

    def describe(self) -> str:
        return self.name

    def forecast(self, history, *, horizon: int, step_s: int, levels=(80, 95)):
        import pandas as pd
        from scipy.stats import poisson

        if int(step_s) != self.step_s:
            raise ValueError(f"rate-oracle built for {self.step_s} s steps, asked for {step_s}")
        frames = []
        for uid, part in history.groupby("unique_id", sort=False):
            last = part["ds"].max().value / 1e9
            first = int(round((last + step_s - self.grid0) / step_s))
            idx = np.arange(first, first + horizon)
            mean = np.where((idx >= 0) & (idx < len(self.rate)), self.rate[np.clip(idx, 0, len(self.rate) - 1)], 0.0)
            ds = pd.to_datetime((self.grid0 + idx * step_s) * 1e9)
            cols = {"unique_id": uid, "ds": ds, "mean": mean}
            for lv in levels:
                tail = (1 - lv / 100) / 2
                cols[f"lo-{lv}"] = poisson.ppf(tail, mean)
                cols[f"hi-{lv}"] = poisson.ppf(1 - tail, mean)
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)
