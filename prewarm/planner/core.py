"""The planner: forecast + capacity model + policy + now -> plan. Pure: no I/O, no clock.

Steps, per endpoint:
1. demand per step from the forecast band chosen by policy (headroom from quantiles),
   optionally smoothed, and never below recent actual traffic for recent_window_s;
2. workers needed per step (sizing.py): Erlang loss at the blocking target for busy steps
   (Hayward's for bursty arrivals, at the peakedness of the observed counts: burstiness.py);
   in lulls, one worker only if it pays for itself (break-even) or by the speculative rule;
3. lead: a worker commanded at t is ready at t + cold start, so the target at t is the
   largest need over [t, t + cold start];
4. hysteresis: the target at t is the largest need over [t - scale_in_delay, t + lead], the
   planner's own earlier needs (Observed.need_history) included, so it does not flap;
5. floor, min_workers, the best static setting of the trailing week (StaticSetting: its floor,
   and its keep-alive as the least idle timeout), a hold; caps: max workers, a worker-hour budget;
6. the step function compressed to commands, each with its reason.

Time inside is float seconds from `now`; datetimes only at the edges.
"""
from __future__ import annotations

import bisect
import functools
import math
from collections import deque
from datetime import datetime, timedelta

import numpy as np

from .burstiness import peakedness
from .model import (CapacityModel, Command, DemandForecast, EndpointPlan, Hold, Observed, PolicySettings,
                    StaticSetting)
from .sizing import fewest_workers_for_values, fewest_workers_for_values_array, workers_for_rate

# Sizing is pure and per rate: memoized for short forecasts (a replay sees the same rates).
_by_values = functools.lru_cache(maxsize=8192)(fewest_workers_for_values)
_by_rate = functools.lru_cache(maxsize=8192)(workers_for_rate)

__all__ = ["plan_endpoint", "workers_for_rate", "speculative_pays", "step_needs"]


def speculative_pays(expected_requests_per_hour: float, policy: PolicySettings) -> bool:
    """The simple rule: hold a speculative worker in a lull unless fewer than
    speculative_min_requests_per_hour are expected."""
    return policy.speculative and expected_requests_per_hour >= policy.speculative_min_requests_per_hour


def smoothed(values, window_steps: int) -> list[float]:
    """Centered moving average over +- window_steps (edges average what they have)."""
    vals = np.asarray(values, dtype=float)
    vals = np.where(vals > 0.0, vals, 0.0)  # max(0.0, v), as Python's max (NaN becomes 0)
    if window_steps <= 0:
        return vals.tolist()
    n = len(vals)
    # Running sums in order (numpy's accumulate is sequential, as a running total in a loop).
    prefix = np.concatenate(([0.0], np.add.accumulate(vals))) if n else np.zeros(1)
    i = np.arange(n)
    lo, hi = np.maximum(0, i - window_steps), np.minimum(n, i + window_steps + 1)
    return ((prefix[hi] - prefix[lo]) / (hi - lo)).tolist()


