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
5. floor, min_workers, a hold; caps: max workers, a worker-hour budget;
6. the step function compressed to commands, each with its reason.

Time inside is float seconds from `now`; datetimes only at the edges.
"""
from __future__ import annotations

import bisect
import functools
import math
from collections import deque

import numpy as np
from datetime import datetime, timedelta

from .burstiness import peakedness
from .model import CapacityModel, Command, DemandForecast, EndpointPlan, Hold, Observed, PolicySettings
from .sizing import fewest_workers_for_values_array, workers_for_rate

# Sizing to a blocking target is pure and per rate: memoized (a replay sees the same rates).
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


_WHY_BY_VALUE = ("below break-even", "break-even", "forecast")


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
    rate = np.asarray(rates, dtype=float)
    sized = fewest_workers_for_values_array(rate, capacity.service_time_s, capacity.concurrency, values,
                                            10_000, z)
    need = sized[0]
    if len(sized) > 1:
        need = np.where(need > 1, np.maximum(1, sized[1]), need)
    why = np.minimum(need, 2)  # index into _WHY_BY_VALUE
    whys = [_WHY_BY_VALUE[k] for k in why.tolist()]
    if not policy.speculative:
        # Under one arrival expected in the step, no speculative worker.
        for i in np.flatnonzero((need == 1) & (rate * step_s / 60.0 < 1.0)).tolist():
            need[i], whys[i] = 0, "lull, speculative off"
    return need.tolist(), whys


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
                  hold: Hold | None = None) -> EndpointPlan:
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
    recent = observed.requests_per_minute_recent
    if recent > 0:
        # Never scale in on a forecast alone while actual traffic is higher.
        rates = [max(r, recent) if t0 + i * step < policy.recent_window_s else r
                 for i, r in enumerate(rates)]
    z = peakedness(observed.arrival_dispersion, capacity.service_time_s) if policy.burstiness == "observed" else 1.0
    needs, whys = step_needs(rates, step, capacity, policy, z)

    floor = max(policy.floor, capacity.min_workers)
    history = [((at - now).total_seconds(), v) for at, v in observed.need_history]

    def index(t: float) -> int:
        return math.floor((t - t0) / step + 1e-9)

    busy_timeout = policy.busy_idle_timeout_s() if policy.idle_timeout_rule == "forecast" else None
    # Keep-alive is the burst mechanism only for sparse traffic: fewer arrivals per cold start
    # than one worker's slots. Denser traffic is sized by Erlang, and a long timeout there would
    # keep every worker a ramp's cold requests started.
    sparse = [r / 60.0 * max(lead, 1.0) <= capacity.concurrency for r in rates]

    # The target at t is the largest need over [t - delay, t + lead] (latest step first among
    # equals: the step that still binds), and under the forecast rule the idle timeout is the
    # busy one while a step in that same window needs a worker and is sparse. Points are sorted,
    # so both window ends only move forward: the largest need is kept in a monotonic deque and
    # the busy steps in a prefix count, O(1) a point instead of a scan of the window.
    busy_before = [0]  # busy_before[j]: steps before j that need a worker and are sparse
    for need, thin in zip(needs, sparse):
        busy_before.append(busy_before[-1] + (1 if need > 0 and thin else 0))
    # Remembered needs count while h > t - delay: the largest of those after a time, by bisect.
    history.sort(key=lambda hv: hv[0])
    history_at = [h for h, _ in history]
    history_max = [-1] * (len(history) + 1)  # history_max[k]: largest need among entries k..
    for k in range(len(history) - 1, -1, -1):
        history_max[k] = max(history[k][1], history_max[k + 1])
    lull_timeout = policy.idle_timeout_s

    # Where the target can change: a rise a lead before each step, a drop a delay after it,
    # the expiry of remembered needs and of a hold.
    times = {0.0}
    for i in range(n + 1):
        times.add(t0 + i * step - lead)
        times.add(t0 + i * step + delay)
    times.update(h + delay for h, _ in history)
    if hold is not None:
        times.add((hold.until - now).total_seconds())
    points = sorted(t for t in times if 0.0 <= t < end)

    values: list[int] = []
    timeouts: list[float | None] = []
    reasons: list[list] = []
    window: deque[int] = deque()  # step indices in the window, needs strictly falling
    entered = 0  # steps [0, entered) have entered the window
    to_int = math.floor
    for t in points:
        # index(t - delay), index(t + lead), index(t), inlined (the loop runs every step)
        lo = max(0, to_int((t - delay - t0) / step + 1e-9))
        hi = min(n - 1, to_int((t + lead - t0) / step + 1e-9))
        here = to_int((t - t0) / step + 1e-9)
        while entered <= hi:
            while window and needs[window[-1]] <= needs[entered]:
                window.pop()
            window.append(entered)
            entered += 1
        while window and window[0] < lo:
            window.popleft()
        value, at, why = 0, None, whys[here] if 0 <= here < n else "forecast"
        if window and needs[window[0]] > 0:
            at = window[0]
            value = needs[at]
            # A step already over binds only through hysteresis; one ahead, through the lead.
            why = "scale_in_delay" if t0 + (at + 1) * step <= t + 1e-9 else whys[at]
        remembered = history_max[bisect.bisect_right(history_at, t - delay)] if history else -1
        if remembered > value:
            value, at, why = remembered, None, "scale_in_delay"
        if busy_timeout is None:
            timeouts.append(lull_timeout)
        else:
            timeouts.append(busy_timeout if lo <= hi and busy_before[hi + 1] > busy_before[lo] else lull_timeout)
        if floor > value:
            value, why = floor, ("floor" if policy.floor >= capacity.min_workers else "min_workers")
        if hold is not None and t < (hold.until - now).total_seconds() and hold.workers > value:
            value, why = hold.workers, "hold"
        if value > capacity.max_workers:
            value, why = capacity.max_workers, f"{why}, capped at max_workers"
        j = at if at is not None else min(max(here, 0), n - 1)
        values.append(value)
        reasons.append([why, j, t])  # made into a dict only where a command is issued
    values = _apply_budget(points, values, end, policy, capacity, hold, now, reasons)

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
        }

    commands: list[Command] = []
    for t, value, timeout, why in zip(points, values, timeouts, reasons):
        if commands and (commands[-1].warm_workers, commands[-1].idle_timeout_s) == (value, timeout):
            continue
        commands.append(Command(at=now + timedelta(seconds=t), warm_workers=value,
                                idle_timeout_s=timeout, reason=reason(*why)))
    need_now = needs[index(0.0)] if 0 <= index(0.0) < n else 0
    return EndpointPlan(endpoint, now, tuple(commands), need_now=need_now)


def _apply_budget(points, values, end, policy, capacity, hold, now, reasons) -> list[int]:
    """Cap the plan so its worker-hours fit the daily budget pro rata over the horizon; the
    floor, min_workers and a hold are kept even when they alone exceed it."""
    budget = policy.budget_worker_hours_per_day
    if budget is None or not points:
        return values
    durations = [b - a for a, b in zip(points, points[1:] + [end])]
    allowance = budget * 3600.0 * (end - points[0]) / 86400.0
    hard = [max(policy.floor, capacity.min_workers,
                hold.workers if hold is not None and t < (hold.until - now).total_seconds() else 0)
            for t in points]

    def spend(level: int) -> float:
        return sum(max(h, min(v, level)) * d for v, h, d in zip(values, hard, durations))

    if spend(max(values)) <= allowance:
        return values
    levels = list(range(max(values) + 1))
    # Largest level whose spend fits (spend is non-decreasing in the level).
    k = bisect.bisect_right([spend(lv) for lv in levels], allowance) - 1
    level = max(0, k)
    out = []
    for v, h, reason in zip(values, hard, reasons):
        capped = max(h, min(v, level))
        if capped < v:
            reason[0] = f"{reason[0]}, capped by budget"
        out.append(capped)
    return out
