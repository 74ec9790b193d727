"""Property tests of the pure planner: caps, floors, lead, monotonicity, never before now."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from prewarm.planner.core import plan_endpoint
from prewarm.planner.model import CapacityModel, DemandForecast, Hold, Observed, PolicySettings
from prewarm.planner.sizing import workers_for_rate, workers_for_value

NOW = datetime(2024, 11, 24, 12, 0, tzinfo=timezone.utc)

rates = st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=40)
capacities = st.builds(
    CapacityModel,
    concurrency=st.integers(1, 8),
    service_time_s=st.floats(0.5, 120),
    cold_start_s=st.floats(0, 600),
    min_workers=st.integers(0, 3),
    max_workers=st.integers(3, 40),
)
policies = st.builds(
    PolicySettings,
    floor=st.integers(0, 4),
    scale_in_delay_s=st.sampled_from([0.0, 60.0, 600.0]),
    speculative=st.booleans(),
    cold_start_value_s=st.one_of(st.none(), st.floats(10, 1e5)),
    blocking=st.one_of(st.none(), st.floats(0.001, 0.5)),
)


def forecast(mean, extra=None, start=NOW, step=60):
    extra = extra or [0.0] * len(mean)
    hi80 = [m + e for m, e in zip(mean, extra)]
    hi95 = [h + e for h, e in zip(hi80, extra)]
    return DemandForecast(start=start, step_s=step, mean=mean, bands={"hi-80": hi80, "hi-95": hi95})


def run_plan(mean, cap, pol, **kw):
    return plan_endpoint("e", forecast(mean), cap, pol, NOW, **kw)


@settings(max_examples=150, deadline=None)
@given(rates, capacities, policies)
def test_never_above_max_never_below_floor_never_before_now(mean, cap, pol):
    plan = run_plan(mean, cap, pol)
    assert plan.commands, "a non-empty forecast gives at least the command for now"
    assert plan.commands[0].at == NOW
    for c in plan.commands:
        assert c.at >= NOW
        assert c.warm_workers <= cap.max_workers
        assert c.warm_workers >= min(cap.max_workers, max(pol.floor, cap.min_workers))
        assert c.reason["why"]
    times = [c.at for c in plan.commands]
    assert times == sorted(times) and len(set(times)) == len(times)


@settings(max_examples=150, deadline=None)
@given(rates, capacities, policies, st.sampled_from([-90.0, 0.0, 30.0, 600.0, 3600.0, 86400.0]),
       st.sampled_from(["fixed", "forecast"]), st.sampled_from([60, 300]))
def test_a_forecast_may_start_before_or_after_now(mean, cap, pol, offset_s, rule, step):
    """A replay or a cached forecast can start before now; a forecast of a later window after
    it (the target before its first step comes from the floor, never from its steps)."""
    pol = PolicySettings(**{**pol.__dict__, "idle_timeout_rule": rule})
    start = NOW + timedelta(seconds=offset_s)
    plan = plan_endpoint("e", forecast(mean, start=start, step=step), cap, pol, NOW)
    if start + timedelta(seconds=len(mean) * step) <= NOW:
        assert plan.commands == (), "a forecast that ended before now plans nothing"
        return
    assert plan.commands and plan.commands[0].at == NOW
    floor = min(cap.max_workers, max(pol.floor, cap.min_workers))
    for c in plan.commands:
        assert floor <= c.warm_workers <= cap.max_workers
        if c.at + timedelta(seconds=cap.cold_start_s) < start:  # no step of the forecast within its lead
            assert c.warm_workers == floor


@settings(max_examples=150, deadline=None)
@given(rates, st.lists(st.floats(0, 50, allow_nan=False), min_size=40, max_size=40), capacities, policies)
def test_monotone_in_the_quantile(mean, extra, cap, pol):
    fc = forecast(mean, extra[: len(mean)])
    targets = {}
    for q in ("mean", "hi-80", "hi-95"):
        plan = plan_endpoint("e", fc, cap, PolicySettings(**{**pol.__dict__, "quantile_column": q}), NOW)
        targets[q] = [plan.target_at(NOW + timedelta(seconds=s)) for s in range(0, len(mean) * 60, 30)]
    for lo, hi in (("mean", "hi-80"), ("hi-80", "hi-95")):
        assert all(a <= b for a, b in zip(targets[lo], targets[hi])), (lo, hi)


@settings(max_examples=150, deadline=None)
@given(rates, capacities, policies)
def test_lead_respected(mean, cap, pol):
    """Capacity needed at t (from the forecast alone) is commanded by t - cold start."""
    plan = run_plan(mean, cap, pol)
    from prewarm.planner.core import step_needs
    needs, _ = step_needs([float(v) for v in mean], 60, cap, pol)
    for i, need in enumerate(needs):
        t = NOW + timedelta(seconds=i * 60)
        when = max(NOW, t - timedelta(seconds=cap.cold_start_s))
        assert plan.target_at(when) >= min(need, cap.max_workers)


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 300), st.floats(0, 300), capacities, st.floats(10, 1e5))
def test_sizing_monotone_in_rate(r1, r2, cap, value):
    lo, hi = sorted((r1, r2))
    assert workers_for_rate(lo, cap, 0.02) <= workers_for_rate(hi, cap, 0.02)
    assert workers_for_rate(lo, cap) <= workers_for_rate(hi, cap)
    assert workers_for_value(lo, cap, value) <= workers_for_value(hi, cap, value)


@settings(max_examples=100, deadline=None)
@given(rates, capacities, st.floats(0, 400))
def test_no_scale_in_below_recent_traffic(mean, cap, recent):
    pol = PolicySettings(recent_window_s=900)
    plan = run_plan(mean, cap, pol, observed=Observed(requests_per_minute_recent=recent))
    assert plan.commands[0].warm_workers >= min(cap.max_workers, workers_for_rate(recent, cap, pol.blocking))


def test_hold_wins_until_it_expires():
    cap = CapacityModel(max_workers=10)
    plan = run_plan([0.0] * 30, cap, PolicySettings(speculative=False),
                    hold=Hold(workers=4, until=NOW + timedelta(minutes=10)))
    assert plan.target_at(NOW + timedelta(minutes=5)) == 4
    assert plan.target_at(NOW + timedelta(minutes=11)) == 0
    assert plan.commands[0].reason["why"] == "hold"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=120), st.sampled_from([60.0, 300.0]),
       st.sampled_from([-300.0, -90.0, 0.0, 30.0, 600.0, 7200.0]), st.floats(0, 900), st.sampled_from([0.0, 60.0, 600.0]),
       st.one_of(st.none(), st.lists(st.booleans(), min_size=120, max_size=120)),
       st.lists(st.tuples(st.floats(-900, 0), st.integers(0, 8)), max_size=4), st.integers(0, 3),
       st.one_of(st.none(), st.tuples(st.integers(1, 9), st.floats(0, 7200))), st.integers(1, 8))
def test_the_window_loop_and_the_window_arrays_agree(needs, step, t0, lead, delay, sparse, history, floor, hold, cap):
    """Short forecasts take the loop, long ones the array operations: the same targets, the
    same reasons, point for point."""
    from prewarm.planner.core import _WindowArrays, _WindowLoop

    n = len(needs)
    sparse = None if sparse is None else sparse[:n]
    history = sorted(history)
    held = None if hold is None else Hold(hold[0], NOW + timedelta(seconds=hold[1]))
    args = (n, t0, step, lead, delay, t0 + n * step, needs, sparse, history, floor, held,
            None if hold is None else hold[1], cap)
    loop, arrays = _WindowLoop(*args), _WindowArrays(*args)
    assert loop.points == arrays.points
    assert [int(v) for v in loop.values] == [int(v) for v in arrays.values]
    assert [bool(b) for b in loop.busy] == [bool(b) for b in arrays.busy]
    for p in range(len(loop.points)):
        here, at, from_window, *rules = loop.state(p)
        here2, at2, from_window2, *rules2 = arrays.state(p)
        assert (here, from_window, rules) == (here2, from_window2, rules2), p
        if from_window:
            assert at == at2, p