def step_needs(rates: list[float], step_s: float, capacity: CapacityModel,
               policy: PolicySettings, z: float = 1.0) -> tuple[list[int], list[str]]:
    """Workers needed in each step for arrival `rates` (per minute) of peakedness z, and why."""
    value = policy.cold_start_value_s
    if value is None:
        return _step_needs_by_blocking(rates, capacity, policy, z)
    # Break-even for every worker: each one is held only while the cold starts it is expected
    # to avoid are worth its worker-seconds (worker 1 is the speculative one). Workers beyond
    # the first are credited only a share of the value: with a long busy-hours idle timeout,
    # workers a burst starts stay for the next burst anyway. Both sized from one set of losses,
    # every step at once (sizing.fewest_workers_for_values_array).
    values = (value,) if policy.burst_value_share >= 1.0 else (value, value * policy.burst_value_share)
    if len(rates) <= SHORT_FORECAST_STEPS:
        # A replay plans a few steps a minute and sees the same rates again: the memoized
        # search is cheaper than an array call there.
        rows = [_by_values(r, capacity.service_time_s, capacity.concurrency, values, 10_000, z) for r in rates]
    else:
        sized = fewest_workers_for_values_array(np.asarray(rates, dtype=float), capacity.service_time_s,
                                                capacity.concurrency, values, 10_000, z)
        rows = list(zip(*(a.tolist() for a in sized)))
    needs, whys = [], []
    for rate, row in zip(rates, rows):
        need = row[0]
        if need > 1 and len(row) > 1:
            need = max(1, row[1])
        why = "forecast" if need > 1 else ("break-even" if need else "below break-even")
        if need == 1 and not policy.speculative and rate * step_s / 60.0 < 1.0:
            need, why = 0, "lull, speculative off"  # under one arrival expected in the step
        needs.append(need)
        whys.append(why)
    return needs, whys


def _step_needs_by_blocking(rates, capacity: CapacityModel, policy: PolicySettings,
                            z: float) -> tuple[list[int], list[str]]:
    """Busy steps sized to the blocking target, lulls by the speculative rule."""
    needs, whys = [], []
    for rate in rates:
        need = _by_rate(rate, capacity, policy.blocking, peakedness=z)
        why = "forecast"
        if need == 0 and speculative_pays(rate * 60.0, policy):
            need, why = 1, "speculative"
        needs.append(need)
        whys.append(why)
    return needs, whys


