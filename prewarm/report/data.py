"""What `prewarm report` shows, read from the store: per endpoint over a window, the traffic
and the forecast in force as it came, the warm target planned and the target the provider
accepted, cold starts, worker-hours and cost against the best static setting on the same
days (the advisor's sweep, replayed on the stored counts), forecast accuracy, and the last
actions with their reasons. Reads only; the HTML is html.py's."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from ..planner.model import StaticSetting

MAX_POINTS = 1500  # chart buckets: a week of minutes is drawn in 7-minute buckets
LAST_ACTIONS = 25
WARMUP = timedelta(days=1)  # the static replay starts a day early, as the backtester does


@dataclass
class Series:
    """Regular buckets of `step_s` from `start`; rates are requests per minute (bucket mean)."""

    start: datetime
    step_s: int
    requests: np.ndarray
    cold: np.ndarray | None  # cold starts per bucket; None when the counts report none
    f_mean: np.ndarray  # the forecast in force (NaN where no snapshot covers the bucket)
    f_lo: np.ndarray
    f_hi: np.ndarray


@dataclass
class StaticComparison:
    advice: object | None  # advisor.Advice at the target cold-start rate
    hours_at_observed: float | None  # fewest static worker-hours reaching prewarm's cold-start rate
    points: int = 0
    note: str = ""


@dataclass
class EndpointReport:
    name: str
    configured: bool
    start: datetime
    end: datetime  # the window is [start, end)
    data_end: datetime  # counts end here (the last stored minute + 1, at most `end`)
    series: Series
    planned: list[tuple[datetime, int]]  # change points of the target the plans wanted
    held: list[tuple[datetime, int]]  # change points of the target the provider accepted
    requests: int
    cold_starts: int | None  # None: the ingested counts carry no cold starts
    reported_requests: int
    target_cold_rate: float
    price_per_worker_hour: float
    held_worker_hours: float
    static: StaticComparison
    accuracy: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)  # in the window, newest first
    guard: "GuardState | None" = None  # None: the static guard is off for the endpoint

    @property
    def cold_rate(self) -> float | None:
        if self.cold_starts is None or not self.reported_requests:
            return None
        return self.cold_starts / self.reported_requests

    @property
    def hours(self) -> float:
        """Hours with counts: what the worker-hours and the static replay cover."""
        return (self.data_end - self.start).total_seconds() / 3600.0


@dataclass
class Judged:
    """One static-guard judgement (prewarm.static_guard): when, under which mode, what it
    holds the plan at or above (None: the plan alone) and why (the evidence, one line; None:
    judged before evidence was stored)."""
    judged_at: datetime
    mode: str
    setting: "StaticSetting | None"
    summary: str | None


@dataclass
class GuardState:
    """The static guard over a window: the endpoint's configured mode, the judgements in force
    (the last made by the window's start, then those made in it), the last judgement made at
    all, and the last attempt if it failed (the judgement before it stays in force)."""
    mode: str  # the endpoint's [planner] static_guard
    judgements: list[Judged]
    last_judged_at: datetime | None = None  # None: never judged
    failed_at: datetime | None = None  # static_guard.failed_attempt: only one after the last judgement
    error: str | None = None


def guard_state(store, settings, ep, start: datetime, end: datetime) -> GuardState | None:
    from ..backtest.judgement import summary
    from ..static_guard import failed_attempt, stored_static

    mode = settings.planner_for(ep).static_guard
    if mode == "off":
        return None
    row = store.static_guards([ep.name]).get(ep.name) or {}
    judged = [Judged(j["judged_at"], j["mode"], stored_static(j), summary(j["evidence"]))
              for j in store.static_guard_judgements(ep.name, start, end) if j["judged_at"] < end]
    failed_at, error = failed_attempt(row) or (None, None)
    return GuardState(mode, judged, row.get("judged_at"), failed_at, error)


def endpoint_report(store, settings, ep, configured: bool, start: datetime, end: datetime,
                    progress: Callable[[int, int], None] | None = None, static: bool = True) -> EndpointReport:
    last = store.last_count_time(ep.name)
    data_end = min(end, last + timedelta(minutes=1)) if last and last >= start else end
    rows = store.history(ep.name, start - WARMUP, data_end)
    horizon = timedelta(seconds=settings.forecast_for(ep).horizon_s)
    planner = settings.planner_for(ep)
    in_window = [r for r in rows if r[0] >= start]
    reported = [r for r in in_window if r[2] is not None]
    cold = sum(r[2] for r in reported) if reported else None
    reported_requests = sum(r[1] for r in reported)
    observed = cold / reported_requests if cold is not None and reported_requests else None
    held = _clip(store.applied_targets(ep.name, start, end), start)
    return EndpointReport(
        name=ep.name, configured=configured, start=start, end=end, data_end=data_end,
        series=series(in_window, store.forecast_rows(ep.name, start - horizon, start, end), start, end),
        planned=target_steps(store.plan_steps(ep.name, start - horizon, end), start, end), held=held,
        requests=sum(r[1] for r in in_window), cold_starts=cold, reported_requests=reported_requests,
        target_cold_rate=planner.target_cold_rate, price_per_worker_hour=ep.capacity.price_per_worker_hour,
        held_worker_hours=step_hours(held, start, data_end),
        static=static_comparison(ep, rows, start, data_end, planner.target_cold_rate, observed, progress) if static
        else StaticComparison(None, None, note="Static settings not replayed (--no-static)."),
        accuracy=[a for a in store.accuracy(ep.name, limit=10_000) if start <= a["issued_at"] < end],
        actions=store.actions(ep.name, since=start, limit=1_000_000)[::-1],
        guard=guard_state(store, settings, ep, start, end))


def series(rows, forecasts, start: datetime, end: datetime) -> Series:
    minutes = max(1, math.ceil((end - start).total_seconds() / 60.0))
    per = max(1, math.ceil(minutes / MAX_POINTS))
    n = math.ceil(minutes / per)
    req = np.zeros(n)
    cold = np.zeros(n)
    any_cold = False
    for ts, requests, cold_starts in rows:
        i = int((ts - start).total_seconds() // 60) // per
        if 0 <= i < n:
            req[i] += requests
            if cold_starts is not None:
                cold[i] += cold_starts
                any_cold = True
    # The forecast in force at each minute: the latest snapshot issued at or before it.
    sums = np.zeros((3, n))
    counts = np.zeros(n)
    chosen: dict[datetime, tuple] = {}
    for issued, ds, mean, lo, hi in forecasts:
        if issued <= ds:
            chosen[ds] = (mean, lo if lo is not None else mean, hi if hi is not None else mean)
    for ds, values in chosen.items():
        i = int((ds - start).total_seconds() // 60) // per
        if 0 <= i < n:
            sums[:, i] += values
            counts[i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    minutes_in = np.full(n, float(per))
    minutes_in[-1] = minutes - per * (n - 1)
    return Series(start, per * 60, req / minutes_in, cold if any_cold else None, f[0], f[1], f[2])


def target_steps(steps: list[tuple[datetime, datetime, int]], start: datetime,
                 end: datetime) -> list[tuple[datetime, int]]:
    """The target in force over [start, end) as change points: each plan rules from its
    issue until the next plan's, with the command in force at each instant."""
    plans: dict[datetime, list[tuple[datetime, int]]] = {}
    for issued, at, n in steps:
        plans.setdefault(issued, []).append((at, n))
    issued = sorted(plans)
    out: list[tuple[datetime, int]] = []
    for k, t0 in enumerate(issued):
        t1 = issued[k + 1] if k + 1 < len(issued) else end
        cmds = plans[t0]
        first = [n for at, n in cmds if at <= t0]
        current = first[-1] if first else cmds[0][1]
        out.append((t0, current))
        out.extend((at, n) for at, n in cmds if t0 < at < t1)
    return _dedupe(_clip(out, start))


def _clip(points: list[tuple[datetime, int]], start: datetime) -> list[tuple[datetime, int]]:
    """Change points from `start` on; the one in force at `start` moved to it."""
    before = [p for p in points if p[0] <= start]
    after = [p for p in points if p[0] > start]
    return ([(start, before[-1][1])] if before else []) + after


def _dedupe(points: list[tuple[datetime, int]]) -> list[tuple[datetime, int]]:
    out: list[tuple[datetime, int]] = []
    for t, n in points:
        if not out or out[-1][1] != n:
            out.append((t, n))
    return out


def step_hours(points: list[tuple[datetime, int]], start: datetime, end: datetime) -> float:
    """Worker-hours of a step function over [start, end)."""
    total = 0.0
    for k, (t, n) in enumerate(points):
        t1 = points[k + 1][0] if k + 1 < len(points) else end
        t0, t1 = max(t, start), min(t1, end)
        if t1 > t0:
            total += n * (t1 - t0).total_seconds() / 3600.0
    return total


def static_comparison(ep, rows, start: datetime, end: datetime, target: float, observed: float | None,
                      progress=None) -> StaticComparison:
    """The advisor's sweep of static (floor, keep-alive) settings replayed on the stored
    counts of the same days, with the endpoint's capacity and price."""
    from ..backtest import advisor
    from ..backtest import frontier as fr
    from ..backtest.runner import BacktestConfig
    from ..backtest.simulator import ColdStart, WorkerModel
    from ..backtest.traces import Trace, load_cold_starts

    if not any(r[1] for r in rows if r[0] >= start):
        return StaticComparison(None, None, note="no requests in the window: nothing to replay")
    c = ep.capacity
    starts = np.array([r[0].timestamp() for r in rows], dtype=float)
    counts = np.array([r[1] for r in rows], dtype=np.int64)
    rng = np.random.default_rng(0)  # arrivals spread within their minute, as the backtester's
    arrivals = np.repeat(starts, counts)
    trace = Trace(ep.name, np.sort(arrivals + rng.random(len(arrivals)) * 60.0), None)
    cold = ColdStart(samples_s=load_cold_starts(c.cold_start_dist)) if c.cold_start_dist \
        else ColdStart(fixed_s=c.cold_start_s)
    cfg = BacktestConfig(start_s=start.timestamp(), end_s=end.timestamp(), worker=WorkerModel(c.concurrency),
                         cold_start=cold, service_time_s=c.service_time_s, target_cold_rate=target,
                         price_per_worker_hour=c.price_per_worker_hour, max_workers=max(c.max_workers, 1))
    points = fr.sweep(trace, cfg, progress=progress)
    prices = advisor.Prices(c.price_per_worker_hour, c.price_per_worker_hour)
    advice = advisor.advise_from_points(points, (cfg.end_s - cfg.start_s) / 3600.0, prices, target)
    at_observed = None
    if observed is not None:
        hours = fr.hours_at(fr.envelope(points), observed)
        at_observed = None if math.isinf(hours) else hours
    return StaticComparison(advice, at_observed, len(points))
