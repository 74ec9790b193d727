"""Seasonal naive: tomorrow looks like today (or like the same day last week).

The fallback every other model falls back to. Built on statsforecast's SeasonalNaive, with
bands from the level-scaled calibration layer (`calibration.py`) fitted on its in-sample
errors `y[t] - y[t - season]` over the last `calibration_days` (exactly its out-of-sample
errors for horizons up to a season); `calibration = "model"` gives statsforecast's own
residual-based intervals (one width for the whole day: the baseline of the benchmarks). `seasonal-naive` repeats the last day;
`seasonal-naive-weekly` the same day last week once there are two weeks of history (the
last day before that). A series shorter than two days gets its historic average, so a new
endpoint still gets a forecast rather than none.
"""
from __future__ import annotations

from .calibration import WEEK_HALF_LIFE_DAYS
from .preprocess import DAY_S, WEEK_S
from .sfbase import CV_COLUMNS, StatsForecastForecaster


class SeasonalNaiveForecaster(StatsForecastForecaster):
    name = "seasonal-naive"
    cheap_errors = True  # calibrated from its in-sample errors at every forecast: none stored
    error_half_life_days = WEEK_HALF_LIFE_DAYS  # a week of errors: the recent days count more

    def __init__(self, season_s: int = DAY_S, calibration_days: int = 7, **params) -> None:
        super().__init__(season_s=season_s, **params)
        self.season_s = int(season_s)
        self.seasons_s = tuple(sorted({min(DAY_S, self.season_s), self.season_s}))
        self.calibration_days = int(calibration_days)

    def errors(self, df, raw, *, horizon: int, step_s: int):
        """In-sample errors of the seasonal copy over the last `calibration_days`."""
        import pandas as pd

        parts = []
        for key, ids, _ in self._groups(df, step_s):
            if not key:
                continue
            part = df[df["unique_id"].isin(ids)]
            mean = part.groupby("unique_id", sort=False)["y"].shift(key[-1])
            frame = pd.DataFrame({"unique_id": part["unique_id"], "ds": part["ds"], "mean": mean,
                                  "y": raw.loc[part.index, "y"]})
            if "imputed" in raw.columns:
                frame["imputed"] = raw.loc[part.index, "imputed"]
            last = frame.groupby("unique_id", sort=False)["ds"].transform("max")
            recent = frame["ds"] > last - pd.Timedelta(days=self.calibration_days)
            parts.append(frame[recent & frame["mean"].notna()])
        if not parts:
            return pd.DataFrame(columns=[*CV_COLUMNS, "mean"])
        return pd.concat(parts)

    def cv_bands(self, cv, df, raw, *, horizon: int, step_s: int, levels):
        """Calibrated on the errors before the first window: honest, and a week of them."""
        from . import calibration as cal

        first = cv.groupby("unique_id")["cutoff"].min()
        before = df["ds"] <= df["unique_id"].map(first)
        profile = cal.LevelProfile.from_history(df[before], step_s)
        errors = self.errors(df[before], raw.loc[df.index[before]], horizon=horizon, step_s=step_s)
        ids = [str(u) for u in cv["unique_id"].unique()]
        fitted = cal.fit(errors, profile, levels, half_life_days=self.error_half_life_days) \
            if len(errors) else cal.Calibration.from_dicts({})
        self.last_calibration = cal.with_default(fitted, ids, levels)
        return cal.apply(cv, self.last_calibration, profile, levels)

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import SeasonalNaive

        return SeasonalNaive(season_length=season_steps[-1])


class SeasonalNaiveWeeklyForecaster(SeasonalNaiveForecaster):
    name = "seasonal-naive-weekly"

    def __init__(self, season_s: int = WEEK_S, **params) -> None:
        super().__init__(season_s=season_s, **params)