def plan_endpoint(endpoint: str, forecast: DemandForecast, capacity: CapacityModel,
                  policy: PolicySettings, now: datetime, observed: Observed | None = None,
                  hold: Hold | None = None, static: StaticSetting | None = None) -> EndpointPlan:
    n = len(forecast)
    if n == 0:
        return EndpointPlan(endpoint, now, ())
    observed = observed or Observed()
    step = float(forecast.step_s)
    lead = float(capacity.cold_start_s)
    delay = max(0.0, float(policy.scale_in_delay_s))
    t0 = (forecast.start - now).total_seconds()  # step i covers [t0 + i step, t0 + (i+1) step)
    end = t0 + n * step

    band = forecast.series(policy.quantile_column)
    rates = smoothed(band, int(round(policy.smoothing_s / step)))
    if len(forecast.pinned):  # a declared event's steps keep at least their own value
        rates = np.where(np.asarray(forecast.pinned, bool), np.maximum(rates, np.maximum(band, 0.0)), rates).tolist()
    recent = observed.requests_per_minute_recent
    if recent > 0:
        # Never scale in on a forecast alone while actual traffic is higher.
        rates = [max(r, recent) if t0 + i * step < policy.recent_window_s else r
                 for i, r in enumerate(rates)]
    z = peakedness(observed.arrival_dispersion, capacity.service_time_s) if policy.burstiness == "observed" else 1.0
    needs, whys = step_needs(rates, step, capacity, policy, z)

    floor = max(policy.floor, capacity.min_workers, static.floor if static is not None else 0)
    history = sorted(((at - now).total_seconds(), v) for at, v in observed.need_history)

    def index(t: float) -> int:
        return math.floor((t - t0) / step + 1e-9)

    busy_timeout = policy.busy_idle_timeout_s() if policy.idle_timeout_rule == "forecast" else None
    lull_timeout = policy.idle_timeout_s
    hold_until = (hold.until - now).total_seconds() if hold is not None else None

    # Under the forecast rule the idle timeout is the busy one while a step in the window
    # needs a worker and is sparse: keep-alive is the burst mechanism only for sparse traffic
    # (fewer arrivals per cold start than one worker's slots); denser traffic is sized by
    # Erlang, and a long timeout there would keep every worker a ramp's cold requests started.
    sparse = None
    if busy_timeout is not None and busy_timeout != lull_timeout:
        sparse = [r / 60.0 * max(lead, 1.0) <= capacity.concurrency for r in rates]
    # The target at each point where it can change: the largest need over the steps
    # [t - delay, t + lead] (the latest step first among equals: the step that still binds),
    # remembered needs while h > t - delay, then the floor, a hold, the cap. Two ways to the
    # same numbers: a loop for the short forecasts a replay plans each minute, array
    # operations for the daemon's hours of steps (numpy's fixed cost per call is more than
    # a short loop).
    window = _WindowLoop if n <= SHORT_FORECAST_STEPS else _WindowArrays
    targets = window(n, t0, step, lead, delay, end, needs, sparse, history, floor, hold, hold_until,
                     capacity.max_workers)
    points, values, busy = targets.points, list(targets.values), targets.busy
    budget_capped = _apply_budget(list(points), values, end, policy, capacity, hold, now)

    def why_at(p: int) -> tuple[str, int, float]:
        """Why the target at point p is what it is (only where a command is issued)."""
        t = float(points[p])
        k, j, from_window, by_memory, by_floor, by_hold, capped = targets.state(p)
        if not from_window:
            j = None
        if j is not None:
            # A step already over binds only through hysteresis; one ahead, through the lead.
            why = "scale_in_delay" if t0 + (j + 1) * step <= t + 1e-9 else whys[j]
        else:
            why = whys[k] if 0 <= k < n else "forecast"
        if by_memory:
            j, why = None, "scale_in_delay"
        if by_floor:
            if static is not None and static.floor > max(policy.floor, capacity.min_workers):
                why = "static floor (the static guard, judged on the trailing week)"
            else:
                why = "floor" if policy.floor >= capacity.min_workers else "min_workers"
        if by_hold:
            why = "hold"
        if capped:
            why = f"{why}, capped at max_workers"
        if budget_capped[p]:
            why = f"{why}, capped by budget"
        return why, j if j is not None else min(max(k, 0), n - 1), t

    def reason(why: str, j: int, t: float) -> dict:
        return {
            "why": why,
            "forecast_rpm": round(float(band[j]), 4),
            "planned_rpm": round(rates[j], 4),
            "quantile": policy.quantile_column,
            "model": forecast.model,
            "need_at": (now + timedelta(seconds=max(t0 + j * step, t))).isoformat(),
            "lead_s": lead,
            "need": needs[j],
            "floor": floor,
            "cap": capacity.max_workers,
            "idle_timeout_rule": policy.idle_timeout_rule,
            "peakedness": round(z, 3),
            "smoothing_s": policy.smoothing_s,
            **({"static_floor": static.floor, "static_keepalive_s": static.keepalive_s} if static is not None else {}),
        }

    # The step function compressed to commands: one where the target or the timeout changes.
    commands: list[Command] = []
    last = None
    for p, (v, b) in enumerate(zip(values, busy)):
        if (v, b) == last:
            continue
        last = (v, b)
        why, j, t = why_at(p)
        idle = busy_timeout if b else lull_timeout
        if static is not None:
            idle = static.idle_timeout(idle)
        commands.append(Command(at=now + timedelta(seconds=t), warm_workers=v, idle_timeout_s=idle,
                                reason=reason(why, j, t)))
    need_now = needs[index(0.0)] if 0 <= index(0.0) < n else 0
    return EndpointPlan(endpoint, now, tuple(commands), need_now=need_now)


SHORT_FORECAST_STEPS = 48  # up to this many steps the loop is the faster of the two


