"""The product under test: prewarm's own forecaster and planner, replayed with a rolling origin.

Every `cycle_s` (60 s, the daemon's cycle) the policy plans with `prewarm.planner.plan_endpoint`
from a forecast made by a `prewarm.forecasters` Forecaster at the last refit. A forecast at
origin o sees only requests before o - ingest delay; the recent traffic the planner sees is
likewise cut at t - ingest delay. Refits run every `refit_s` of simulated time; origins are
forecast in batches (one unique_id per origin, each holding only its own past), which keeps
forecasters that fit each series alone exactly rolling-origin. Only forecasters known to fit
each series alone are batched (BATCH_SAFE, each tested: a batch gives every series what it gets
alone; or a class that declares `per_series = True`); any other, a cross-series model that
could learn from a later origin's history, is called one origin at a time. Enforced, not
assumed: every history handed to the forecaster is checked to end at or before its origin's
cut (and, unbatched, before the replay's clock), else the replay stops with LookAheadError.

Every `tune_every_s` the tuner (prewarm.planner.tuning) moves the policy's knobs toward the
target cold-start rate from the cold requests observed in the replay so far (the daemon reads
the same from the store).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from ..planner.burstiness import dispersion_index
from ..planner.core import plan_endpoint, smoothed
from ..planner.model import (SMOOTHING_CHOICES_S, CapacityModel, DemandForecast, Observed, PolicySettings,
                             StaticSetting)
from ..planner.tuning import ObservedStats, tune
from .baselines import Cmd
from .judgement import Judgement
from .traces import Trace


@dataclass(frozen=True)
class PredictiveSettings:
    step_s: int = 300  # forecast step
    season_s: int = 86400
    history_s: float = 8 * 86400.0  # history each forecast sees
    refit_s: float = 1800.0  # forecast cadence in simulated time
    refit_batch: int = 48  # origins per forecaster call
    cycle_s: float = 60.0  # planning cadence (the daemon's)
    levels: tuple[int, ...] = (50, 80, 95)
    recent_s: float = 600.0  # window of the recent-traffic rate the planner sees
    tune: bool = True
    tune_every_s: float = 3 * 3600.0
    tune_window_s: float = 86400.0
    # History of per-minute counts the arrival dispersion is measured on (planner.burstiness),
    # re-measured at every forecast refit.
    dispersion_window_s: float = 86400.0
    # The static guard: every guard_every_s the best static (floor, keep-alive) of the last
    # guard_window_s of the endpoint's own history at the target (advisor.trailing_static); the
    # plan never goes below it (planner StaticSetting). False: the plan alone.
    # "auto": guarded only for a period after the plan alone did worse than static on the
    # trailing week, by the best static setting; "lift": then by the least (floor, keep-alive)
    # under the plan that held there (runner.cheapest_lift); "always"; "off". runner.static_guard. Every / window None: seven seasons
    # (last week's setting, re-judged weekly: a week of the busiest endpoint's replays is the
    # cost) over seven seasons; under one season of history, no guard.
    guard: str = "auto"
    guard_every_s: float | None = None
    guard_window_s: float | None = None
    # With the guard on, each judgement also replays the plan alone on the same trailing week at
    # each of these smoothings and the policy takes the one that did best there
    # (runner.choose_smoothing; [planner] smoothing_choices). Empty: the policy's own smoothing.
    smoothing_choices_s: tuple[float, ...] = SMOOTHING_CHOICES_S

    @property
    def guard_every(self) -> float:
        return 7.0 * self.season_s if self.guard_every_s is None else self.guard_every_s

    @property
    def guard_window(self) -> float:
        return 7.0 * self.season_s if self.guard_window_s is None else self.guard_window_s


# Forecasters that fit each series alone, by entry-point name (tests/backtest:
# test_batched_forecasts_equal_single_ones checks each).
BATCH_SAFE = frozenset({"select", "seasonal-mean", "seasonal-naive", "seasonal-naive-weekly", "croston-sba", "tsb",
                        "adida", "imapa"})


class LookAheadError(RuntimeError):
    """A forecaster was handed history past the instant the replay acts at."""


def batch_safe(forecaster) -> bool:
    """May origins be forecast together, one unique_id each? Only if the model fits each series
    alone: a cross-series model would see later origins' histories (the future)."""
    if getattr(forecaster, "per_series", False) is True:
        return True
    return type(forecaster).__module__.startswith("prewarm.forecasters.") and \
        getattr(forecaster, "name", None) in BATCH_SAFE


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


