"""The automatic choice per endpoint: rolling-origin cross-validation of each candidate
(statsforecast's own cross_validation, refit at every origin), scored on what the planner
pays for: pinball loss at the planner's band (hi-80 = q0.9) and interval coverage.

Every candidate's bands come from the level-scaled calibration layer (`calibration.py`),
cross-fitted so that no window is scored on bands calibrated on it (seasonal naive:
calibrated on its errors before the first window).

Rule: the lowest pinball loss among the baseline (seasonal naive) and the candidates whose
80% and 95% coverage are within `coverage_tolerance` of nominal. The baseline is always
eligible, so the choice is never worse than seasonal naive on the windows it was chosen
on, by construction.

The choice is plain data (`ModelChoice`, with the chosen model's calibration) for the
caller to store and reuse until it is older than the refit interval; choosing is the
expensive part, forecasting with a known choice is cheap (the bands are re-calibrated at
each forecast unless `AutoForecaster(reuse_calibration=True)`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .accuracy import score
from .base import Forecaster, ForecastError
from .calibration import Calibration
from .registry import create

if TYPE_CHECKING:
    import pandas as pd

DENSE_CANDIDATES = ("seasonal-naive", "seasonal-naive-weekly", "mstl", "autoets", "autotheta")
SPARSE_CANDIDATES = ("seasonal-naive", "seasonal-naive-weekly", "croston-sba", "adida", "imapa", "tsb")
BASELINE = "seasonal-naive"


@dataclass(frozen=True)
class ModelChoice:
    endpoint: str
    model: str
    step_s: int
    chosen_at: datetime
    params: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # per candidate label
    calibration: Mapping[str, float] | None = None  # calibration.Calibration row of the model

    def forecaster(self, **extra: Any) -> Forecaster:
        return create(self.model, **{**self.params, **extra})

    def is_stale(self, now: datetime, refit_interval_s: float) -> bool:
        return now - self.chosen_at >= timedelta(seconds=refit_interval_s)

    def scores_json(self) -> str:
        clean = {k: {m: (None if isinstance(v, float) and math.isnan(v) else v) for m, v in s.items()}
                 for k, s in self.scores.items()}
        data = {"params": dict(self.params), "candidates": clean}
        if self.calibration:
            data["calibration"] = dict(self.calibration)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_row(cls, endpoint: str, model: str, step_s: int, chosen_at: datetime,
                 scores_json: str) -> "ModelChoice":
        data = json.loads(scores_json or "{}")
        return cls(endpoint, model, int(step_s), chosen_at, data.get("params", {}),
                   data.get("candidates", {}), data.get("calibration"))


def label(model: str, params: Mapping[str, Any]) -> str:
    return model + "".join(f"+{k}" if v is True else f"+{k}={v}" for k, v in sorted(params.items()))


def align_history(history: "pd.DataFrame", step_s: int, boundary_s: int = 3600) -> "pd.DataFrame":
    """Drop each series' trailing partial hour so every candidate (hourly ones included)
    is scored on the same origins."""
    last = history.groupby("unique_id")["ds"].transform("max") + _seconds(step_s)
    end = last.dt.floor(f"{boundary_s}s")
    return history[history["ds"] < end]


def coverage_gap(row: Mapping[str, float], levels: Sequence[int]) -> float:
    gaps = [abs(row.get(f"coverage-{lv}", math.nan) - lv / 100) for lv in levels]
    return math.inf if any(math.isnan(g) for g in gaps) else max(gaps)


def pick(scores: Mapping[str, Mapping[str, float]], levels: Sequence[int], tolerance: float,
         baseline: str = BASELINE) -> str | None:
    """The lowest pinball among the calibrated candidates and the baseline (always
    eligible: the choice is never worse than it on these windows). Without a usable
    baseline score: the lowest pinball among the calibrated, else the best calibrated."""
    usable = {k: s for k, s in scores.items() if not math.isnan(s.get("pinball", math.nan))}
    if not usable:
        return None
    gap = {k: coverage_gap(s, levels) for k, s in usable.items()}
    pool = [k for k in usable if gap[k] <= tolerance or k == baseline]
    if pool:
        return min(pool, key=lambda k: (usable[k]["pinball"], gap[k]))
    return min(usable, key=lambda k: (gap[k], usable[k]["pinball"]))


def choose_models(history: "pd.DataFrame", *, step_s: int, horizon: int, now: datetime,
                  candidates: Sequence[str] | None = None, n_windows: int = 8,
                  levels: Sequence[int] = (80, 95), quantile_column: str = "hi-80",
                  coverage_tolerance: float = 0.05, n_jobs: int = 1) -> dict[str, ModelChoice]:
    """Cross-validate candidates on every series of `history` (all at `step_s`) and return
    each series' choice with all candidates' scores. Series too short to cross-validate get
    the baseline (seasonal naive) with empty scores."""
    from .resolution import zero_share

    data = align_history(history, step_s)
    sparse = zero_share(data, step_s, step_s) > 0.5
    groups = {False: [u for u, s in sparse.items() if not s], True: [u for u, s in sparse.items() if s]}
    table: dict[str, dict[str, dict[str, float]]] = {}
    calibrations: dict[str, dict[str, dict[str, float]]] = {}  # label -> uid -> row

    for is_sparse, ids in groups.items():
        if not ids:
            continue
        part = data[data["unique_id"].isin(ids)]
        for name in candidates or (SPARSE_CANDIDATES if is_sparse else DENSE_CANDIDATES):
            model = create(name, n_jobs=n_jobs)
            try:
                cv = model.cross_validation(part, horizon=horizon, step_s=step_s, n_windows=n_windows,
                                            levels=levels)
            except ForecastError:
                continue
            season = 86400 // step_s if 86400 % step_s == 0 else 1
            cutoff = cv.groupby("unique_id")["cutoff"].min() if len(cv) else None
            insample = part[part["ds"] <= part["unique_id"].map(cutoff)] if cutoff is not None else None
            for uid, row in score(cv, levels=levels, quantile_column=quantile_column,
                                  insample=insample, season=season).items():
                table.setdefault(uid, {})[name] = row
            fitted = getattr(model, "last_calibration", None)
            if fitted is not None and not getattr(model, "cheap_errors", False):
                calibrations[name] = {u: fitted.to_dict(u) for u in map(str, cv["unique_id"].unique())}

    choices = {}
    for uid in history["unique_id"].unique():
        scores = table.get(uid, {})
        name = pick(scores, levels, coverage_tolerance) or BASELINE
        choices[uid] = ModelChoice(str(uid), name, step_s, now, {}, scores,
                                   calibrations.get(name, {}).get(str(uid)))
    return choices


def _seconds(n: int):
    import pandas as pd
    return pd.Timedelta(seconds=n)


class AutoForecaster(Forecaster):
    """`model = "auto"`: choose per series (by `choose_models`) and forecast each with its
    choice. Without stored choices it chooses on every call, which is what a backtest or a
    one-off `prewarm forecast` wants; the cycle passes the stored choices in."""

    name = "auto"

    def __init__(self, n_windows: int = 8, candidates: Sequence[str] | None = None, n_jobs: int = 1,
                 reuse_calibration: bool = False, **params: Any) -> None:
        super().__init__(n_windows=n_windows, **params)
        self.n_windows, self.candidates, self.n_jobs = n_windows, candidates, n_jobs
        #: False: every forecast re-calibrates on the latest errors (measured on NASA's last
        #: week: 80/95% coverage 0.774/0.944 against 0.749/0.926 with the calibration stored
        #: at the daily choice). True saves the calibration's CV fits of expensive models
        #: at each refresh, for fleets short of CPU.
        self.reuse_calibration = reuse_calibration
        self.last_choices: dict[str, ModelChoice] = {}

    def forecast(self, history, *, horizon: int, step_s: int, levels: Sequence[int] = (80, 95),
                 choices: Mapping[str, ModelChoice] | None = None, now: datetime | None = None):
        import pandas as pd

        if choices is None:
            moment = now or history["ds"].max().to_pydatetime()
            choices = choose_models(history, step_s=step_s, horizon=horizon, now=moment,
                                    candidates=self.candidates, n_windows=self.n_windows,
                                    levels=levels, n_jobs=self.n_jobs)
        self.last_choices = dict(choices)
        by_model: dict[str, list[str]] = {}
        for uid in history["unique_id"].unique():
            choice = choices.get(uid)
            key = label(choice.model, choice.params) if choice else BASELINE
            by_model.setdefault(key, []).append(uid)
        parts = []
        for key, ids in by_model.items():
            choice = choices.get(ids[0])
            stored = {str(u): choices[u].calibration for u in ids
                      if choices.get(u) is not None and choices[u].calibration}
            extra = {"calibrated": Calibration.from_dicts(stored)} if stored and self.reuse_calibration else {}
            model = choice.forecaster(n_jobs=self.n_jobs, **extra) if choice else create(BASELINE)
            out = model.forecast(history[history["unique_id"].isin(ids)], horizon=horizon,
                                 step_s=step_s, levels=levels)
            parts.append(out.assign(model=key))
        return pd.concat(parts, ignore_index=True)
