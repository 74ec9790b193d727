"""Seasonal naive: tomorrow looks like today (or like the same day last week).

The fallback every other model falls back to. Built on statsforecast's SeasonalNaive, with
prediction intervals from its residuals. `seasonal-naive` repeats the last day;
`seasonal-naive-weekly` the same day last week once there are two weeks of history (the
last day before that). A series shorter than two days gets its historic average, so a new
endpoint still gets a forecast rather than none.
"""
from __future__ import annotations

from .preprocess import DAY_S, WEEK_S
from .sfbase import StatsForecastForecaster


class SeasonalNaiveForecaster(StatsForecastForecaster):
    name = "seasonal-naive"

    def __init__(self, season_s: int = DAY_S, **params) -> None:
        super().__init__(season_s=season_s, **params)
        self.season_s = int(season_s)
        self.seasons_s = tuple(sorted({min(DAY_S, self.season_s), self.season_s}))

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import SeasonalNaive

        return SeasonalNaive(season_length=season_steps[-1])


class SeasonalNaiveWeeklyForecaster(SeasonalNaiveForecaster):
    name = "seasonal-naive-weekly"

    def __init__(self, season_s: int = WEEK_S, **params) -> None:
        super().__init__(season_s=season_s, **params)