class Forecasts:
    """Forecasts at every refit origin, made lazily in batches by a prewarm Forecaster."""

    def __init__(self, trace: Trace, forecaster, settings: PredictiveSettings, ingest_delay_s: float,
                 horizon_s: float):
        self.settings = settings
        self.forecaster = forecaster
        self.delay = ingest_delay_s
        self.horizon_s = horizon_s
        step = settings.step_s
        self.grid0 = math.floor(trace.arrivals[0] / step) * step if len(trace) else 0.0
        end = trace.arrivals[-1] + step if len(trace) else step
        self.counts = trace.per_step_counts(self.grid0, end, step)
        self.cache: dict[float, tuple[float, dict[str, np.ndarray]]] = {}
        self.smoothed: dict = {}
        self.model = getattr(forecaster, "name", type(forecaster).__name__)
        self.batch = settings.refit_batch if batch_safe(forecaster) else 1

    def origin(self, t: float) -> float:
        return math.floor(t / self.settings.refit_s) * self.settings.refit_s

    def at(self, t: float, upcoming: list[float], smoothing_s: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
        """(start time, columns in requests per minute) of the forecast in force at t,
        smoothed over +- smoothing_s."""
        o = self.origin(t)
        if o not in self.cache:
            batch = [o] + [u for u in upcoming if u not in self.cache and u != o]
            self._fit(batch[: self.batch], t)
        key = (o, smoothing_s)
        if key not in self.smoothed:
            start, cols = self.cache[o]
            w = int(round(smoothing_s / self.settings.step_s))
            self.smoothed = {key: (start, {k: np.asarray(smoothed(v, w)) for k, v in cols.items()})}
        return self.smoothed[key]

    def _fit(self, origins: list[float], now: float) -> None:
        import pandas as pd

        s = self.settings
        step = s.step_s
        if len(origins) > 1 and not batch_safe(self.forecaster):
            raise LookAheadError(f"forecaster {self.model} is not known to fit each series alone; "
                                 "it cannot be given several origins in one call")
        frames, meta = [], {}
        for k, o in enumerate(origins):
            # History: whole steps that end at or before o - ingest delay.
            hi = int(math.floor((o - self.delay - self.grid0) / step))
            lo = max(0, hi - int(s.history_s // step))
            hi = max(hi, 0)
            ends = self.grid0 + hi * step  # the end of the last step handed over (none if hi <= lo)
            if hi > lo and (ends > o - self.delay or (len(origins) == 1 and ends > now - self.delay)):
                raise LookAheadError(f"history for origin {_utc(o).isoformat()} ends at "
                                     f"{_utc(ends).isoformat()}, after the data available at "
                                     f"{_utc(min(o, now) - self.delay).isoformat()}")
            y = self.counts[lo:hi] if hi <= len(self.counts) else np.concatenate(
                [self.counts[lo:], np.zeros(hi - max(lo, len(self.counts)))])
            start_next = self.grid0 + hi * step
            horizon = max(1, int(math.ceil((o + s.refit_s + self.horizon_s - start_next) / step)))
            meta[str(k)] = (o, start_next, horizon)
            if len(y) == 0:
                continue
            ds = pd.to_datetime((self.grid0 + np.arange(lo, hi) * step) * 1e9).tz_localize(None)
            frames.append(pd.DataFrame({"unique_id": str(k), "ds": ds, "y": y}))
        out = None
        if frames:
            history = pd.concat(frames, ignore_index=True)
            h = max(m[2] for m in meta.values())
            out = self.forecaster.forecast(history, horizon=h, step_s=step, levels=s.levels)
        per_min = 60.0 / step
        for uid, (o, start_next, horizon) in meta.items():
            if out is None or uid not in set(out["unique_id"]):
                cols = {"mean": np.zeros(horizon)}  # nothing seen yet: no demand forecast
            else:
                part = out[out["unique_id"] == uid]
                cols = {c: part[c].to_numpy(float)[:horizon] * per_min
                        for c in part.columns if c == "mean" or c.startswith(("hi-", "lo-"))}
            self.cache[o] = (start_next, cols)


class PredictivePolicy:
    """Rolling-origin replay of forecast -> plan. Call `commands(t, until, sim)` per cycle."""

    name = "predictive"

    def __init__(self, trace: Trace, forecaster, capacity: CapacityModel, policy: PolicySettings,
                 settings: PredictiveSettings, ingest_delay_s: float,
                 on_progress: Callable[[float], None] | None = None,
                 static_guard: Callable[[float, StaticSetting | None], Judgement] | None = None):
        self.trace = trace
        self.capacity = capacity
        self.policy = policy
        self.settings = settings
        self.delay = ingest_delay_s
        horizon = capacity.cold_start_s + 2 * settings.cycle_s + settings.step_s
        self.plan_horizon_s = horizon
        # The forecast reaches a smoothing window past the plan horizon, so the average at the
        # horizon sees the steps after it (a forecast cut short would read as a lull).
        reach = max((policy.smoothing_s, *settings.smoothing_choices_s)) if static_guard is not None else policy.smoothing_s
        self.forecasts = Forecasts(trace, forecaster, settings, ingest_delay_s, horizon + reach)
        self.need_history: deque[tuple[datetime, int]] = deque()
        self.next_tune = -math.inf
        self.first_t: float | None = None  # the replay's start: no evidence before it
        self.last_change = -math.inf
        self.tunings: list[tuple[float, PolicySettings]] = []
        # (t, mean, the planned quantile, lo-80, hi-80) per cycle, for the timeline plot
        self.forecast_trace: list[tuple[float, float, float, float, float]] = []
        self.on_progress = on_progress
        self._dispersion: tuple[float, float | None] = (math.nan, None)  # (origin, value)
        self.static_guard = static_guard
        self.static: StaticSetting | None = None
        self.next_guard = -math.inf
        self.guards: list[tuple[float, StaticSetting | None]] = []
        self.smoothings: list[tuple[float, float]] = []  # (t, smoothing chosen by the judgement at t)
        self.judgements: list[tuple[float, Judgement]] = []  # (t, the whole judgement at t, with its evidence)

    def upcoming_origins(self, t: float, end: float) -> list[float]:
        o = self.forecasts.origin(t)
        n = self.settings.refit_batch
        return [o + k * self.settings.refit_s for k in range(n) if o + k * self.settings.refit_s < end]

    def commands(self, t: float, until: float, sim, end: float) -> list[Cmd]:
        s = self.settings
        if self.first_t is None:
            self.first_t = t
        if s.tune and t >= self.next_tune:
            self._tune(t, sim)
        if self.static_guard is not None and t >= self.next_guard:
            self.next_guard = t + s.guard_every
            if len(self.trace) and self.trace.arrivals[0] > t - s.guard_window:
                # A young endpoint (under a window of history): judged again every season
                # until its history fills the window, not left unguarded for a week.
                self.next_guard = t + s.season_s
            judged = self.static_guard(t, self.static)
            self.judgements.append((t, judged))
            self.static = judged.static
            self.guards.append((t, self.static))
            if judged.smoothing_s is not None:
                self.smoothings.append((t, judged.smoothing_s))
                if judged.smoothing_s != self.policy.smoothing_s:  # the tuner's knobs kept
                    self.policy = replace(self.policy, smoothing_s=judged.smoothing_s)
        start, cols = self.forecasts.at(t, self.upcoming_origins(t, end), self.policy.smoothing_s)
        step = s.step_s
        # The slice from the step holding t to the plan horizon (already smoothed over the
        # whole forecast, so the planner need not see the smoothing window).
        first = max(0, int((t - start) // step))
        last = min(len(cols["mean"]), int(math.ceil((t + self.plan_horizon_s - start) / step)))
        if last <= first:
            first, last = max(0, last - 1), max(1, last)
        bands = {k: v[first:last] for k, v in cols.items() if k != "mean"}
        forecast = DemandForecast(start=_utc(start + first * step), step_s=step,
                                  mean=cols["mean"][first:last], bands=bands, model=self.forecasts.model)
        now = _utc(t)
        while self.need_history and (now - self.need_history[0][0]).total_seconds() > self.policy.scale_in_delay_s:
            self.need_history.popleft()
        observed = Observed(requests_per_minute_recent=self._recent_rate(t),
                            need_history=tuple(self.need_history), arrival_dispersion=self._arrival_dispersion(t))
        policy = self._planner_policy(tuple(cols))
        plan = plan_endpoint(self.trace.endpoint, forecast, self.capacity, policy, now, observed,
                             static=self.static)
        self.need_history.append((now, plan.need_now))
        i = min(len(forecast) - 1, max(0, int((t - start) // step) - first))
        mean = float(forecast.mean[i])
        lo, hi = (float(forecast.bands[b][i]) if b in forecast.bands else mean for b in ("lo-80", "hi-80"))
        self.forecast_trace.append((t, mean, float(forecast.series(policy.quantile_column)[i]), lo, hi))
        if self.on_progress:
            self.on_progress(t)
        out = []
        for c in plan.commands:
            at = c.at.timestamp()
            if at < until:
                out.append(Cmd(max(at, t), c.warm_workers, c.idle_timeout_s, dict(c.reason)))
        return out

    def _planner_policy(self, columns: tuple[str, ...]) -> PolicySettings:
        """The policy as the planner gets it: the forecast already smoothed, the quantile one
        the forecaster gave. Cached: it changes only when the tuner moves a knob."""
        key = (self.policy, columns)
        if getattr(self, "_policy_key", None) != key:
            policy = self.policy if self.policy.quantile_column in columns or self.policy.quantile_column == "mean" \
                else replace(self.policy, quantile_column="mean")
            self._policy_key, self._policy = key, replace(policy, smoothing_s=0.0)
        return self._policy

    def _recent_rate(self, t: float) -> float:
        """Requests per minute over the recent window, as the store would have it (cut at the
        ingest delay)."""
        cut = t - self.delay
        lo, hi = np.searchsorted(self.trace.arrivals, [cut - self.settings.recent_s, cut])
        return (hi - lo) / (self.settings.recent_s / 60.0)

    def _arrival_dispersion(self, t: float) -> float | None:
        """Dispersion of the per-minute counts over the window before t - ingest delay, as the
        store would have them; measured once per forecast origin."""
        o = self.forecasts.origin(t)
        if self._dispersion[0] != o:
            cut = math.floor((o - self.delay) / 60.0) * 60.0
            counts = self.trace.per_step_counts(cut - self.settings.dispersion_window_s, cut, 60)
            self._dispersion = (o, dispersion_index(counts.tolist()))
        return self._dispersion[1]

    def _tune(self, t: float, sim) -> None:
        self.next_tune = t + self.settings.tune_every_s
        since = max(t - self.settings.tune_window_s, self.last_change)
        cold, total = sim.recent_cold(since)
        minute_counts = self.trace.per_step_counts(t - self.delay - self.settings.tune_window_s,
                                                   t - self.delay, 60)
        baseline = float(np.percentile(minute_counts, self.policy.baseline_percentile)) if len(minute_counts) else 0.0
        stats = ObservedStats(requests=total, cold_requests=cold, baseline_rpm=baseline, span_s=t - max(since, self.first_t))
        bands = ("mean", *(f"hi-{lv}" for lv in self.settings.levels))
        tuned = tune(self.policy, stats, self.capacity, bands)
        if tuned != self.policy:
            self.last_change = t
        self.policy = tuned
        self.tunings.append((t, self.policy))