class _WindowArrays:
    """The targets at every change point at once, as array operations: window maxima from a
    sparse table, remembered needs by searchsorted, busy windows by prefix counts. The same
    float arithmetic as _WindowLoop, point for point."""

    def __init__(self, n, t0, step, lead, delay, end, needs, sparse, history, floor, hold, hold_until, cap):
        # Where the target can change: a rise a lead before each step, a drop a delay after
        # it, the expiry of remembered needs and of a hold. (+ 0.0: -0.0 is the instant 0.0.)
        i = np.arange(n + 1)
        times = [np.zeros(1), t0 + i * step - lead, t0 + i * step + delay, np.array([h + delay for h, _ in history])]
        if hold_until is not None:
            times.append(np.array([hold_until]))
        points = np.unique(np.concatenate(times)) + 0.0
        points = points[(points >= 0.0) & (points < end)]
        need = np.asarray(needs, dtype=np.int64)
        lo = np.maximum(0, np.floor((points - delay - t0) / step + 1e-9).astype(np.int64))
        hi = np.minimum(n - 1, np.floor((points + lead - t0) / step + 1e-9).astype(np.int64))
        here = np.floor((points - t0) / step + 1e-9).astype(np.int64)
        spans = lo <= hi
        at = _latest_argmax(need, lo, hi, spans)
        windowed = np.where(spans, need[np.maximum(at, 0)], 0)
        from_window = spans & (windowed > 0)
        value = np.where(from_window, windowed, 0)
        if history:
            # history_max[k]: the largest need among remembered entries k.. (time order)
            history_max = np.maximum.accumulate(np.array([v for _, v in history] + [-1])[::-1])[::-1]
            remembered = history_max[np.searchsorted(np.array([h for h, _ in history]), points - delay, side="right")]
        else:
            remembered = np.full(len(points), -1)
        by_memory = remembered > value
        value = np.where(by_memory, remembered, value)
        by_floor = floor > value
        value = np.where(by_floor, floor, value)
        by_hold = np.zeros(len(points), dtype=bool)
        if hold is not None:
            by_hold = (points < hold_until) & (hold.workers > value)
            value = np.where(by_hold, hold.workers, value)
        capped = value > cap
        value = np.minimum(value, cap)
        busy = np.zeros(len(points), dtype=bool)
        if sparse is not None:
            busy_before = np.concatenate(([0], np.cumsum((need > 0) & np.asarray(sparse, dtype=bool))))
            # (hi is negative before a forecast that starts later; such points span no step)
            busy = spans & (busy_before[np.clip(hi + 1, 0, n)] > busy_before[np.clip(lo, 0, n)])
        self.points, self.values, self.busy = points.tolist(), value.tolist(), busy.tolist()
        self._state = (here, at, from_window, by_memory, by_floor, by_hold, capped)

    def state(self, p: int) -> tuple:
        """(here, at, from_window, by_memory, by_floor, by_hold, capped) at point p: the step
        holding it, the step whose need binds (-1: none), and which rule set the target."""
        here, at, *flags = (a[p] for a in self._state)
        return (int(here), int(at), *(bool(f) for f in flags))


