"""Auto-tuning: observed cold-start rate against the target in, new PolicySettings out. Pure.

The main knob is the value of an avoided cold start (`cold_start_value_s`): every worker the
planner holds must pay for itself at that value, so raising it buys fewer cold starts with more
worker-hours, along the planner's own cost curve. The tuner moves it multiplicatively toward
the target cold-start rate, and only as far as the evidence allows: with few requests a
measured rate says little, so the step shrinks (a binomial z-score decides the direction).
When the value is pinned at its bounds, the quantile moves one band instead. The floor follows
the baseline load when floor_rule = "baseline".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .model import CapacityModel, PolicySettings
from .sizing import workers_for_rate

QUANTILE_LADDER = ("mean", "hi-50", "hi-80", "hi-95")
MIN_VALUE_S = 10.0
MAX_VALUE_S = 7 * 86400.0
# Giving back (lowering the value when far below the target) needs evidence over
# PolicySettings.give_back_span_s (default a whole daily cycle) at the current setting: a few
# quiet hours say nothing about the busy ones. Busy endpoints have "significant" evidence every
# few hours and would otherwise give back several times a day, down to where the ceiling binds;
# quiet ones rarely have it sooner anyway.


@dataclass(frozen=True)
class ObservedStats:
    """What happened over the tuning window: since the knobs last changed (so the evidence
    reflects the current setting), capped at a day."""

    requests: int
    cold_requests: int
    baseline_rpm: float = 0.0  # a low percentile of the per-minute request rate
    # How long the evidence covers (seconds since the knobs last moved, capped at the window);
    # None: not known. Giving back needs PolicySettings.give_back_span_s of it.
    span_s: float | None = None


def initial_value_s(capacity: CapacityModel, target_cold_rate: float, factor: float = 2.0) -> float:
    """A starting value: the lower the target, the more an avoided cold start is worth:
    factor x (lead + service time) / target worker-seconds ([planner] initial_value_factor).
    At the default 2.0 and a 2% target one cold start is worth 100 x (lead + service time): a first
    guess on the generous side, since the tuner raises it quickly but lowers it only slowly, and
    the target is a ceiling. 2.0 was chosen on the tuning parts of bench/protocol.py
    (bench/tune_defaults.py; docs/backtesting.md), over 1, 3 (the earlier default) and 5."""
    return max(MIN_VALUE_S, factor * (capacity.cold_start_s + capacity.service_time_s) / target_cold_rate)


def tune(policy: PolicySettings, stats: ObservedStats, capacity: CapacityModel,
         available_bands: tuple[str, ...] = QUANTILE_LADDER) -> PolicySettings:
    target = policy.target_cold_rate
    value = policy.cold_start_value_s or initial_value_s(capacity, target, policy.initial_value_factor)
    changes: dict = {}
    if stats.requests > 0:
        rate = stats.cold_requests / stats.requests
        # z-score of the observed rate against the target (binomial); |z| < 1 is noise.
        sd = math.sqrt(target * (1 - target) / stats.requests)
        z = (rate - target) / sd
        if z > 1.0:
            # Above the ceiling: buy fewer cold starts, faster the clearer the evidence.
            value *= max(1.1, min(1.5, rate / target, 1.0 + 0.25 * (z - 1.0)))
        elif rate < 0.25 * target and z < -2.0 and (stats.span_s is None or stats.span_s >= policy.give_back_span_s):
            # The target is a ceiling, not a point to hit: give back only a little, and only
            # when far below it, so the policy stays low where cold starts are cheap to avoid.
            value /= 1.1
    if value > MAX_VALUE_S or value < MIN_VALUE_S:
        # Out of range: the value cannot move further, move the quantile instead.
        step = 1 if value > MAX_VALUE_S else -1
        ladder = [q for q in QUANTILE_LADDER if q in available_bands or q == "mean"]
        here = ladder.index(policy.quantile_column) if policy.quantile_column in ladder else 0
        changes["quantile_column"] = ladder[min(len(ladder) - 1, max(0, here + step))]
        value = min(MAX_VALUE_S, max(MIN_VALUE_S, value))
    changes["cold_start_value_s"] = value
    if policy.floor_rule == "baseline":
        changes["floor"] = min(capacity.max_workers, workers_for_rate(stats.baseline_rpm, capacity))
    return replace(policy, **changes)
