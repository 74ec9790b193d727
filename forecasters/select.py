"""`select` (the default): per endpoint, the candidate with the lowest rolling-origin error,
seasonal naive (same time yesterday) as the floor of the choice; bands from the chosen
candidate's own out-of-sample errors.

Candidates are cheap closed forms on the history array, so the whole rolling-origin
cross-validation of every candidate costs milliseconds per endpoint and runs at every
refresh (the choice follows a level shift within a day instead of waiting for a refit):

- `sn` seasonal naive, daily: `y[t - day]` (the baseline and floor);
- `snw` seasonal naive, weekly: `y[t - week]` (once the history has a week behind every
  cross-validation origin);
- `sm` seasonal mean: the mean of the same time of day over the last `days` days;
- `*-level`: a candidate scaled by the recent level, `r = (sum of the last `level_window`
  of actuals + prior) / (the candidate's own values there + prior)`, clipped to
  [1/`level_clip`, `level_clip`]: a forecast made at 10:00 knows 09:00-10:00;
- `mix-level`: the mean of `sm-level` and `snw-level` (or `sn-level` without a week).

Under a day of history none of the seasonal ones exists: the baseline is then the historic
average (what seasonal naive falls back to), against the mean of the last `level_window`.

Cross-validation: origins every `cv_stride_s` over the last `cv_days` (every step under a
day of history), each forecasting the requested horizon (the choice is made for the
horizon asked: a 1-hour forecast may pick a level-corrected candidate that a 6-hour one
does not). The lowest mean absolute error wins; a candidate must beat the baseline by
`margin` (a share of its error) to displace it.

Bands: the level-scaled calibration layer (`calibration.py`: a count-aware scale, per
series score quantiles with the finite-sample conformal correction) fitted on the chosen
candidate's cross-validation errors at the same horizon: exactly its out-of-sample errors,
so a smooth heavy series gets narrow bands and a bursty one wide.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .base import Forecaster, tidy
from .preprocess import DAY_S, WEEK_S, winsorise

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BASELINE = "sn"
SHORT_BASELINE = "mean"
CANDIDATES = ("sn", "snw", "sm", "sn-level", "snw-level", "sm-level", "mix-level")


@dataclass
class Choice:
    """One series' choice: the candidate, and every candidate's cross-validation MAE."""
    model: str
    scores: dict[str, float]
    origins: int


class SelectForecaster(Forecaster):
    name = "select"

    def __init__(self, cv_days: float = 7.0, cv_stride_s: int = 3600, days: int = 7,
                 level_window_s: int = 3600, level_prior: float = 2.0, level_clip: float = 4.0,
                 margin: float = 0.0, candidates: Sequence[str] = CANDIDATES,
                 max_calibration_errors: int = 20000, **params) -> None:
        unknown = set(candidates) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"select: unknown candidates {sorted(unknown)} (known: {', '.join(CANDIDATES)})")
        if BASELINE not in candidates:
            raise ValueError("select: the candidates must include the baseline 'sn'")
        if days < 1 or cv_days <= 0 or cv_stride_s <= 0 or level_window_s <= 0 or level_clip < 1:
            raise ValueError("select: days >= 1, cv_days, cv_stride_s and level_window_s > 0, level_clip >= 1")
        # backend/n_jobs come from [forecast] for every model; a numpy model uses neither
        params.pop("backend", None)
        params.pop("n_jobs", None)
        super().__init__(**params)
        self.cv_days, self.cv_stride_s, self.days = float(cv_days), int(cv_stride_s), int(days)
        self.level_window_s, self.level_prior, self.level_clip = int(level_window_s), float(level_prior), float(level_clip)
        self.margin, self.candidates = float(margin), tuple(candidates)
        self.max_calibration_errors = int(max_calibration_errors)
        self.last_choices: dict[str, Choice] = {}

    def describe(self) -> str:
        return self.name

    # --- the forecast ----------------------------------------------------------------------
    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95)):
        import numpy as np
        import pandas as pd

        from . import calibration as cal

        df = history[["unique_id", "ds", "y"]]
        capped = winsorise(df) if len(df) else df
        step = pd.Timedelta(seconds=int(step_s))
        points, errors = [], []
        self.last_choices = {}
        for uid, part in capped.groupby("unique_id", sort=False):
            y = part["y"].to_numpy(float)
            raw = df.loc[part.index, "y"].to_numpy(float)
            ds = part["ds"].to_numpy()
            choice, mean, cv = self.choose(y, raw, horizon=horizon, step_s=step_s)
            self.last_choices[str(uid)] = choice
            last = part["ds"].iloc[-1]
            points.append(pd.DataFrame({"unique_id": uid, "ds": last + step * np.arange(1, horizon + 1),
                                        "mean": np.clip(mean, 0.0, None), "model": choice.model}))
            if cv is not None:
                target, fc = cv
                errors.append(pd.DataFrame({"unique_id": uid, "ds": ds[target], "y": raw[target], "mean": fc}))
        if not points:
            raise ValueError("select: no history to forecast from")
        point = pd.concat(points, ignore_index=True)
        ids = [str(u) for u in point["unique_id"].unique()]
        profile = cal.LevelProfile.from_history(df, step_s)
        err = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=["unique_id", "ds", "y", "mean"])
        fitted = cal.fit(err, profile, levels) if len(err) else cal.Calibration.from_dicts({})
        self.last_calibration = cal.with_default(fitted, ids, levels)
        out = cal.apply(point, self.last_calibration, profile, levels)
        return tidy(out, levels, keep=["model"])

    # --- one series -----------------------------------------------------------------------
    def choose(self, y: "np.ndarray", raw: "np.ndarray", *, horizon: int, step_s: int):
        """(Choice, forecast of the next `horizon` steps, (CV target indices, CV forecasts
        of the chosen candidate) or None). `y` is the capped history the candidates are
        built on, `raw` the actuals they are scored against."""
        import numpy as np

        n = len(y)
        per = max(1, DAY_S // step_s)
        window = max(1, round(self.level_window_s / step_s))
        seasonal = n >= per + horizon + 1
        if seasonal:
            stride = max(1, round(self.cv_stride_s / step_s))
            first = max(per, n - horizon - round(self.cv_days * DAY_S / step_s))
            names = [c for c in self.candidates if c != "mean"]
            baseline = BASELINE
        else:  # under a day: the historic average against the recent mean, every step
            stride, first = 1, max(window, min(n - horizon, max(2, n // 3)))
            names, baseline = [SHORT_BASELINE, "recent"], SHORT_BASELINE
        origins = np.arange(n - horizon, first - 1, -stride)[::-1] if n - horizon >= first else np.array([], int)
        bank = _Bank(y, n, per, self.days, window, self.level_prior, self.level_clip)
        leads = np.arange(horizon)
        scores: dict[str, float] = {}
        cv_fc: dict[str, np.ndarray] = {}
        target = origins[:, None] + leads[None, :]
        for name in names:
            if len(origins) == 0:
                break
            fc = bank.forecast(name, origins, leads)
            if fc is None or np.isnan(fc).any():
                continue
            cv_fc[name] = fc
            scores[name] = float(np.mean(np.abs(raw[target] - fc)))
        pick = baseline
        if baseline in scores:
            floor = scores[baseline]
            best = min(scores, key=lambda k: (scores[k], k != baseline))
            if best != baseline and scores[best] < floor * (1 - self.margin):
                pick = best
        elif scores:
            pick = min(scores, key=scores.get)
        mean = bank.forecast(pick, np.array([n]), leads)
        if mean is None or np.isnan(mean).any():  # e.g. no day of history: the baseline's fallback
            pick = SHORT_BASELINE
            mean = bank.forecast(pick, np.array([n]), leads)
        choice = Choice(pick, scores, len(origins))
        if pick not in cv_fc:
            return choice, mean[0], None
        flat_t, flat_f = target.ravel(), cv_fc[pick].ravel()
        if len(flat_t) > self.max_calibration_errors:  # the most recent errors
            flat_t, flat_f = flat_t[-self.max_calibration_errors:], flat_f[-self.max_calibration_errors:]
        return choice, mean[0], (flat_t, flat_f)


class _Bank:
    """The candidates' forecasts for any origins and leads of one series, from the history
    before each origin only. A seasonal candidate is a 'fitted' array `fit[t]` (its value
    for step t from data at least a season before t) and its season; its forecast from
    origin o at lead h is `fit[o + h % season]`."""

    def __init__(self, y, n, per, days, window, prior, clip):
        import numpy as np

        self.y, self.n, self.per, self.days = y, n, per, days
        self.window, self.prior, self.clip = window, prior, clip
        self.cum = np.concatenate([[0.0], np.cumsum(y)])
        self._fits: dict[str, tuple] = {}

    def _fit(self, base: str):
        import numpy as np

        if base in self._fits:
            return self._fits[base]
        y, n, per = self.y, self.n, self.per
        if base == "sn":
            season = per
            fit = np.full(n + season, np.nan)
            fit[season:] = y
        elif base == "snw":
            season = 7 * per
            fit = np.full(n + season, np.nan)
            fit[season:] = y if n >= season else np.nan
        elif base == "sm":
            season = per
            total = np.zeros(n + per)
            count = np.zeros(n + per)
            for d in range(1, self.days + 1):
                lag = d * per
                if lag >= n + per:
                    break
                total[lag:] += y[:n + per - lag]
                count[lag:] += 1
            with np.errstate(invalid="ignore", divide="ignore"):
                fit = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            raise KeyError(base)
        self._fits[base] = (fit, season, np.concatenate([[0.0], np.nancumsum(fit)]),
                            np.concatenate([[0], np.cumsum(np.isnan(fit))]))
        return self._fits[base]

    def _plain(self, base, origins, leads):
        fit, season, _, _ = self._fit(base)
        return fit[origins[:, None] + (leads % season)[None, :]]

    def _ratio(self, base, origins):
        """Recent level against the candidate's own values over the last `window` steps."""
        import numpy as np

        _, _, cfit, cnan = self._fit(base)
        lo = origins - self.window
        ok = (lo >= 0) & (cnan[origins] - cnan[np.maximum(lo, 0)] == 0)
        lo = np.maximum(lo, 0)
        seen = self.cum[origins] - self.cum[lo]
        expected = cfit[origins] - cfit[lo]
        ratio = np.clip((seen + self.prior) / (expected + self.prior), 1 / self.clip, self.clip)
        return np.where(ok, ratio, np.nan)

    def forecast(self, name: str, origins: "np.ndarray", leads: "np.ndarray") -> "np.ndarray | None":
        import numpy as np

        if name == "mean":  # historic average up to each origin
            avg = self.cum[origins] / np.maximum(origins, 1)
            return np.repeat(avg[:, None], len(leads), axis=1)
        if name == "recent":
            lo = np.maximum(origins - self.window, 0)
            avg = (self.cum[origins] - self.cum[lo]) / np.maximum(origins - lo, 1)
            return np.repeat(avg[:, None], len(leads), axis=1)
        if name == "mix-level":
            week = "snw-level" if self.n >= 7 * self.per + 1 else "sn-level"
            a, b = self.forecast("sm-level", origins, leads), self.forecast(week, origins, leads)
            return None if a is None or b is None else (a + b) / 2
        base, _, level = name.partition("-")
        if base == "snw" and int(origins.min()) < 7 * self.per:
            return None
        plain = self._plain(base, origins, leads)
        if not level:
            return plain
        return plain * self._ratio(base, origins)[:, None]
