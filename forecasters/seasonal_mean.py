"""Seasonal mean: each future step is the mean of the same time of day over the last `days`
days (statsforecast's SeasonalWindowAverage); the bands are quantiles across those days, so a
quiet day and a busy one widen them.

Why it exists: on sparse traffic (the Alibaba models: 70% of minutes empty) yesterday alone
(seasonal naive) is a poor estimate of the rate at a time of day; one empty hour yesterday
reads as a lull today, and a quiet Saturday copied into Sunday drops the whole day. Averaging
a week of days is the rate estimate the planner's break-even rules need. It is the model of
the default predictive policy, in the daemon and in the backtester alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Forecaster, tidy
from .calibration import default_bands


class SeasonalMeanForecaster(Forecaster):
    name = "seasonal-mean"

    def __init__(self, days: int = 7, season_s: int = 86400, **params) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        super().__init__(days=days, season_s=season_s, **params)
        self.days = int(days)
        self.season_s = int(season_s)

    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95)):
        import pandas as pd
        from statsforecast.models import SeasonalWindowAverage

        per = max(1, self.season_s // int(step_s))
        ahead = np.arange(horizon)
        frames = []
        for uid, part in history.groupby("unique_id", sort=False):
            y = part["y"].to_numpy(float)
            n = len(y)
            k = min(self.days, n // per)
            if k == 0:  # less than a season: the historic average
                copies = np.full((1, horizon), y.mean() if n else 0.0)
                mean = copies[0]
            else:
                mean = SeasonalWindowAverage(season_length=per, window_size=k).forecast(y=y, h=horizon)["mean"]
                # The same days, one row each, for the bands: step h ahead is y[n + (h mod per) - d per].
                d = np.arange(1, k + 1)[:, None]
                copies = y[n + (ahead[None, :] % per) - d * per]
            out = {"unique_id": uid,
                   "ds": part["ds"].iloc[-1] + pd.to_timedelta((ahead + 1) * int(step_s), unit="s"),
                   "mean": mean}
            if k < 2:
                # Under two seasons there are no days to take quantiles across: one copy (or
                # none) gave bands of zero width, which covered 0.4% of the next hours on NASA
                # with a day of history. The calibration layer's default width instead.
                out.update(default_bands(np.asarray(mean, dtype=float), levels))
            else:
                for lv in levels:
                    out[f"lo-{lv}"] = np.quantile(copies, 0.5 - lv / 200.0, axis=0)
                    out[f"hi-{lv}"] = np.quantile(copies, 0.5 + lv / 200.0, axis=0)
            frames.append(pd.DataFrame(out))
        if not frames:
            return pd.DataFrame(columns=["unique_id", "ds", "mean", *[f"{s}-{lv}" for lv in levels for s in ("lo", "hi")]])
        return tidy(pd.concat(frames, ignore_index=True), levels)