class _WindowLoop:
    """The targets point by point: the window's largest need kept in a monotonic deque (both
    window ends only move forward), busy steps in a prefix count, remembered needs as a
    suffix maximum found by bisect."""

    def __init__(self, n, t0, step, lead, delay, end, needs, sparse, history, floor, hold, hold_until, cap):
        times = {0.0}
        for i in range(n + 1):
            times.add(t0 + i * step - lead)
            times.add(t0 + i * step + delay)
        times.update(h + delay for h, _ in history)
        if hold_until is not None:
            times.add(hold_until)
        self.points = sorted(t for t in times if 0.0 <= t < end)
        busy_before = [0]  # busy_before[j]: steps before j that need a worker and are sparse
        if sparse is not None:
            for need, thin in zip(needs, sparse):
                busy_before.append(busy_before[-1] + (1 if need > 0 and thin else 0))
        history_at = [h for h, _ in history]
        history_max = [-1] * (len(history) + 1)  # history_max[k]: largest need among entries k..
        for k in range(len(history) - 1, -1, -1):
            history_max[k] = max(history[k][1], history_max[k + 1])
        self.values, self.busy, self.rows = [], [], []  # rows: state() of each point
        window: deque[int] = deque()  # step indices in the window, needs strictly falling
        entered = 0  # steps [0, entered) have entered the window
        to_int = math.floor
        for t in self.points:
            lo = max(0, to_int((t - delay - t0) / step + 1e-9))
            hi = min(n - 1, to_int((t + lead - t0) / step + 1e-9))
            while entered <= hi:
                while window and needs[window[-1]] <= needs[entered]:
                    window.pop()
                window.append(entered)
                entered += 1
            while window and window[0] < lo:
                window.popleft()
            at = window[0] if window else -1
            from_window = bool(window) and needs[at] > 0
            value = needs[at] if from_window else 0
            remembered = history_max[bisect.bisect_right(history_at, t - delay)] if history else -1
            by_memory = remembered > value
            value = remembered if by_memory else value
            by_floor = floor > value
            value = floor if by_floor else value
            by_hold = hold is not None and t < hold_until and hold.workers > value
            value = hold.workers if by_hold else value
            self.rows.append((to_int((t - t0) / step + 1e-9), at, from_window, by_memory, by_floor, by_hold,
                              value > cap))
            self.values.append(min(value, cap))
            self.busy.append(sparse is not None and lo <= hi and busy_before[hi + 1] > busy_before[lo])

    def state(self, p: int) -> tuple:
        return self.rows[p]


def _latest_argmax(values, lo, hi, spans):
    """For each range [lo, hi] (where spans), the index of its largest value, the latest among
    equals; -1 where the range is empty. A sparse table: block maxima over powers of two, each
    range the better of two overlapping blocks (the right one wins ties: it is the later)."""
    n = len(values)
    table = [np.arange(n)]
    width = 1
    while 2 * width <= n:
        prev = table[-1]
        left, right = prev[:n - 2 * width + 1], prev[width:n - width + 1]
        table.append(np.where(values[right] >= values[left], right, left))
        width *= 2
    out = np.full(len(lo), -1, dtype=np.int64)
    if not n or not spans.any():
        return out
    a, b = lo[spans], hi[spans]
    level = np.frexp((b - a + 1).astype(float))[1] - 1  # floor(log2(length)), exactly
    first = np.empty(len(a), dtype=np.int64)
    second = np.empty(len(a), dtype=np.int64)
    for k in np.unique(level).tolist():
        m = level == k
        first[m] = table[k][a[m]]
        second[m] = table[k][b[m] - (1 << k) + 1]
    out[spans] = np.where(values[second] >= values[first], second, first)
    return out


def _apply_budget(points, values, end, policy, capacity, hold, now) -> list[bool]:
    """Cap the plan (values, in place) so its worker-hours fit the daily budget pro rata over
    the horizon; the floor, min_workers and a hold are kept even when they alone exceed it.
    Returns which points the budget lowered."""
    budget = policy.budget_worker_hours_per_day
    if budget is None or not points:
        return [False] * len(points)
    durations = [b - a for a, b in zip(points, points[1:] + [end])]
    allowance = budget * 3600.0 * (end - points[0]) / 86400.0
    hard = [max(policy.floor, capacity.min_workers,
                hold.workers if hold is not None and t < (hold.until - now).total_seconds() else 0)
            for t in points]

    def spend(level: int) -> float:
        return sum(max(h, min(v, level)) * d for v, h, d in zip(values, hard, durations))

    if spend(max(values)) <= allowance:
        return [False] * len(points)
    levels = list(range(max(values) + 1))
    # Largest level whose spend fits (spend is non-decreasing in the level).
    k = bisect.bisect_right([spend(lv) for lv in levels], allowance) - 1
    level = max(0, k)
    lowered = []
    for i, (v, h) in enumerate(zip(values, hard)):
        values[i] = max(h, min(v, level))
        lowered.append(values[i] < v)
    return lowered
