"""[planner] settings -> the planner's PolicySettings. One mapping, used by the daemon's
cycle and by the backtester's `predictive` policy, so the policy measured in a backtest is
the policy the daemon runs with the same settings."""
from __future__ import annotations

from dataclasses import replace

from .config import PlannerSettings
from .planner.model import CapacityModel, PolicySettings
from .planner.tuning import initial_value_s


def policy_from_settings(p: PlannerSettings, capacity: CapacityModel) -> PolicySettings:
    value = p.cold_start_value_s
    if value is None:
        # What an avoided cold start is worth, before the tuner has evidence: generous at a
        # low target (planner.tuning.initial_value_s).
        value = initial_value_s(capacity, p.target_cold_rate, p.initial_value_factor)
    return PolicySettings(
        quantile_column=p.quantile, speculative=p.speculative,
        speculative_min_requests_per_hour=p.speculative_min_requests_per_hour, floor=p.floor,
        scale_in_delay_s=p.scale_in_delay_s, idle_timeout_s=p.idle_timeout_s,
        budget_worker_hours_per_day=p.budget_worker_hours_per_day, blocking=p.blocking,
        cold_start_value_s=value, smoothing_s=p.smoothing_s, recent_window_s=p.recent_window_s,
        floor_rule=p.floor_rule, baseline_percentile=p.baseline_percentile, target_cold_rate=p.target_cold_rate,
        idle_timeout_rule=p.idle_timeout_rule, idle_timeout_busy_s=p.idle_timeout_busy_s,
        idle_timeout_max_s=p.idle_timeout_max_s, burst_value_share=p.burst_value_share,
        burstiness=p.burstiness, initial_value_factor=p.initial_value_factor,
        give_back_span_s=p.give_back_span_s)


def for_provider(policy: PolicySettings, idle_timeout: bool, idle_timeout_max_s: float | None = None) -> PolicySettings:
    """The policy a provider can carry out (its Capabilities: `idle_timeout`, and a cap on it).
    Count-only (no idle timeout): the forecast rule's busy-hours keep-alive would not happen,
    so workers beyond the first are credited the full value of the cold starts they avoid
    (burst_value_share 1: nothing else keeps a burst's workers) and the rule is "fixed" (the
    plan asks for no timeout). A capped one: the busy-hours keep-alive at most the cap."""
    if not idle_timeout:
        return replace(policy, idle_timeout_rule="fixed", idle_timeout_s=None, idle_timeout_busy_s=None,
                       burst_value_share=1.0)
    if idle_timeout_max_s is not None and idle_timeout_max_s < policy.idle_timeout_max_s:
        return replace(policy, idle_timeout_max_s=idle_timeout_max_s)
    return policy
