"""The planner: forecast + capacity model + policy + now -> plan. Pure: no I/O, no clock.

Steps, per endpoint:
1. demand per step from the forecast band chosen by policy (headroom from quantiles);
2. workers needed per step: offered load (arrivals x service time) over concurrency,
   at least one when any request is expected;
3. lead: a worker commanded at t is ready at t + cold start, so the target at t is the
   largest need in [t, t + cold start];
4. the speculative worker through lulls, the floor, a hold, recent actual traffic;
5. hysteresis: a lower target only after the need has stayed lower for scale_in_delay;
6. caps: max workers;
7. the step function compressed to commands, each with its reason.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from .model import CapacityModel, Command, DemandForecast, EndpointPlan, Hold, Observed, PolicySettings


def workers_for_rate(rate_per_min: float, capacity: CapacityModel) -> int:
    """Workers to serve `rate_per_min` arrivals: offered load (Little's law) over concurrency,
    rounded up, and at least one worker whenever a request is expected."""
    if rate_per_min <= 0:
        return 0
    busy_slots = rate_per_min / 60.0 * capacity.service_time_s
    return max(1, math.ceil(busy_slots / capacity.concurrency - 1e-9))


def speculative_pays(expected_requests_per_hour: float, policy: PolicySettings) -> bool:
    """Hold a speculative worker in a lull only if the requests it would catch pay for it."""
    return policy.speculative and expected_requests_per_hour >= policy.speculative_min_requests_per_hour


def plan_endpoint(endpoint: str, forecast: DemandForecast, capacity: CapacityModel,
                  policy: PolicySettings, now: datetime, observed: Observed | None = None,
                  hold: Hold | None = None) -> EndpointPlan:
    band = forecast.series(policy.quantile_column)
    n = len(forecast)
    if n == 0:
        return EndpointPlan(endpoint, now, ())
    step = forecast.step_s
    need = [workers_for_rate(v, capacity) for v in band]
    lead_steps = max(0, math.ceil(capacity.cold_start_s / step))
    # Need within the lead window: what must be warm (or warming) at step i.
    ahead = [max(need[i:i + lead_steps + 1]) for i in range(n)]
    hourly = [v * 60.0 for v in forecast.mean]
    recent_need = workers_for_rate(observed.requests_per_minute_recent, capacity) if observed else 0

    targets: list[int] = []
    reasons: list[dict] = []
    held = 0
    held_until = -1
    delay_steps = max(0, math.ceil(policy.scale_in_delay_s / step))
    for i in range(n):
        t = forecast.at(i)
        target = ahead[i]
        why = "forecast"
        if target == 0 and speculative_pays(hourly[i], policy):
            target, why = 1, "speculative"
        if policy.floor > target:
            target, why = policy.floor, "floor"
        if capacity.min_workers > target:
            target, why = capacity.min_workers, "min_workers"
        if hold is not None and t < hold.until and hold.workers > target:
            target, why = hold.workers, "hold"
        if i == 0 and recent_need > target:
            # Never scale in on a forecast alone when actual traffic is higher right now.
            target, why = recent_need, "recent_traffic"
        # Hysteresis: keep the last higher target for scale_in_delay after the need drops.
        if target >= held:
            held, held_until = target, i + delay_steps
        elif i < held_until:
            target, why = held, "scale_in_delay"
        else:
            held, held_until = target, i + delay_steps
        capped = min(target, capacity.max_workers)
        if capped < target:
            why = f"{why}, capped at max_workers"
        targets.append(capped)
        reasons.append({
            "why": why,
            "forecast_rpm": round(float(band[i]), 4),
            "quantile": policy.quantile_column,
            "model": forecast.model,
            "need_at": (t + timedelta(seconds=capacity.cold_start_s)).isoformat(),
            "lead_s": capacity.cold_start_s,
            "peak_need_in_lead": ahead[i],
            "floor": max(policy.floor, capacity.min_workers),
            "cap": capacity.max_workers,
        })

    commands: list[Command] = []
    for i, target in enumerate(targets):
        if i == 0 or target != targets[i - 1]:
            at = now if i == 0 else forecast.at(i)
            commands.append(Command(at=max(at, now), warm_workers=target,
                                    idle_timeout_s=policy.idle_timeout_s, reason=reasons[i]))
    return EndpointPlan(endpoint, now, tuple(commands))
