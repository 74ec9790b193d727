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
  [1/`level_clip`, `level_clip`]: a forecast made at 10:00 knows 09:00-10:00. The
  correction fades with the lead, `r ** (0.5 ** (lead / level_fade))`: the last hour says
  most about the next one and less about the evening (a quiet night hour's ratio no longer
  scales the whole day);
- `sm-day`: the seasonal mean scaled the same way by the last day's level (a slower
  correction: growth over days, which the week's mean lags);
- `mix-level`: the mean of `sm-level` and `snw-level` (or `sn-level` without a week).

Under a day of history none of the seasonal ones exists: the baseline is then the historic
average (what seasonal naive falls back to), against the mean of the last `level_window`,
which must beat it with evidence (`short_evidence_t`: a t statistic over non-overlapping
blocks of origins; overlapping ones share their targets).

Cross-validation: origins every `cv_stride_s` over the last `cv_days` (every step under a
day of history), each forecasting the requested horizon (the choice is made for the
horizon asked: a 1-hour forecast may pick a level-corrected candidate that a 6-hour one
does not). Each candidate is scored on the origins where it exists, by its mean absolute
error over the baseline's on the same origins; the lowest ratio wins if it is below
1 - `margin` (with at least `min_origins` origins of evidence), else the baseline stays.
The winner is then blended with the baseline, `w * winner + (1 - w) * baseline` with the
share `w` in `blend_shares` that has the lowest error on the same origins (1: alone).
`lead_buckets_s` (off by default) makes the choice per bucket of leads.

Bands: the level-scaled calibration layer (`calibration.py`: a count-aware scale, per
series score quantiles with the finite-sample conformal correction) fitted on the chosen
forecast's own cross-validation errors at the same horizon, so a smooth heavy series gets
narrow bands and a bursty one wide. The scale is the forecast itself (`band_scale`;
known alike at calibration and at forecast time, so a level that grew does not leave
the bands behind), the quantiles are continuity-corrected for whole counts
(`continuity`), and recent errors count more (`error_half_life_days`, at most
`error_half_life_share` of the history). A young series: a small-sample t-bound where the
errors hold too little tail evidence (`tail_evidence`), the history's own dispersion when
there are no errors (`dispersion_fallback`), and under a day bands halfway to that
dispersion band (`dispersion_floor`).

