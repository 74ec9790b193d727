"""Worked examples of the planner's rules: lead, break-even, hysteresis memory, budget, tuner."""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from prewarm.planner.core import plan_endpoint
from prewarm.planner.model import CapacityModel, DemandForecast, Observed, PolicySettings
from prewarm.planner.sizing import erlang_b, hold_pays, p_any_arrival, workers_for_rate, workers_for_value
from prewarm.planner.tuning import ObservedStats, tune

NOW = datetime(2024, 11, 24, tzinfo=timezone.utc)


def fc(values, step=60):
    return DemandForecast(start=NOW, step_s=step, mean=values)


def test_peak_commanded_a_cold_start_ahead_with_reason():
    cap = CapacityModel(service_time_s=20, cold_start_s=90)
    plan = plan_endpoint("e", fc([0] * 10 + [5] * 5 + [0] * 20), cap, PolicySettings(quantile_column="mean", speculative=False), NOW)
    rise = next(c for c in plan.commands if c.warm_workers > 0)
    assert rise.at == NOW + timedelta(minutes=10) - timedelta(seconds=90)
    assert rise.reason["lead_s"] == 90 and rise.reason["why"] == "forecast"
    # Erlang loss at 2%: 5/min x 20 s = 1.67 busy slots needs 6 workers (B(5) = 2.6%), not 2.
    assert rise.warm_workers == workers_for_rate(5, cap, 0.02) == 6


def test_erlang_and_poisson_arithmetic():
    assert erlang_b(1, 1.0) == 0.5
    assert math.isclose(erlang_b(2, 1.0), 0.2)
    assert math.isclose(p_any_arrival(1.0, 60), 1 - math.exp(-1))
    assert hold_pays(1.0, 60, 100) and not hold_pays(0.01, 60, 100)


def test_break_even_drops_the_speculative_worker_in_a_quiet_lull():
    cap = CapacityModel(service_time_s=20, cold_start_s=30)
    # 6 requests an hour: a worker is worth it only if a cold start is worth > 600 worker-seconds.
    assert workers_for_value(0.1, cap, 1200) == 1
    assert workers_for_value(0.1, cap, 300) == 0
    pol = PolicySettings(quantile_column="mean", cold_start_value_s=300)
    plan = plan_endpoint("e", fc([0.1] * 30), cap, pol, NOW)
    assert [c.warm_workers for c in plan.commands] == [0]
    assert plan.commands[0].reason["why"] == "below break-even"


def test_hysteresis_remembers_needs_from_earlier_cycles():
    cap = CapacityModel(service_time_s=20, cold_start_s=0)
    pol = PolicySettings(quantile_column="mean", speculative=False, scale_in_delay_s=600)
    history = ((NOW - timedelta(minutes=2), 4),)
    plan = plan_endpoint("e", fc([0] * 20), cap, pol, NOW, observed=Observed(need_history=history))
    assert plan.target_at(NOW) == 4
    assert plan.target_at(NOW + timedelta(minutes=8, seconds=1)) == 0


def test_budget_caps_the_peak_but_not_the_floor():
    cap = CapacityModel(service_time_s=60, cold_start_s=0, max_workers=50)
    pol = PolicySettings(quantile_column="mean", floor=1, budget_worker_hours_per_day=48, scale_in_delay_s=0)
    plan = plan_endpoint("e", fc([60.0] * 60), cap, pol, NOW)  # needs far more than 2 workers
    assert max(c.warm_workers for c in plan.commands) == 2  # 48 worker-hours/day = 2 workers
    assert "budget" in plan.commands[0].reason["why"]


def test_tuner_raises_the_value_above_target_and_keeps_it_below():
    cap = CapacityModel(service_time_s=20, cold_start_s=30)
    pol = PolicySettings(cold_start_value_s=1000, target_cold_rate=0.02)
    up = tune(pol, ObservedStats(requests=1000, cold_requests=60), cap)
    assert up.cold_start_value_s > 1000
    same = tune(pol, ObservedStats(requests=1000, cold_requests=15), cap)
    assert same.cold_start_value_s == 1000  # below the ceiling but not far below: stay
    down = tune(pol, ObservedStats(requests=5000, cold_requests=0), cap)
    assert down.cold_start_value_s < 1000
    noise = tune(pol, ObservedStats(requests=20, cold_requests=1), cap)
    assert noise.cold_start_value_s == 1000  # 1 in 20 is not evidence
    base = tune(PolicySettings(floor_rule="baseline"), ObservedStats(100, 0, baseline_rpm=30), cap)
    assert base.floor == workers_for_rate(30, cap)


def test_forecast_idle_timeout_long_in_sparse_busy_hours_short_in_lulls():
    cap = CapacityModel(service_time_s=30, cold_start_s=40)
    pol = PolicySettings(quantile_column="mean", cold_start_value_s=6000, idle_timeout_rule="forecast",
                         idle_timeout_s=60, scale_in_delay_s=0)
    plan = plan_endpoint("e", fc([0.5] * 10 + [0.0] * 20), cap, pol, NOW)
    assert plan.commands[0].idle_timeout_s == 6000 and plan.commands[0].reason["idle_timeout_rule"] == "forecast"
    late = plan.commands[-1]
    assert late.warm_workers == 0 and late.idle_timeout_s == 60
    assert late.at == NOW + timedelta(minutes=10)  # the lull starts: burst workers go at once
    # The busy timeout is capped, and is not used where traffic is dense (Erlang sizes it).
    capped = replace(pol, cold_start_value_s=1e6, idle_timeout_max_s=3600)
    assert plan_endpoint("e", fc([0.5] * 5), cap, capped, NOW).commands[0].idle_timeout_s == 3600
    dense = plan_endpoint("e", fc([300.0] * 5), cap, pol, NOW)
    assert dense.commands[0].idle_timeout_s == 60
    fixed = plan_endpoint("e", fc([0.5] * 5), cap, replace(pol, idle_timeout_rule="fixed"), NOW)
    assert {c.idle_timeout_s for c in fixed.commands} == {60}


def test_burst_value_share_holds_fewer_workers_beyond_the_first():
    cap = CapacityModel(service_time_s=40, cold_start_s=40)
    full = PolicySettings(quantile_column="mean", cold_start_value_s=12000, scale_in_delay_s=0)
    share = replace(full, burst_value_share=0.3)
    assert plan_endpoint("e", fc([0.7] * 5), cap, full, NOW).commands[0].warm_workers == workers_for_value(0.7, cap, 12000) == 4
    assert plan_endpoint("e", fc([0.7] * 5), cap, share, NOW).commands[0].warm_workers == workers_for_value(0.7, cap, 3600) == 3
    assert plan_endpoint("e", fc([0.01] * 5), cap, share, NOW).commands[0].warm_workers == 1  # the first keeps its full value
