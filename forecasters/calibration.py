"""Prediction bands that scale with the level of the series: a calibration layer on top of
any statsforecast point forecast.

Why: statsforecast's residual-based intervals (SeasonalNaive's, conformal ones) have one
width for the whole day. On traffic with 0.05 requests a minute at night and 40 at the
afternoon peak, the peak's errors set the night's band: hi-80 = 4.8 req/min at 03:00 when
the mean is 0, and the planner holds workers all night for nobody.

How (vectorised over all series of a batch, no loop per series):

1. Level profile `L(slot)`: the mean count per step at each time of day over the last
   `days` days, smoothed over +-`smooth_s / 2`, so a quiet night has a small but non-zero
   level and a burst does not make one slot look busy.
2. Scale function, count-aware: errors of count forecasts have a variance like the
   negative binomial's, `a*(L + kappa*L^2)`: a Poisson part (`L`) plus overdispersion
   (`kappa*L^2`, day-to-day swings that grow with the level). Only the shape `kappa`
   matters (the width comes from step 3); per series it is the one of `KAPPAS` under which
   the scaled errors are most alike from the quiet to the busy quarter of the day.
3. Scores `z = error / s(L)` with `s = sqrt(L + kappa*L^2 + floor)`, pooled over the day and
   the horizon (the scale makes them comparable), and their empirical quantiles per series
   with the finite-sample conformal correction: band = mean + z_q * s(L at the target).

The errors come from the model's own rolling-origin forecasts (statsforecast
cross_validation), or for seasonal naive from its in-sample errors `y[t] - y[t - season]`,
which are exactly its out-of-sample errors for horizons up to a season (free, and a week
of them). A calibration is plain data (`Calibration.to_dict`) so that the automatic choice
can store it with the model and reuse it until the next refit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from .base import interval_columns, level_to_quantile

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DAY_S = 86400
#: a floor under the scale so a slot that never saw a request still gets a band of a few
#: tenths of a request per step when the model forecasts something there
LEVEL_FLOOR = 0.05


def _slot(ds: "pd.Series", step_s: int) -> "np.ndarray":
    seconds = ds.to_numpy().astype("datetime64[s]").astype("int64")
    return ((seconds % DAY_S) // step_s).astype("int64")


@dataclass
class LevelProfile:
    """Smoothed mean count per step at each time of day, one row per series."""

    ids: "pd.Index"
    values: "np.ndarray"  # (n series, slots per day)
    step_s: int

    @classmethod
    def from_history(cls, history: "pd.DataFrame", step_s: int, *, days: int = 7,
                     smooth_s: int = 3600) -> "LevelProfile":
        import numpy as np
        from scipy.ndimage import uniform_filter1d

        slots = max(1, DAY_S // step_s)
        last = history.groupby("unique_id", sort=False)["ds"].transform("max")
        recent = history[history["ds"] > last - _days(days)]
        sums = recent.groupby(["unique_id", _slot(recent["ds"], step_s)], sort=False)["y"].mean()
        wide = sums.unstack(fill_value=np.nan).reindex(columns=range(slots))
        values = wide.to_numpy(float)
        row_mean = np.nanmean(np.where(np.isnan(values), np.nan, values), axis=1, keepdims=True) \
            if values.size else values
        values = np.where(np.isnan(values), np.nan_to_num(row_mean), values)
        width = max(1, round(smooth_s / step_s) | 1)  # odd: centred
        if width > 1 and slots > 1:
            values = uniform_filter1d(values, size=min(width, slots), axis=1, mode="wrap")
        return cls(wide.index, np.clip(values, 0.0, None), step_s)

    def at(self, unique_id: "pd.Series", ds: "pd.Series") -> "np.ndarray":
        import numpy as np

        rows = self.ids.get_indexer(unique_id)
        out = self.values[np.clip(rows, 0, None), _slot(ds, self.step_s) % self.values.shape[1]] \
            if len(self.ids) else np.zeros(len(unique_id))
        return np.where(rows >= 0, out, 0.0)


@dataclass
class Calibration:
    """Per series: the scale shape `kappa` (= b/a) and the score quantile of each band
    column. `z` is a frame indexed by unique_id with columns kappa, lo-80, hi-80, ..."""

    z: "pd.DataFrame"

    def to_dict(self, unique_id: str) -> dict[str, float] | None:
        if unique_id not in self.z.index:
            return None
        return {k: float(v) for k, v in self.z.loc[unique_id].items()}

    @classmethod
    def from_dicts(cls, rows: Mapping[str, Mapping[str, float]]) -> "Calibration":
        import pandas as pd
        return cls(pd.DataFrame.from_dict({u: dict(r) for u, r in rows.items()}, orient="index"))

    def merged(self, other: "Calibration") -> "Calibration":
        import pandas as pd
        keep = self.z[~self.z.index.isin(other.z.index)]
        return Calibration(pd.concat([keep, other.z]))

    def covers(self, ids: Sequence[str], levels: Sequence[int]) -> bool:
        cols = {"kappa", *interval_columns(levels)}
        return cols <= set(self.z.columns) and set(ids) <= set(self.z.index)


def scale(level: "np.ndarray", kappa: "np.ndarray") -> "np.ndarray":
    import numpy as np
    return np.sqrt(level + kappa * level * level + LEVEL_FLOOR)


def fit(errors: "pd.DataFrame", profile: LevelProfile, levels: Sequence[int]) -> Calibration:
    """errors: unique_id, ds, y, mean (forecasts and what happened). Returns the
    per-series scale shape and score quantiles described in the module doc."""
    import numpy as np
    import pandas as pd

    data = errors.dropna(subset=["y", "mean"])
    if "imputed" in data.columns:
        data = data[~data["imputed"].astype(bool)]
    if data.empty:
        return Calibration.from_dicts({})
    uid = data["unique_id"].astype(str).to_numpy()
    level = profile.at(data["unique_id"], data["ds"])
    err = data["y"].to_numpy(float) - data["mean"].to_numpy(float)
    kappa = _fit_kappa(uid, level, err)
    z = err / scale(level, kappa.reindex(uid).to_numpy())
    scores = pd.DataFrame({"u": uid, "z": z})
    n = scores.groupby("u", sort=False)["z"].size()
    cols = interval_columns(levels)
    quantiles = sorted({_conformal_q(level_to_quantile(c), int(n.median())) for c in cols})
    table = scores.groupby("u", sort=False)["z"].quantile(quantiles).unstack()
    out = pd.DataFrame({"kappa": kappa})
    for c in cols:
        out[c] = table[_conformal_q(level_to_quantile(c), int(n.median()))]
    out.index = out.index.astype(str)
    out.index.name = "unique_id"
    return Calibration(out)


#: shapes tried for the scale, from Poisson-like (0) to errors proportional to the level
KAPPAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _fit_kappa(uid: "np.ndarray", level: "np.ndarray", err: "np.ndarray", bins: int = 4) -> "pd.Series":
    """Per series the shape in KAPPAS under which the scaled errors are most alike across
    the day: the mean |z| per quarter of the level range varies least (in log terms).
    A grid, not a regression: squared errors of sparse counts are too heavy-tailed to fit."""
    import numpy as np
    import pandas as pd

    rank = pd.Series(level).groupby(uid).rank(method="first", pct=True).to_numpy()
    part = np.minimum((rank * bins).astype(int), bins - 1)
    spreads = []
    for kappa in KAPPAS:
        z = np.abs(err) / scale(level, kappa)
        per_bin = pd.DataFrame({"u": uid, "b": part, "z": z}).groupby(["u", "b"], sort=False)["z"].mean()
        spreads.append(np.log(per_bin + 0.05).groupby(level=0, sort=False).std().fillna(0.0))
    table = pd.concat(spreads, axis=1, keys=range(len(KAPPAS)))
    return pd.Series(np.asarray(KAPPAS)[table.to_numpy().argmin(axis=1)], index=table.index)


def _conformal_q(p: float, n: int) -> float:
    """Widen the quantile for n scores: ceil((n + 1) p) / n on each tail."""
    if n <= 0:
        return p
    tail = min(p, 1 - p) * (n + 1) / n - 1 / n
    tail = min(max(tail, 0.0), 0.5)
    return round(tail if p < 0.5 else 1 - tail, 6)


def apply(frame: "pd.DataFrame", calibration: Calibration, profile: LevelProfile,
          levels: Sequence[int]) -> "pd.DataFrame":
    """Bands on a point forecast frame (unique_id, ds, mean): mean + z * s(level)."""
    import numpy as np

    out = frame.copy()
    z = calibration.z.reindex(out["unique_id"].astype(str))
    level = profile.at(out["unique_id"], out["ds"])
    width = scale(level, z["kappa"].fillna(0.0).to_numpy())
    mean = out["mean"].to_numpy(float)
    for c in interval_columns(levels):
        band = np.maximum(mean + z[c].to_numpy(float) * width, 0.0)
        # Requests per step are whole numbers: a quantile of a count is one. 0.4 as a lower
        # bound would exclude the quiet step (0) that is the likeliest outcome at a low rate;
        # the upper bound rounds up (warm side). Measured on the Alibaba week, rounding hi
        # to the nearest instead: 80% coverage 0.74-0.84 instead of 0.75-0.87.
        out[c] = np.floor(band + 1e-9) if c.startswith("lo-") else np.ceil(band - 1e-9)
    return out


def cross_fitted(cv: "pd.DataFrame", profile: LevelProfile, levels: Sequence[int],
                 folds: int = 2) -> "pd.DataFrame":
    """Bands on a cross-validation frame without scoring a window on a calibration that
    saw it: windows are split in `folds` by cutoff; each fold's bands come from the others."""
    import pandas as pd

    if cv.empty:
        return cv
    rank = cv.groupby("unique_id", sort=False)["cutoff"].rank(method="dense").astype(int)
    fold = rank % folds
    parts = []
    for k in range(folds):
        train, test = cv[fold != k], cv[fold == k]
        if test.empty:
            continue
        if train.empty:
            train = test
        ids = [str(u) for u in test["unique_id"].unique()]
        parts.append(apply(test, with_default(fit(train, profile, levels), ids, levels), profile, levels))
    return pd.concat(parts).sort_index()


def _days(n: int):
    import pandas as pd
    return pd.Timedelta(days=n)


def poisson_quantile(rate: float, q: float) -> int:
    """Smallest k with P(N <= k) >= q for N ~ Poisson(rate) (for tests and docs)."""
    k, term = 0, math.exp(-rate)
    total = term
    while total < q:
        k += 1
        term *= rate / k
        total += term
    return k


#: for a series with too little history to calibrate on: a Poisson part plus errors of
#: half the level (a new endpoint's day-to-day swing is unknown; on the warm side)
DEFAULT_KAPPA = 0.25


def with_default(calibration: Calibration, ids: Sequence[str], levels: Sequence[int]) -> Calibration:
    """`calibration` plus a default row (normal scores, DEFAULT_KAPPA) for ids it lacks."""
    import pandas as pd
    from statistics import NormalDist

    missing = [u for u in ids if u not in calibration.z.index or calibration.z.loc[u].isna().any()]
    if not missing:
        return calibration
    row = {"kappa": DEFAULT_KAPPA, **{c: NormalDist().inv_cdf(level_to_quantile(c))
                                      for c in interval_columns(levels)}}
    default = pd.DataFrame([row] * len(missing), index=pd.Index(missing, name="unique_id"))
    return calibration.merged(Calibration(default))