Every constant was chosen on the tuning parts of bench/protocol.py (docs/forecasting.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .base import Forecaster, tidy
from .preprocess import DAY_S, winsorise

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BASELINE = "sn"
SHORT_BASELINE = "mean"
CANDIDATES = ("sn", "snw", "sm", "sn-level", "snw-level", "sm-level", "mix-level", "sm-day")


@dataclass
class Choice:
    """One series' choice: the candidate per bucket of leads, every candidate's
    cross-validation MAE (over all leads) and the number of origins it was scored on."""
    models: tuple[str, ...]
    scores: dict[str, float]
    origins: int

    @property
    def model(self) -> str:
        """The candidate, or the candidates per lead bucket joined by '/' when they differ."""
        return self.models[0] if len(set(self.models)) == 1 else "/".join(self.models)


class SelectForecaster(Forecaster):
    name = "select"

    def __init__(self, cv_days: float = 7.0, cv_stride_s: int = 3600, days: int = 7,
                 level_window_s: int = 3600, level_prior: float = 5.0, level_clip: float = 4.0,
                 margin: float = 0.0, candidates: Sequence[str] = CANDIDATES,
                 max_calibration_errors: int = 5000, selection_half_life_days: float | None = None,
                 error_half_life_days: float | None = 1.0, error_half_life_share: float | None = 0.25,
                 min_origins: int = 24, level_fade_s: float | None = 10800.0,
                 band_scale: str = "forecast", continuity: float = 0.5, tail_evidence: float = 5.0,
                 lead_buckets_s: Sequence[int] = (), short_cv_share: float | None = None,
                 short_evidence_t: float | None = 2.0, dispersion_fallback: bool = True,
                 dispersion_floor: bool = True,
                 blend_shares: Sequence[float] = (0.5, 1.0), **params) -> None:
        unknown = set(candidates) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"select: unknown candidates {sorted(unknown)} (known: {', '.join(CANDIDATES)})")
        if BASELINE not in candidates:
            raise ValueError("select: the candidates must include the baseline 'sn'")
        if days < 1 or cv_days <= 0 or cv_stride_s <= 0 or level_window_s <= 0 or level_clip < 1:
            raise ValueError("select: days >= 1, cv_days, cv_stride_s and level_window_s > 0, level_clip >= 1")
        if level_fade_s is not None and not level_fade_s > 0:
            raise ValueError(f"select: level_fade_s must be a duration > 0 (or None: no fading), not {level_fade_s!r}")
        # backend/n_jobs come from [forecast] for every model; a numpy model uses neither
        params.pop("backend", None)
        params.pop("n_jobs", None)
        super().__init__(**params)
        self.cv_days, self.cv_stride_s, self.days = float(cv_days), int(cv_stride_s), int(days)
        self.level_window_s, self.level_prior, self.level_clip = int(level_window_s), float(level_prior), float(level_clip)
        self.margin, self.candidates = float(margin), tuple(candidates)
        self.max_calibration_errors = int(max_calibration_errors)
        self.selection_half_life_days = selection_half_life_days
        self.error_half_life_days = error_half_life_days
        self.error_half_life_share = error_half_life_share
        self.min_origins = int(min_origins)
        self.level_fade_s = None if level_fade_s is None else float(level_fade_s)
        if band_scale not in ("level", "forecast"):
            raise ValueError(f"select: band_scale must be 'level' or 'forecast', not {band_scale!r}")
        self.band_scale, self.continuity = band_scale, float(continuity)
        self.tail_evidence = float(tail_evidence)
        self.lead_buckets_s = tuple(int(b) for b in lead_buckets_s)
        self.short_cv_share = short_cv_share
        self.short_evidence_t = short_evidence_t
        self.dispersion_fallback = bool(dispersion_fallback)
        self.dispersion_floor = bool(dispersion_floor)
        if not blend_shares or any(not 0 < w <= 1 for w in blend_shares):
            raise ValueError("select: blend_shares must be shares in (0, 1]")
        self.blend_shares = tuple(float(w) for w in blend_shares)
        self.last_choices: dict[str, Choice] = {}

    def describe(self) -> str:
        return self.name

    # --- the forecast ----------------------------------------------------------------------
    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95)):
        import numpy as np
        import pandas as pd

        from . import calibration as cal

        df = history[["unique_id", "ds", "y"]].reset_index(drop=True)
        capped = winsorise(df) if len(df) else df
        step = pd.Timedelta(seconds=int(step_s))
        points, errors = [], []
        unexplained: dict[str, float] = {}  # series without errors: their history's kappa
        floors: dict[str, float] = {}  # young series: the same, as the least width of the bands
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
            young = len(y) < max(1, DAY_S // step_s) + horizon + 1
            if self.dispersion_fallback and len(raw) > 1 and (cv is None or (young and self.dispersion_floor)):
                # nothing to calibrate on: the default row, as wide as the history's own
                # dispersion around its mean when that is wider (a bursty young endpoint)
                level = max(float(raw.mean()), 1e-9)
                kappa = max(0.0, (float(raw.var(ddof=1)) - level) / level ** 2)
                if cv is None:
                    unexplained[str(uid)] = max(cal.DEFAULT_KAPPA, kappa)
                else:
                    floors[str(uid)] = kappa
            if cv is not None:
                target, fc = cv
                half_life = self.error_half_life_days or float("inf")
                if self.error_half_life_share:  # relative to the history: a young series' errors age fast
                    half_life = min(half_life, self.error_half_life_share * len(y) * step_s / DAY_S)
                errors.append(pd.DataFrame({"unique_id": uid, "ds": ds[target], "y": raw[target], "mean": fc,
                                            "half_life": half_life}))
        if not points:
            raise ValueError("select: no history to forecast from")
        point = pd.concat(points, ignore_index=True)
        ids = [str(u) for u in point["unique_id"].unique()]
        err = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=["unique_id", "ds", "y", "mean"])
        by_forecast = self.band_scale == "forecast"
        # scaled by the forecast, the bands need no level profile (nor scipy to smooth one)
        profile = None if by_forecast else cal.LevelProfile.from_history(df, step_s)
        half_life = err["half_life"].to_numpy(float) if self.error_half_life_share and len(err) \
            else self.error_half_life_days
        fitted = cal.fit(err, profile, levels, half_life_days=half_life,
                         level=err["mean"].clip(lower=0).to_numpy(float) if by_forecast else None,
                         continuity=self.continuity, tail_evidence=self.tail_evidence) if len(err) else cal.Calibration.from_dicts({})

        def dispersion(kappas: dict[str, float]) -> "cal.Calibration":
            """Normal scores on a scale of the history's own dispersion, per series."""
            return cal.Calibration.from_dicts({u: {**cal.default_row(levels), "kappa": k} for u, k in kappas.items()})

        if unexplained:
            fitted = fitted.merged(dispersion(unexplained))
        self.last_calibration = cal.with_default(fitted, ids, levels)
        out = cal.apply(point, self.last_calibration, profile, levels,
                        level=point["mean"].to_numpy(float) if by_forecast else None)
        if floors:
            rows = out["unique_id"].astype(str).isin(floors)
            least = cal.apply(point[rows.to_numpy()], dispersion(floors), None, levels,
                              level=point.loc[rows.to_numpy(), "mean"].to_numpy(float))
            for c in least.columns:
                if c.startswith(("lo-", "hi-")):  # halfway to the dispersion band
                    out.loc[rows, c] = np.floor((out.loc[rows, c].to_numpy() + least[c].to_numpy()) / 2 + 0.5)
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
            window = max(1, min(window, n // 4))
            stride, first = 1, max(window, 2)
            names, baseline = [SHORT_BASELINE, "recent"], SHORT_BASELINE
        # Under a day the candidates are flat (one level for every lead): cross-validated on
        # the first `cv_h` leads only, so a young series has origins (and errors) to judge by
        cv_h = horizon
        if not seasonal and self.short_cv_share and n - horizon < first + 1:  # under 2 origins
            cv_h = min(horizon, max(1, int((n - first) * self.short_cv_share)))
        origins = np.arange(n - cv_h, first - 1, -stride)[::-1] if n - cv_h >= first else np.array([], int)
        bank = _Bank(y, n, per, self.days, window, self.level_prior, self.level_clip,
                     None if not self.level_fade_s else self.level_fade_s / step_s)
        leads = np.arange(cv_h)
        scores: dict[str, float] = {}
        cv_fc: dict[str, np.ndarray] = {}
        target = origins[:, None] + leads[None, :]
        weight = np.ones(len(origins))
        if self.selection_half_life_days and len(origins):
            weight = 0.5 ** ((n - origins) * step_s / (self.selection_half_life_days * DAY_S))
        # Each candidate is scored on the origins where it exists (a weekly one needs a week
        # behind the origin), against the baseline on the same origins: the ratio decides,
        # per bucket of leads (a level correction may pay in the first hour only).
        edges = [0, *sorted({min(horizon, max(1, round(b / step_s))) for b in self.lead_buckets_s}), horizon]
        buckets = [slice(a, b) for a, b in zip(edges, edges[1:]) if b > a]
        ahead = buckets  # the buckets of the forecast; of the CV when it has all leads
        if cv_h < horizon:
            buckets, ahead = [slice(0, cv_h)], [slice(0, horizon)]
        base_fc = bank.forecast(baseline, origins, leads) if len(origins) else None
        base_err = None if base_fc is None else np.abs(raw[target] - base_fc)
        if base_err is not None:
            cv_fc[baseline] = base_fc
            scores[baseline] = float(np.average(base_err.mean(axis=1), weights=weight))
        ratios: dict[str, list[float]] = {}
        for name in names:
            if base_err is None or name == baseline:
                continue
            fc = bank.forecast(name, origins, leads)
            if fc is None:
                continue
            ok = ~np.isnan(fc).any(axis=1)
            if ok.sum() < max(2, self.min_origins) or not ok[-1]:  # too little evidence
                continue
            err = np.abs(raw[target[ok]] - fc[ok])
            if not seasonal and self.short_evidence_t and not _beats(
                    base_err[ok].mean(axis=1) - err.mean(axis=1), len(leads), self.short_evidence_t):
                continue
            cv_fc[name] = np.where(ok[:, None], fc, np.nan)
            scores[name] = float(np.average(err.mean(axis=1), weights=weight[ok]))
            ratios[name] = []
            for b in buckets:
                mine = float(np.average(err[:, b].mean(axis=1), weights=weight[ok]))
                base = float(np.average(base_err[ok][:, b].mean(axis=1), weights=weight[ok]))
                ratios[name].append(mine / base if base > 0 else (1.0 if mine == 0 else np.inf))
        picks, shares = [], []
        for i, b in enumerate(buckets):
            best = min(ratios, key=lambda k: ratios[k][i]) if ratios else baseline
            if not ratios or ratios[best][i] >= 1 - self.margin:
                picks.append(baseline)
                shares.append(1.0)
                continue
            # the winner blended with the baseline, its share by the same errors (1: alone)
            rows = ~np.isnan(cv_fc[best][:, b]).any(axis=1)
            actual, mine, base = raw[target[rows][:, b]], cv_fc[best][rows][:, b], base_fc[rows][:, b]
            loss = {w: float(np.average(np.abs(actual - (w * mine + (1 - w) * base)).mean(axis=1),
                                        weights=weight[rows])) for w in self.blend_shares}
            picks.append(best)
            shares.append(min(loss, key=lambda w: (loss[w], -w)))
        mean = np.empty(horizon)
        every_lead = np.arange(horizon)
        base_now = bank.forecast(baseline, np.array([n]), every_lead)
        for b, pick, w in zip(ahead, picks, shares):
            fc = bank.forecast(pick, np.array([n]), every_lead[b])
            mean[b] = np.nan if fc is None else fc[0] if w == 1 else w * fc[0] + (1 - w) * base_now[0, b]
        if np.isnan(mean).any():  # e.g. no day of history: the baseline's fallback
            picks, shares = [SHORT_BASELINE] * len(buckets), [1.0] * len(buckets)
            mean = bank.forecast(SHORT_BASELINE, np.array([n]), every_lead)[0]
        choice = Choice(tuple(p if w == 1 else f"{p}*{w:g}+{baseline}" for p, w in zip(picks, shares)),
                        scores, len(origins))
        if any(p not in cv_fc for p in picks):
            return choice, mean, None
        cv = np.empty(target.shape)
        for b, pick, w in zip(buckets, picks, shares):
            cv[:, b] = cv_fc[pick][:, b] if w == 1 else w * cv_fc[pick][:, b] + (1 - w) * base_fc[:, b]
        rows = np.flatnonzero(~np.isnan(cv).any(axis=1))
        flat_t, flat_f = target[rows].ravel(), cv[rows].ravel()
        every = -(-len(flat_t) // max(1, self.max_calibration_errors))
        # evenly thinned over origins and leads (the stride walks through the leads from one
        # origin to the next), the latest error kept: memory bounded per series
        return choice, mean, (flat_t[::-1][::every][::-1], flat_f[::-1][::every][::-1])


def _beats(gain: "np.ndarray", block: int, t_min: float) -> bool:
    """Whether the per-origin gains (baseline error - candidate error) are positive with
    evidence: the t statistic of their means over non-overlapping blocks of `block` origins
    (consecutive origins share most of their targets; blocks of a horizon share none) is at
    least `t_min`, with two blocks at least."""
    import numpy as np

    blocks = len(gain) // max(1, block)
    if blocks < 2:
        return False
    means = gain[len(gain) - blocks * block:].reshape(blocks, -1).mean(axis=1)
    spread = means.std(ddof=1)
    if spread == 0:
        return bool(means.mean() > 0)
    return bool(means.mean() / (spread / np.sqrt(blocks)) >= t_min)


class _Bank:
    """The candidates' forecasts for any origins and leads of one series, from the history
    before each origin only. A seasonal candidate is a 'fitted' array `fit[t]` (its value
    for step t from data at least a season before t) and its season; its forecast from
    origin o at lead h is `fit[o + h % season]`."""

    def __init__(self, y, n, per, days, window, prior, clip, fade=None):
        import numpy as np

        self.y, self.n, self.per, self.days = y, n, per, days
        self.window, self.prior, self.clip = window, prior, clip
        self.fade = fade  # half-life of the level correction, in steps of lead (None: whole)
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

    def _ratio(self, base, origins, window):
        """Recent level against the candidate's own values over the last `window` steps."""
        import numpy as np

        _, _, cfit, cnan = self._fit(base)
        lo = origins - window
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
        plain = self._plain(base, origins, leads)
        if not level:
            return plain
        ratio = self._ratio(base, origins, self.per if level == "day" else self.window)[:, None]
        if self.fade and level != "day":  # the last hour's level says less about later leads
            # (sm-day's correction is the last day's level: growth over days, kept whole)
            ratio = ratio ** (0.5 ** (leads / self.fade))[None, :]
        return plain * ratio
