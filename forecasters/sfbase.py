"""Shared machinery for forecasters that wrap one statsforecast model.

Per batch: the history is cleaned (extra columns dropped, outliers capped), series are
grouped by the seasons their length supports (a season needs two full cycles of history;
a series with none gets HistoricAverage), and each group runs through one StatsForecast
with `fallback_model` = SeasonalNaive (or HistoricAverage), so a model that fails on one
series still leaves it a forecast. Columns come back as `mean, lo-80, hi-80, ...`.

Bands: by default (`calibration="level"`) statsforecast gives the point forecast and the
level-scaled calibration layer (`calibration.py`) the bands, from the model's own errors
(`errors`: rolling-origin forecasts over `calibration_windows` windows; seasonal naive
overrides it with its in-sample errors). With `calibration="model"` the model's own
intervals are used; models without intervals of their own, or asked to
(`conformal=True`), get statsforecast's ConformalIntervals with `conformal_windows`
windows of the forecast horizon.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Sequence

from . import fastimport
from .base import Forecaster, ForecastError, interval_columns, tidy
from .preprocess import DAY_S, WEEK_S, winsorise

if TYPE_CHECKING:
    from .calibration import Calibration

if TYPE_CHECKING:
    import pandas as pd

CV_COLUMNS = ("unique_id", "ds", "cutoff", "y")


class StatsForecastForecaster(Forecaster):
    #: seasons (seconds) the model would like; the longest ones that fit are used
    seasons_s: tuple[int, ...] = (DAY_S,)
    #: False for models that have no interval of their own (always conformal then)
    own_intervals: bool = True
    #: cap outliers before fitting (seasonal models copy the past)
    robust: bool = True
    #: weight of an error in the calibration halves every this many days (None: alike)
    error_half_life_days: float | None = None

    def __init__(self, *, conformal: bool = False, conformal_windows: int = 5,
                 calibration: str = "level", calibration_windows: int = 8, n_jobs: int = 1,
                 backend: str = "local", calibrated: "Calibration | None" = None, **params: Any) -> None:
        fastimport.prime()  # before statsforecast is first imported: ~0.5 s less at start
        if calibration not in ("level", "model"):
            raise ValueError(f"{self.name}: calibration must be 'level' or 'model', got {calibration!r}")
        extra = {"conformal": True} if conformal else {}
        extra.update({"calibration": calibration} if calibration != "level" else {})
        super().__init__(**params, **extra)
        #: bands from the level-scaled calibration layer (`calibration.py`); otherwise the
        #: model's own intervals, conformal ones where it has none or when asked to
        self.layer = calibration == "level" and not conformal
        self.conformal = not self.layer and (conformal or not self.own_intervals)
        self.conformal_windows = int(conformal_windows)
        self.calibration_windows = int(calibration_windows)
        self.calibrated = calibrated  # stored with a model choice; computed when absent
        self.last_calibration: Calibration | None = None
        self.n_jobs = n_jobs
        self.backend = backend

    # --- what subclasses define -------------------------------------------------------
    def build(self, season_steps: tuple[int, ...], *, step_s: int, horizon: int) -> Any:
        """The statsforecast model for series supporting `season_steps` (may be empty)."""
        raise NotImplementedError

    # --- machinery -----------------------------------------------------------------------
    def usable_seasons(self, n_obs: int, step_s: int) -> tuple[int, ...]:
        steps = [s // step_s for s in self.seasons_s if s % step_s == 0 and s // step_s > 1]
        return tuple(s for s in steps if n_obs >= 2 * s)

    def intervals(self, horizon: int, n_obs: int):
        from statsforecast.utils import ConformalIntervals

        if not self.conformal:
            return None
        windows = min(self.conformal_windows, (n_obs - 1) // horizon - 1)
        if windows < 2:
            return None
        return ConformalIntervals(h=horizon, n_windows=windows)

    def _groups(self, df: "pd.DataFrame", step_s: int, reserve: int = 0):
        sizes = df.groupby("unique_id", sort=False)["y"].size() - reserve
        keys = {uid: self.usable_seasons(int(n), step_s) for uid, n in sizes.items()}
        groups: dict[tuple[int, ...], list[str]] = {}
        for uid, key in keys.items():
            groups.setdefault(key, []).append(uid)
        for key, ids in groups.items():
            yield key, ids, int(sizes[ids].min())

    def _model_for(self, key: tuple[int, ...], *, step_s: int, horizon: int, n_min: int,
                   with_intervals: bool = True):
        from statsforecast.models import HistoricAverage, SeasonalNaive

        short = not key and bool(self.seasons_s)
        model = HistoricAverage() if short else self.build(key, step_s=step_s, horizon=horizon)
        if short:
            model.alias = "short-history"
        elif with_intervals and self.conformal and getattr(model, "prediction_intervals", None) is None:
            model.prediction_intervals = self.intervals(horizon, n_min)
            if model.prediction_intervals is None and not self.own_intervals:
                model, short = HistoricAverage(), True  # too short to calibrate: plain average
        daily = DAY_S // step_s
        fallback = SeasonalNaive(season_length=daily) if n_min >= 2 * daily > 2 else HistoricAverage()
        return model, fallback

    def prepare(self, history: "pd.DataFrame") -> "pd.DataFrame":
        df = history[["unique_id", "ds", "y"]]
        if df.empty:
            raise ForecastError("no history to forecast from", model=self.name)
        if df["y"].isna().any():
            bad = df.loc[df["y"].isna(), "unique_id"].unique()[:5]
            raise ForecastError("history has missing values; fill gaps first (preprocess.fill_gaps)",
                                model=self.name, unique_ids=list(bad))
        return winsorise(df) if self.robust else df

    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95)):
        df = self.prepare(history)
        if not self.layer:
            return tidy(self.model_forecast(df, horizon=horizon, step_s=step_s, levels=levels), levels)
        # The model gets the seasons its calibration windows could see (a weekly season
        # fitted on 14 days but calibrated on 12-day windows without it would be scored
        # on errors it does not make).
        reserve = self.calibration_windows_for(df, horizon) * horizon
        point = self.model_forecast(df, horizon=horizon, step_s=step_s, levels=(), reserve=reserve)
        return tidy(self.calibrate(point, df, history, horizon=horizon, step_s=step_s, levels=levels), levels)

    def model_forecast(self, df, *, horizon: int, step_s: int, levels: Sequence[int], reserve: int = 0):
        """statsforecast's forecast of the prepared history: mean, and the model's own (or
        conformal) bands at `levels` (none when empty). Seasons are chosen as if the
        history were `reserve` steps shorter."""
        import pandas as pd
        from statsforecast import StatsForecast

        parts = []
        for key, ids, n_min in self._groups(df, step_s, reserve=reserve):
            n_min += reserve
            model, fallback = self._model_for(key, step_s=step_s, horizon=horizon, n_min=n_min,
                                              with_intervals=bool(levels))
            sf = StatsForecast(models=[model], freq=f"{step_s}s", n_jobs=self.n_jobs,
                               fallback_model=fallback)
            part = df[df["unique_id"].isin(ids)]
            with quiet():
                out = rename_model_columns(run_forecast(sf, part, horizon, levels, self.backend), model.alias)
            parts.append(self._patch_nans(out, part, fallback, horizon, step_s, levels))
        return pd.concat(parts, ignore_index=True)

    # --- the calibration layer -----------------------------------------------------------
    def calibrate(self, point, df, raw, *, horizon: int, step_s: int, levels: Sequence[int]):
        """Bands on a point forecast from the level-scaled calibration (`calibration.py`):
        a stored one for the series it covers, else fitted here from `errors`."""
        from . import calibration as cal

        profile = cal.LevelProfile.from_history(df, step_s)
        ids = [str(u) for u in point["unique_id"].unique()]
        known = self.calibrated if self.calibrated is not None else cal.Calibration.from_dicts({})
        todo = [u for u in ids if not known.covers([u], levels)]
        if todo:
            part = df[df["unique_id"].astype(str).isin(todo)]
            errors = self.errors(part, raw.loc[part.index], horizon=horizon, step_s=step_s)
            fitted = cal.fit(errors, profile, levels, half_life_days=self.error_half_life_days) \
                if len(errors) else cal.Calibration.from_dicts({})
            known = known.merged(cal.with_default(fitted, todo, levels))
        self.last_calibration = known
        return cal.apply(point, known, profile, levels)

    def calibration_windows_for(self, df, horizon: int) -> int:
        """Rolling-origin windows the calibration uses on this history (0: none)."""
        if getattr(self, "cheap_errors", False):
            return 0
        shortest = int(df.groupby("unique_id", sort=False)["y"].size().min())
        windows = min(self.calibration_windows, shortest // horizon - 1)
        return windows if windows >= 2 else 0

    def errors(self, df, raw, *, horizon: int, step_s: int) -> "pd.DataFrame":
        """Forecast errors to calibrate on (unique_id, ds, y, mean): the model's own
        rolling-origin forecasts over `calibration_windows` windows of the horizon."""
        import pandas as pd

        windows = self.calibration_windows_for(df, horizon)
        if windows < 2:  # too short: `calibration.with_default` bands
            return pd.DataFrame(columns=[*CV_COLUMNS, "mean"])
        return self.point_cv(df, raw, horizon=horizon, step_s=step_s, n_windows=windows, levels=())

    def _patch_nans(self, out, part, fallback, horizon, step_s, levels):
        """A model that returns NaN instead of raising (too short for its season, a
        degenerate fit) would read as zero demand: forecast those series with the fallback."""
        from statsforecast import StatsForecast

        bad = out.loc[out[["mean", *interval_columns(levels)]].isna().any(axis=1), "unique_id"].unique()
        if len(bad) == 0:
            return out
        sf = StatsForecast(models=[fallback], freq=f"{step_s}s", n_jobs=1)
        with quiet():
            redo = rename_model_columns(
                sf.forecast(df=part[part["unique_id"].isin(bad)], h=horizon, level=list(levels) or None),
                fallback.alias)
        return pd_concat([out[~out["unique_id"].isin(bad)], redo])

    def cross_validation(self, history, *, horizon: int, step_s: int, n_windows: int,
                         levels: Sequence[int] = (80, 95)) -> "pd.DataFrame":
        """Rolling origin (statsforecast's cross_validation, refit at every window):
        unique_id, ds, cutoff, y (the raw actuals, not the capped ones), mean, bands.
        Series too short for n_windows windows plus one season of training are left out.
        With the calibration layer no window is scored on bands calibrated on it:
        `cv_bands` says how. `last_calibration` is then the one to store with a choice."""
        df = self.prepare(history)
        if not self.layer:
            out = self.point_cv(df, history, horizon=horizon, step_s=step_s, n_windows=n_windows,
                                levels=levels)
            return tidy(out, levels, keep=_keep(out))
        out = self.point_cv(df, history, horizon=horizon, step_s=step_s, n_windows=n_windows, levels=())
        if out.empty:  # too short for any window: no scores (the point CV asked for no bands)
            return tidy(out.reindex(columns=[*out.columns, *interval_columns(levels)]), levels,
                        keep=_keep(out))
        return tidy(self.cv_bands(out, df, history, horizon=horizon, step_s=step_s, levels=levels),
                    levels, keep=_keep(out))

    def cv_bands(self, cv, df, raw, *, horizon: int, step_s: int, levels: Sequence[int]):
        """Cross-fitted: each half of the windows gets bands calibrated on the other half."""
        from . import calibration as cal

        first = cv.groupby("unique_id")["cutoff"].min()
        before = df[df["ds"] <= df["unique_id"].map(first)]
        profile = cal.LevelProfile.from_history(before, step_s)
        ids = [str(u) for u in cv["unique_id"].unique()]
        hl = self.error_half_life_days
        self.last_calibration = cal.with_default(cal.fit(cv, profile, levels, half_life_days=hl), ids, levels)
        return cal.cross_fitted(cv, profile, levels, half_life_days=hl)

    def point_cv(self, df, raw, *, horizon: int, step_s: int, n_windows: int,
                 levels: Sequence[int]) -> "pd.DataFrame":
        """statsforecast's cross_validation of the prepared history, joined to the raw
        actuals: unique_id, ds, cutoff, y, [imputed], mean, [bands]."""
        import pandas as pd
        from statsforecast import StatsForecast

        parts = []
        for key, ids, n_min in self._groups(df, step_s, reserve=n_windows * horizon):
            if n_min < max(horizon, 2):
                continue
            model, fallback = self._model_for(key, step_s=step_s, horizon=horizon, n_min=n_min,
                                              with_intervals=bool(levels))
            sf = StatsForecast(models=[model], freq=f"{step_s}s", n_jobs=self.n_jobs,
                               fallback_model=fallback)
            with quiet():
                out = sf.cross_validation(df=df[df["unique_id"].isin(ids)], h=horizon, n_windows=n_windows,
                                          step_size=horizon, level=list(levels) or None)
            parts.append(rename_model_columns(out, model.alias))
        if not parts:
            return pd.DataFrame(columns=[*CV_COLUMNS, "mean", *interval_columns(levels)])
        out = pd.concat(parts, ignore_index=True).drop(columns=["y"])
        return out.merge(raw[[c for c in ("unique_id", "ds", "y", "imputed") if c in raw]],
                         on=["unique_id", "ds"], how="left")


def _keep(cv: "pd.DataFrame") -> list[str]:
    return ["cutoff", "y", *(["imputed"] if "imputed" in cv else [])]


def pd_concat(frames):
    import pandas as pd
    return pd.concat(frames, ignore_index=True)


def rename_model_columns(frame: "pd.DataFrame", alias: str) -> "pd.DataFrame":
    """'AutoETS' -> 'mean', 'AutoETS-lo-80' -> 'lo-80'."""
    def rename(col: str) -> str:
        if col == alias:
            return "mean"
        if col.startswith(alias + "-"):
            return col[len(alias) + 1:]
        return col
    return frame.rename(columns=rename)


def run_forecast(sf, df: "pd.DataFrame", horizon: int, levels: Sequence[int], backend: str):
    """Local, or on a Dask cluster through statsforecast's fugue backend (the client must
    already be connected: `prewarm.forecasting.dask_client`)."""
    if backend == "local":
        return sf.forecast(df=df, h=horizon, level=list(levels) or None)
    if backend == "dask":
        import dask.dataframe as dd
        from distributed import default_client

        workers = max(1, len(default_client().scheduler_info()["workers"]))
        ddf = dd.from_pandas(df.sort_values(["unique_id", "ds"]), npartitions=max(1, 2 * workers))
        out = sf.forecast(df=ddf, h=horizon, level=list(levels) or None)
        out = out.compute() if hasattr(out, "compute") else out
        return out.sort_values(["unique_id", "ds"], ignore_index=True)
    raise ForecastError(f"unknown backend {backend!r} (expected 'local' or 'dask')", model=sf.models[0].alias)


@contextmanager
def quiet():
    """statsforecast's optimisers warn on every hard series (convergence, zero variance);
    the fallback and the scores deal with the outcome, the log need not repeat it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield

