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
   the horizon (the scale makes them comparable), each error's L taken without its own day
   (as a forecast's target is never in its profile), and their empirical quantiles per
   series (optionally age-weighted) with the finite-sample conformal correction:
   band = mean + z_q * s(L at the target), rounded to the nearest whole request (`apply`).

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
    """Smoothed mean count per step at each time of day, one row per series; and, for
    calibration, the same profile with one day of the window left out (`left_out_at`)."""

    ids: "pd.Index"
    values: "np.ndarray"  # (n series, slots per day)
    step_s: int
    #: per series and 24-h block of the window (0 = the last 24 h): sums and counts per slot
    sums: "np.ndarray | None" = None  # (n series, days, slots)
    counts: "np.ndarray | None" = None
    last: "np.ndarray | None" = None  # (n series,) each series' last time stamp, datetime64[s]
    smooth_width: int = 1

    @classmethod
    def from_history(cls, history: "pd.DataFrame", step_s: int, *, days: int = 7,
                     smooth_s: int = 3600) -> "LevelProfile":
        import numpy as np
        import pandas as pd

        slots = max(1, DAY_S // step_s)
        last = history.groupby("unique_id", sort=False)["ds"].transform("max")
        keep = history["ds"] > last - _days(days)
        recent, last = history[keep], last[keep]
        ids = pd.Index(recent["unique_id"].unique())
        row = ids.get_indexer(recent["unique_id"])
        block = ((last - recent["ds"]) // pd.Timedelta(days=1)).to_numpy().astype("int64")
        sums = np.zeros((len(ids), days, slots))
        counts = np.zeros((len(ids), days, slots))
        slot = _slot(recent["ds"], step_s) % slots
        np.add.at(sums, (row, block, slot), recent["y"].to_numpy(float))
        np.add.at(counts, (row, block, slot), 1.0)
        width = max(1, round(smooth_s / step_s) | 1)  # odd: centred
        ends = np.full(len(ids), np.datetime64("NaT"), "datetime64[s]")
        ends[row] = last.to_numpy().astype("datetime64[s]")
        profile = cls(ids, np.zeros((len(ids), slots)), step_s, sums, counts, ends, min(width, slots))
        profile.values = profile._smoothed(sums.sum(axis=1), counts.sum(axis=1))
        return profile

    def _smoothed(self, sums: "np.ndarray", counts: "np.ndarray") -> "np.ndarray":
        """Mean per slot (a slot never seen: the series' mean), smoothed over the day."""
        import numpy as np
        from scipy.ndimage import uniform_filter1d

        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        seen = counts.sum(axis=-1, keepdims=True)
        row_mean = sums.sum(axis=-1, keepdims=True) / np.maximum(seen, 1)
        values = np.where(np.isnan(values), row_mean, values)
        if self.smooth_width > 1 and values.shape[-1] > 1:
            values = uniform_filter1d(values, size=self.smooth_width, axis=-1, mode="wrap")
        return np.clip(values, 0.0, None)

    def at(self, unique_id: "pd.Series", ds: "pd.Series") -> "np.ndarray":
        import numpy as np

        rows = self.ids.get_indexer(unique_id)
        out = self.values[np.clip(rows, 0, None), _slot(ds, self.step_s) % self.values.shape[1]] \
            if len(self.ids) else np.zeros(len(unique_id))
        return np.where(rows >= 0, out, 0.0)

    def left_out_at(self, unique_id: "pd.Series", ds: "pd.Series") -> "np.ndarray":
        """The level at each (unique_id, ds) from the profile without the 24 h that hold
        ds, when they are in the profile's window (else `at`). A forecast's target is never
        in the profile it is scaled by; an error scored in calibration would be, and a
        burst would raise its own scale (smaller score, band too narrow out of sample)."""
        import numpy as np

        out = self.at(unique_id, ds)
        if self.sums is None or not len(self.ids):
            return out
        rows = self.ids.get_indexer(unique_id)
        seconds = ds.to_numpy().astype("datetime64[s]")
        days = self.sums.shape[1]
        age = (self.last[np.clip(rows, 0, None)] - seconds).astype("int64")
        block = np.where((rows >= 0) & (age >= 0), age // DAY_S, days)
        inside = block < days
        if not inside.any():
            return out
        keys, index = np.unique(rows[inside] * days + block[inside], return_inverse=True)
        r, b = np.divmod(keys, days)
        rest_s = self.sums.sum(axis=1)[r] - self.sums[r, b]
        rest_n = self.counts.sum(axis=1)[r] - self.counts[r, b]
        left = self._smoothed(rest_s, rest_n)
        slot = _slot(ds, self.step_s)[inside] % self.values.shape[1]
        alone = rest_n.sum(axis=1) == 0  # the window is that one day: nothing to leave it out of
        left[alone] = self.values[r[alone]]
        out = out.copy()
        out[inside] = left[index, slot]
        return out


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


#: half-life (days) of an error's weight in the score quantiles when the errors span a
#: week (seasonal naive's in-sample errors). Traffic drifts (the Alibaba trace's second
#: week carries three times the first's requests): a week of errors weighted alike
#: calibrates on a regime that is gone. Not for the 2 days of rolling-origin errors of the
#: other models: they are recent already, and weighting them leaves too few for the tails
#: (NASA last week, auto: 80% coverage 0.757 with, 0.773 without). docs/forecasting.md.
WEEK_HALF_LIFE_DAYS = 2.0


def fit(errors: "pd.DataFrame", profile: "LevelProfile | None", levels: Sequence[int], *,
        half_life_days: "float | np.ndarray | None" = None, level: "np.ndarray | None" = None,
        continuity: float = 0.0, tail_evidence: float = 0.0) -> Calibration:
    """errors: unique_id, ds, y, mean (forecasts and what happened). Returns the
    per-series scale shape and score quantiles described in the module doc; each error
    is scaled by the level without its own day (`LevelProfile.left_out_at`) and weighted
    by its age (`half_life_days`, a number or one per row of `errors`; None: alike).

    `level`: each error's level, when the caller scales by something else than the profile
    (e.g. the forecast itself, known alike at calibration and at forecast time); `profile`
    may then be None, as for `apply` given its `level`.
    `continuity` (0.5 for whole-count outcomes under `apply`'s rounding to the nearest
    request): a step is inside a rounded hi band iff `mean + z*s >= y - 0.5`, so the hi
    quantiles are taken of `(error - 0.5) / s` and the lo ones of `(error + 0.5) / s`; the
    rounded bands then cover their nominal share of the calibration errors.

    `tail_evidence` (0: off): the number of scores expected beyond a band's quantile for the
    empirical quantile to be trusted alone. A series with fewer (a young endpoint: a few
    dozen overlapping errors) gets the wider of it and a Student-t prediction bound on its
    scores, shared by the evidence (`_small_sample`): a conformal quantile of n scores cannot
    reach past their largest, which covers n/(n+1), and overlapping windows' errors are not
    n independent ones. The evidence counts distinct target steps, not errors (times the
    share of them the age weights leave effective)."""
    import numpy as np
    import pandas as pd

    data = errors.dropna(subset=["y", "mean"])
    if "imputed" in data.columns:
        data = data[~data["imputed"].astype(bool)]
    if data.empty:
        return Calibration.from_dicts({})
    codes, names = pd.factorize(data["unique_id"], sort=False)
    names = np.asarray(names).astype(str)
    if level is None:
        level = profile.left_out_at(data["unique_id"], data["ds"])
    else:
        level = np.asarray(level, float)[errors.index.get_indexer(data.index)]
    err = data["y"].to_numpy(float) - data["mean"].to_numpy(float)
    kappa = _fit_kappa(codes, len(names), level, err)
    s = scale(level, kappa[codes])
    if np.ndim(half_life_days):  # one per error (e.g. relative to each series' history)
        half_life_days = np.asarray(half_life_days, float)[errors.index.get_indexer(data.index)]
    ds = data["ds"].to_numpy("datetime64[ns]").astype(np.int64)
    if half_life_days is None:
        weight = np.ones(len(s))
    else:  # each error's age behind its series' latest one
        latest = np.full(len(names), np.iinfo(np.int64).min)
        np.maximum.at(latest, codes, ds)
        weight = 0.5 ** ((latest[codes] - ds) / 1e9 / (half_life_days * DAY_S))
    cols = interval_columns(levels)
    distinct = None
    if tail_evidence > 0:  # distinct targets, times the share the age weights leave effective
        groups = len(names)
        w, w2 = np.bincount(codes, weight, minlength=groups), np.bincount(codes, weight * weight, minlength=groups)
        efficiency = w ** 2 / w2 / np.bincount(codes, minlength=groups)
        order = np.lexsort((ds, codes))
        c, d = codes[order], ds[order]
        first = np.ones(len(c), bool)
        first[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
        distinct = np.bincount(c[first], minlength=groups) * efficiency
    table = {}
    for side, shift in (("lo", continuity), ("hi", -continuity)):
        part = [c for c in cols if c.startswith(side)]
        quantiles = {c: level_to_quantile(c) for c in part}
        found = _weighted_quantiles(codes, len(names), (err + shift) / s, weight, quantiles)
        if distinct is not None:
            found = _small_sample(found, codes, len(names), (err + shift) / s, weight, quantiles,
                                  distinct, tail_evidence)
        table.update(found)
    out = pd.DataFrame({"kappa": kappa, **{c: table[c] for c in cols}}, index=pd.Index(names, name="unique_id"))
    return Calibration(out)


def _weighted_quantiles(codes: "np.ndarray", groups: int, z: "np.ndarray", weight: "np.ndarray",
                        quantiles: Mapping[str, float]) -> dict[str, "np.ndarray"]:
    """Per series (`codes` 0..groups-1, each present) the smallest score whose cumulative
    weight reaches each quantile, widened by the finite-sample conformal correction for the
    series' effective number of scores ((sum w)^2 / sum w^2). Vectorised: one sort of
    (series, score)."""
    import numpy as np

    order = np.lexsort((z, codes))
    codes, z, weight = codes[order], z[order], weight[order]
    total = np.bincount(codes, weight, minlength=groups)
    n_eff = total ** 2 / np.bincount(codes, weight * weight, minlength=groups)
    start = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    # each series' cumulative share, offset by its code: one sorted array for all series
    cum = codes + (np.cumsum(weight) - start[codes]) / total[codes]
    last = np.cumsum(np.bincount(codes, minlength=groups)) - 1
    out = {}
    for column, q in quantiles.items():
        wanted = np.arange(groups) + np.array([_conformal_q(q, int(n)) for n in n_eff])
        at = np.minimum(np.searchsorted(cum, wanted - 1e-12), last)
        out[column] = z[at]
    return out


def _small_sample(found: Mapping[str, "np.ndarray"], codes: "np.ndarray", groups: int, z: "np.ndarray",
                  weight: "np.ndarray", quantiles: Mapping[str, float], n: "np.ndarray",
                  evidence: float) -> dict[str, "np.ndarray"]:
    """Per series (`codes` 0..groups-1) and band, where fewer than `evidence` of its `n`
    scores are expected in the band's tail: `share * empirical + (1 - share) *
    max(empirical, t-bound)`, share = expected tail scores / evidence. The t-bound is the
    prediction bound of a new score from n normal ones: mean +- t(n - 1) * sd * sqrt(1 + 1/n)
    (weighted mean and spread)."""
    import numpy as np

    w = np.bincount(codes, weight, minlength=groups)
    centre = np.bincount(codes, weight * z, minlength=groups) / w
    sd = np.sqrt(np.bincount(codes, weight * (z - centre[codes]) ** 2, minlength=groups) / w)
    sd = sd * np.sqrt(n / np.maximum(n - 1, 1))  # the unbiased variance
    out = dict(found)
    for column, q in quantiles.items():
        tail = min(q, 1 - q)
        share = np.clip(tail * n / evidence, 0.0, 1.0)
        bound = centre + np.sign(q - 0.5) * _t_quantile(1 - tail, np.maximum(n - 1, 1)) * sd * np.sqrt(1 + 1 / n)
        empirical = np.asarray(found[column], float)
        wider = np.maximum(empirical, bound) if q > 0.5 else np.minimum(empirical, bound)
        out[column] = share * empirical + (1 - share) * wider
    return out


def _t_quantile(p: float, dof: "np.ndarray") -> "np.ndarray":
    """Student-t quantile by the Cornish-Fisher expansion around the normal one (within 1%
    from 3 degrees of freedom; no scipy import on the forecast path)."""
    from statistics import NormalDist

    import numpy as np

    z = NormalDist().inv_cdf(p)
    v = np.asarray(dof, float)
    return z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2) \
        + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3)


#: shapes tried for the scale, from Poisson-like (0) to errors proportional to the level
KAPPAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _fit_kappa(codes: "np.ndarray", groups: int, level: "np.ndarray", err: "np.ndarray",
               bins: int = 4) -> "np.ndarray":
    """Per series (`codes` 0..groups-1) the shape in KAPPAS under which the scaled errors are
    most alike across the day: the mean |z| per quarter of the level range varies least (in
    log terms: the sample standard deviation over the quarters, 0 with one). A grid, not a
    regression: squared errors of sparse counts are too heavy-tailed to fit. Array
    operations on integer series codes (a pandas group-by on the names cost most of a
    10,000-endpoint refresh)."""
    import numpy as np

    n = len(codes)
    # each error's rank within its series by level (ties in order), as a share: its quarter
    order = np.lexsort((np.arange(n), level, codes))
    count = np.bincount(codes, minlength=groups)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    rank = np.empty(n)
    rank[order] = np.arange(n) - first[codes[order]] + 1
    part = np.minimum((rank / count[codes] * bins).astype(int), bins - 1)
    key = codes * bins + part
    cells = np.bincount(key, minlength=groups * bins).reshape(groups, bins)
    present = cells > 0
    k = present.sum(axis=1)
    spreads = np.empty((groups, len(KAPPAS)))
    for j, kappa in enumerate(KAPPAS):
        z = np.abs(err) / scale(level, kappa)
        total = np.bincount(key, z, minlength=groups * bins).reshape(groups, bins)
        logs = np.log(np.where(present, total / np.maximum(cells, 1), 1.0) + 0.05)
        mean = np.where(present, logs, 0.0).sum(axis=1) / np.maximum(k, 1)
        ss = np.where(present, (logs - mean[:, None]) ** 2, 0.0).sum(axis=1)
        spreads[:, j] = np.where(k > 1, np.sqrt(ss / np.maximum(k - 1, 1)), 0.0)
    return np.asarray(KAPPAS)[spreads.argmin(axis=1)]


def _conformal_q(p: float, n: int) -> float:
    """Widen the quantile for n scores: ceil((n + 1) p) / n on each tail."""
    if n <= 0:
        return p
    tail = min(p, 1 - p) * (n + 1) / n - 1 / n
    tail = min(max(tail, 0.0), 0.5)
    return round(tail if p < 0.5 else 1 - tail, 6)


def apply(frame: "pd.DataFrame", calibration: Calibration, profile: "LevelProfile | None",
          levels: Sequence[int], level: "np.ndarray | None" = None) -> "pd.DataFrame":
    """Bands on a point forecast frame (unique_id, ds, mean): mean + z * s(level), the
    level from the profile unless given (as to `fit`)."""
    import numpy as np

    out = frame.copy()
    z = calibration.z.reindex(out["unique_id"].astype(str))
    level = profile.at(out["unique_id"], out["ds"]) if level is None else np.asarray(level, float)
    width = scale(level, z["kappa"].fillna(0.0).to_numpy())
    mean = out["mean"].to_numpy(float)
    for c in interval_columns(levels):
        out[c] = _whole_band(mean, z[c].to_numpy(float), width)
    return out


def _whole_band(mean: "np.ndarray", z: "np.ndarray | float", width: "np.ndarray") -> "np.ndarray":
    """mean + z * width, at least 0, rounded to the nearest whole request.

    Requests per step are whole numbers, and a band between two counts covers the same steps
    as the count inside it: 2.3 as hi covers up to 2. The scores were calibrated on such
    whole-count outcomes, so the band's position between the two counts says how much of the
    boundary count's mass it takes; rounding to the nearest count splits it (mid-p). Flooring
    lo and ceiling hi took all of it on both sides: on sparse series each tail was missed ~7%
    instead of 10% (Alibaba M0004 and M0010 covered 86-89% at 80%); no rounding gives none of
    it (70-77%)."""
    import numpy as np

    return np.floor(np.maximum(mean + z * width, 0.0) + 0.5)


def cross_fitted(cv: "pd.DataFrame", profile: LevelProfile, levels: Sequence[int],
                 folds: int = 2, half_life_days: float | None = None) -> "pd.DataFrame":
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
        fitted = fit(train, profile, levels, half_life_days=half_life_days)
        parts.append(apply(test, with_default(fitted, ids, levels), profile, levels))
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


def default_bands(mean: "np.ndarray", levels: Sequence[int]) -> dict[str, "np.ndarray"]:
    """The default row's bands straight on a point forecast, its own level: what a model with
    nothing to calibrate on gives (seasonal mean under two days of history). Count-aware
    widths instead of none; rounded to whole requests as `apply` does."""
    import numpy as np

    row = default_row(levels)
    mean = np.asarray(mean, dtype=float)
    width = scale(np.clip(mean, 0.0, None), np.full(mean.shape, row["kappa"]))
    return {c: _whole_band(mean, row[c], width) for c in interval_columns(levels)}


def default_row(levels: Sequence[int]) -> dict[str, float]:
    """The calibration of a series with no errors to fit on: normal scores, DEFAULT_KAPPA."""
    from statistics import NormalDist

    return {"kappa": DEFAULT_KAPPA, **{c: NormalDist().inv_cdf(level_to_quantile(c))
                                       for c in interval_columns(levels)}}


def with_default(calibration: Calibration, ids: Sequence[str], levels: Sequence[int]) -> Calibration:
    """`calibration` plus a default row (normal scores, DEFAULT_KAPPA) for ids it lacks."""
    import pandas as pd

    missing = [u for u in ids if u not in calibration.z.index or calibration.z.loc[u].isna().any()]
    if not missing:
        return calibration
    row = default_row(levels)
    default = pd.DataFrame([row] * len(missing), index=pd.Index(missing, name="unique_id"))
    return calibration.merged(Calibration(default))
