"""Seasonal naive: tomorrow looks like today. The fallback every other model falls back to.

Built on statsforecast's SeasonalNaive (prediction intervals from its residuals). A series
shorter than one season falls back to its historic average, so a new endpoint still gets a
forecast rather than none.
"""
from __future__ import annotations

from typing import Sequence

from .base import Forecaster, ForecastError, tidy


class SeasonalNaiveForecaster(Forecaster):
    name = "seasonal-naive"

    def __init__(self, season_s: int = 86400, **params) -> None:
        super().__init__(season_s=season_s, **params)
        self.season_s = int(season_s)

    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95)):
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast.models import HistoricAverage, SeasonalNaive

        if history.empty:
            raise ForecastError("no history to forecast from", model=self.name)
        season = max(1, self.season_s // step_s)
        freq = f"{step_s}s"  # a pandas offset alias; statsforecast rejects a Timedelta
        sizes = history.groupby("unique_id", sort=False)["y"].size()
        long_ids = sizes.index[sizes >= 2 * season]
        short_ids = sizes.index[sizes < 2 * season]
        parts = []
        for ids, model in ((long_ids, SeasonalNaive(season_length=season)),
                           (short_ids, HistoricAverage())):
            if len(ids) == 0:
                continue
            part = history[history["unique_id"].isin(ids)]
            sf = StatsForecast(models=[model], freq=freq, n_jobs=1)
            out = sf.forecast(df=part, h=horizon, level=list(levels))
            alias = str(model)
            out = out.rename(columns=lambda c: c.replace(alias, "mean").replace("mean-", ""))
            parts.append(out)
        result = pd.concat(parts, ignore_index=True)
        return tidy(result, levels)
