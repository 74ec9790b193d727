"""Burstiness-aware sizing: dispersion of per-minute counts, Hayward's loss, the planner's use
of Observed.arrival_dispersion, and the tuner's whole-day evidence for giving back."""
from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from prewarm.planner.burstiness import MAX_PEAKEDNESS, dispersion_index, peakedness
from prewarm.planner.core import plan_endpoint
from prewarm.planner.model import CapacityModel, DemandForecast, Observed, PolicySettings
from prewarm.planner.sizing import Loss, erlang_b, workers_for_rate, workers_for_value
from prewarm.planner.tuning import ObservedStats, tune

NOW = datetime(1995, 7, 21, tzinfo=timezone.utc)
CAP = CapacityModel(concurrency=8, service_time_s=20, cold_start_s=30)


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def test_poisson_counts_on_a_daily_cycle_have_dispersion_one():
    rng = random.Random(1)
    counts = [poisson(rng, 20 + 15 * math.sin(2 * math.pi * m / 1440)) for m in range(1440)]
    assert dispersion_index(counts) == pytest.approx(1.0, abs=0.15)


def test_bursty_counts_have_their_dispersion():
    # A minute is a burst (5x the level) one time in ten: variance about the level is far
    # above the mean (D = (28 + 0.1 x 0.9 x 80^2) / 28, about 22).
    rng = random.Random(2)
    counts = [poisson(rng, 100 if rng.random() < 0.1 else 20) for _ in range(1440)]
    mean = 0.1 * 100 + 0.9 * 20
    expected = (mean + 0.1 * 0.9 * 80 ** 2) / mean  # Poisson part + the mixture's variance
    assert dispersion_index(counts) == pytest.approx(expected, rel=0.2)


def test_dispersion_needs_enough_history():
    assert dispersion_index([5] * 60) is None  # shorter than one +-30 min window
    assert dispersion_index([0] * 200 + [1] * 20) is None  # under 30 requests


def test_peakedness_scales_with_service_time_and_is_capped():
    assert peakedness(None, 20) == 1.0 and peakedness(0.7, 20) == 1.0
    assert peakedness(5.0, 20) == pytest.approx(1 + 4 / 3)  # a third of a minute's arrivals in service
    assert peakedness(5.0, 120) == 5.0  # a slot held beyond the minute: the minute's dispersion
    assert peakedness(1e6, 120) == MAX_PEAKEDNESS


def test_hayward_loss_is_erlang_at_peakedness_one_and_higher_for_peaked_traffic():
    for slots in (1, 5, 24):
        assert Loss(10.0)(slots) == pytest.approx(erlang_b(slots, 10.0))
    # Peaked: the same slots lose more; Hayward's B(S/z, A/z) at whole S/z.
    assert Loss(10.0, 2.0)(24) == pytest.approx(erlang_b(12, 5.0))
    assert Loss(10.0, 2.0)(24) > Loss(10.0)(24)
    # Fractional servers fall between their neighbours.
    assert erlang_b(12, 5.0) > Loss(10.0, 2.0)(25) > erlang_b(13, 5.0)


def test_bursty_arrivals_need_more_workers_for_the_same_loss_or_value():
    # NASA at night: 30 requests a minute, 20 s each, 8 per worker. Poisson: 3 workers hold
    # the loss under 0.1%; at NASA's peakedness (D = 5) the spikes need a fourth.
    assert workers_for_rate(30, CAP, 0.001) == 3
    assert workers_for_rate(30, CAP, 0.001, peakedness=peakedness(5.0, 20)) == 4
    assert workers_for_value(30, CAP, 3000, peakedness=2.3) > workers_for_value(30, CAP, 3000)


def test_planner_sizes_for_the_observed_burstiness_only_when_asked():
    forecast = DemandForecast(start=NOW, step_s=300, mean=[30.0] * 6)
    policy = PolicySettings(quantile_column="mean", blocking=0.001, scale_in_delay_s=0)
    bursty = Observed(arrival_dispersion=5.0)
    poisson_plan = plan_endpoint("nasa", forecast, CAP, policy, NOW, bursty)
    observed_plan = plan_endpoint("nasa", forecast, CAP, replace(policy, burstiness="observed"), NOW, bursty)
    unknown_plan = plan_endpoint("nasa", forecast, CAP, replace(policy, burstiness="observed"), NOW, Observed())
    assert poisson_plan.commands[0].warm_workers == unknown_plan.commands[0].warm_workers == 3
    assert observed_plan.commands[0].warm_workers == 4
    assert observed_plan.commands[0].reason["peakedness"] == pytest.approx(1 + 4 / 3, abs=1e-3)
    with pytest.raises(ValueError, match="burstiness"):
        PolicySettings(burstiness="gamma")
    with pytest.raises(ValueError, match="arrival_dispersion"):
        Observed(arrival_dispersion=-1.0)


def test_tuner_gives_back_only_on_a_whole_day_of_evidence():
    policy = PolicySettings(cold_start_value_s=6000.0)
    far_below = dict(requests=20_000, cold_requests=0)
    assert tune(policy, ObservedStats(**far_below, span_s=3 * 3600), CAP).cold_start_value_s == 6000.0
    assert tune(policy, ObservedStats(**far_below, span_s=86400), CAP).cold_start_value_s == pytest.approx(6000 / 1.1)
    assert tune(policy, ObservedStats(**far_below), CAP).cold_start_value_s == pytest.approx(6000 / 1.1)  # span unknown
    # Above the ceiling it raises at once, whatever the span.
    above = ObservedStats(requests=20_000, cold_requests=1000, span_s=3600)
    assert tune(policy, above, CAP).cold_start_value_s > 6000.0


def test_give_back_span_and_initial_value_factor_are_planner_settings():
    # [planner] give_back_span and initial_value_factor reach the tuner through prewarm.policy.
    from prewarm.config import PlannerSettings
    from prewarm.policy import policy_from_settings

    half_day = policy_from_settings(PlannerSettings(give_back_span="12h", initial_value_factor=5), CAP)
    assert half_day.give_back_span_s == 43200.0
    assert half_day.cold_start_value_s == pytest.approx(5 * (30 + 20) / 0.02)
    default = policy_from_settings(PlannerSettings(), CAP)
    assert default.cold_start_value_s == pytest.approx(PlannerSettings().initial_value_factor * (30 + 20) / 0.02)
    far_below = ObservedStats(requests=20_000, cold_requests=0, span_s=13 * 3600)
    assert tune(half_day, far_below, CAP).cold_start_value_s == pytest.approx(half_day.cold_start_value_s / 1.1)
    assert tune(default, far_below, CAP).cold_start_value_s == default.cold_start_value_s
    # Without a value the tuner starts from the policy's own factor.
    unset = replace(half_day, cold_start_value_s=None)
    assert tune(unset, ObservedStats(requests=0, cold_requests=0), CAP).cold_start_value_s == \
        pytest.approx(5 * (30 + 20) / 0.02)
    for bad in ({"give_back_span_s": -1}, {"initial_value_factor": 0}):
        with pytest.raises(ValueError):
            PlannerSettings(**bad)
        with pytest.raises(ValueError):
            PolicySettings(**bad)
