"""AutoETS, AutoTheta and AutoARIMA on hourly sums, split back to the requested step.

At 5 minutes a daily season is 288 steps: statsforecast's AutoETS only considers seasonal
models up to a season of 24 (it picked a non-seasonal one on seasonal data and took 25 s),
and seasonal AutoARIMA ran out of memory past 7 GB. Hourly sums have a daily season of 24,
which these models handle in a fraction of a second. The hourly forecast is split into the
requested steps by each series' intra-hour profile over the last week
(`resolution.intra_profile`, `resolution.disaggregate`: the mean by share, the band excess
by the square root of the share).
"""
from __future__ import annotations

import math
from typing import Sequence

from .preprocess import DAY_S
from .resolution import aggregate, disaggregate, intra_profile
from .sfbase import StatsForecastForecaster


class _Aggregated(StatsForecastForecaster):
    seasons_s = (DAY_S,)

    def __init__(self, aggregate_s: int = 3600, **params) -> None:
        super().__init__(aggregate_s=aggregate_s, **params)
        self.aggregate_s = int(aggregate_s)

    def _coarse_s(self, step_s: int) -> int:
        if self.aggregate_s <= step_s:
            return step_s
        if self.aggregate_s % step_s:
            raise ValueError(f"{self.name}: aggregate_s={self.aggregate_s} is not a multiple of the step {step_s}s")
        return self.aggregate_s

    def model_forecast(self, df, *, horizon: int, step_s: int, levels: Sequence[int], reserve: int = 0):
        coarse_s = self._coarse_s(step_s)
        if coarse_s == step_s:
            return super().model_forecast(df, horizon=horizon, step_s=step_s, levels=levels, reserve=reserve)
        coarse = aggregate(df, step_s, coarse_s)
        last = df.groupby("unique_id")["ds"].max()
        # The trailing partial hour was dropped: forecast it too, then keep what is ahead.
        lag_s = int((last - coarse.groupby("unique_id")["ds"].max()).max().total_seconds())
        h_coarse = math.ceil((lag_s + horizon * step_s) / coarse_s)
        out = super().model_forecast(coarse, horizon=h_coarse, step_s=coarse_s, levels=levels,
                                     reserve=math.ceil(reserve * step_s / coarse_s))
        fine = disaggregate(out, coarse_s, step_s, intra_profile(df, coarse_s, step_s))
        fine = fine[fine["ds"] > fine["unique_id"].map(last)]
        return fine.groupby("unique_id", sort=False).head(horizon).reset_index(drop=True)

    def point_cv(self, df, raw, *, horizon: int, step_s: int, n_windows: int, levels: Sequence[int]):
        """Windows at whole coarse steps: the caller aligns the history to end on one
        (`auto.align_history`) so that every model is scored on the same windows."""
        coarse_s = self._coarse_s(step_s)
        if coarse_s == step_s:
            return super().point_cv(df, raw, horizon=horizon, step_s=step_s, n_windows=n_windows,
                                    levels=levels)
        k = coarse_s // step_s
        coarse = aggregate(df, step_s, coarse_s)
        out = super().point_cv(coarse, coarse, horizon=math.ceil(horizon / k), step_s=coarse_s,
                               n_windows=n_windows, levels=levels)
        if out.empty:
            return out
        fine = disaggregate(out.drop(columns=["y", "imputed"], errors="ignore"), coarse_s, step_s,
                            intra_profile(df, coarse_s, step_s))
        fine["cutoff"] = fine["cutoff"] + _seconds(coarse_s - step_s)
        fine = fine.merge(raw[[c for c in ("unique_id", "ds", "y", "imputed") if c in raw]],
                          on=["unique_id", "ds"], how="inner")
        fine = fine[fine["ds"] <= fine["cutoff"] + _seconds(horizon * step_s)]
        cols = ["unique_id", "ds", "cutoff", "y", *(["imputed"] if "imputed" in fine else [])]
        return fine[cols + [c for c in out.columns if c not in cols]].reset_index(drop=True)


def _seconds(n: int):
    import pandas as pd
    return pd.Timedelta(seconds=n)


class AutoETSForecaster(_Aggregated):
    name = "autoets"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import AutoETS
        return AutoETS(season_length=season_steps[-1])


class AutoThetaForecaster(_Aggregated):
    name = "autotheta"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import AutoTheta
        return AutoTheta(season_length=season_steps[-1])


class AutoARIMAForecaster(_Aggregated):
    name = "autoarima"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import AutoARIMA
        # The full stepwise search took 16 s per series on hourly NASA; this bounded one
        # 0.3 s at the same error (orders beyond 2 rarely win on request counts).
        return AutoARIMA(season_length=season_steps[-1], max_p=2, max_q=2, max_P=1, max_Q=1,
                         approximation=True)
