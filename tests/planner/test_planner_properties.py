"""Property tests of the pure planner: caps, floors, lead, monotonicity, never before now."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from prewarm.planner.core import plan_endpoint
from prewarm.planner.model import CapacityModel, DemandForecast, Hold, Observed, PolicySettings, StaticSetting
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
_drawn = st.builds(
    PolicySettings,
    floor=st.integers(0, 4),
    scale_in_delay_s=st.sampled_from([0.0, 60.0, 600.0]),
    speculative=st.booleans(),
    cold_start_value_s=st.one_of(st.none(), st.floats(10, 1e5)),
    blocking=st.one_of(st.none(), st.floats(0.001, 0.5)),
)
# The policies the properties must hold for: drawn knobs, the library's PolicySettings()
# defaults, and the shipped [planner] defaults as the daemon maps them for the capacity
# (prewarm.policy.policy_from_settings: forecast idle-timeout rule, burst share, observed
# burstiness, a derived cold-start value), for full and count-only providers.
policies = st.one_of(_drawn, st.just("library"), st.just("shipped"), st.just("shipped-count-only"))


def resolve(pol, cap: CapacityModel) -> PolicySettings:
    from prewarm.config import PlannerSettings
    from prewarm.policy import for_provider, policy_from_settings

    if pol == "library":
        return PolicySettings()
    if pol in ("shipped", "shipped-count-only"):
        shipped = policy_from_settings(PlannerSettings(), cap)
        return for_provider(shipped, idle_timeout=False) if pol == "shipped-count-only" else shipped
    return pol


statics = st.one_of(st.none(), st.builds(StaticSetting, floor=st.integers(0, 5),
                                         keepalive_s=st.one_of(st.none(), st.sampled_from([120.0, 3600.0]))))


def forecast(mean, extra=None, start=NOW, step=60):
    extra = extra or [0.0] * len(mean)
    hi80 = [m + e for m, e in zip(mean, extra)]
    hi95 = [h + e for h, e in zip(hi80, extra)]
    return DemandForecast(start=start, step_s=step, mean=mean, bands={"hi-80": hi80, "hi-95": hi95})


def run_plan(mean, cap, pol, **kw):
    return plan_endpoint("e", forecast(mean), cap, pol, NOW, **kw)


@settings(max_examples=150, deadline=None)
@given(rates, capacities, policies, statics)
def test_never_above_max_never_below_floor_never_before_now(mean, cap, pol, static):
    pol = resolve(pol, cap)
    plan = run_plan(mean, cap, pol, static=static)
    assert plan.commands, "a non-empty forecast gives at least the command for now"
    assert plan.commands[0].at == NOW
    static_floor = static.floor if static is not None else 0
    for c in plan.commands:
        assert c.at >= NOW
        assert c.warm_workers <= cap.max_workers
        assert c.warm_workers >= min(cap.max_workers, max(pol.floor, cap.min_workers, static_floor))
        if static is not None and static.keepalive_s is not None:
            assert c.idle_timeout_s is not None and c.idle_timeout_s >= static.keepalive_s
        assert c.reason["why"]
    times = [c.at for c in plan.commands]
    assert times == sorted(times) and len(set(times)) == len(times)


@settings(max_examples=150, deadline=None)
@given(rates, capacities, policies, st.sampled_from([-90.0, 0.0, 30.0, 600.0, 3600.0, 86400.0]),
       st.sampled_from(["fixed", "forecast"]), st.sampled_from([60, 300]))
def test_a_forecast_may_start_before_or_after_now(mean, cap, pol, offset_s, rule, step):
    """A replay or a cached forecast can start before now; a forecast of a later window after
    it (the target before its first step comes from the floor, never from its steps)."""
    pol = PolicySettings(**{**resolve(pol, cap).__dict__, "idle_timeout_rule": rule})
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
    pol = resolve(pol, cap)
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
    pol = resolve(pol, cap)
    plan = run_plan(mean, cap, pol)
    from prewarm.planner.core import smoothed, step_needs
    # The demand the planner sizes: the policy's band, smoothed as it says (the shipped
    # defaults smooth over +- 1 h).
    band = forecast(mean).series(pol.quantile_column)
    needs, _ = step_needs(smoothed(band, int(round(pol.smoothing_s / 60))), 60, cap, pol)
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 500, allow_nan=False), st.just(0.0)), min_size=1, max_size=60),
       st.floats(0.5, 120), st.integers(1, 16), st.lists(st.floats(1, 1e6), min_size=1, max_size=3),
       st.one_of(st.just(1.0), st.floats(1.0, 20.0)))
def test_the_sizing_array_and_the_scalar_search_agree_point_for_point(rates, service, concurrency, values, z):
    """planner.sizing: the array path (the daemon's long forecasts) and the scalar search (a
    replay's short ones) give the same workers for every rate and value. At peakedness 1
    exactly; above it the array's exp/log may differ from math's in the last bit, which moves
    a decision only within that bit of break-even (checked: never by more than one worker)."""
    import numpy as np

    from prewarm.planner.sizing import fewest_workers_for_values, fewest_workers_for_values_array

    arrays = fewest_workers_for_values_array(np.asarray(rates), service, concurrency, tuple(values), 10_000, z)
    for i, rate in enumerate(rates):
        scalar = fewest_workers_for_values(rate, service, concurrency, tuple(values), 10_000, z)
        got = tuple(int(a[i]) for a in arrays)
        if z == 1.0:
            assert got == scalar, (rate, values)
        else:
            assert all(abs(g - w) <= 1 for g, w in zip(got, scalar)), (rate, values, z)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 300, allow_nan=False), min_size=49, max_size=49), capacities, policies)
def test_step_needs_short_and_long_paths_agree(rates, cap, pol):
    """step_needs sizes up to SHORT_FORECAST_STEPS steps by the memoized scalar search and
    longer forecasts by the array path: the same needs and reasons, step for step."""
    from prewarm.planner.core import SHORT_FORECAST_STEPS, step_needs

    pol = resolve(pol, cap)
    assert len(rates) == SHORT_FORECAST_STEPS + 1
    long_needs, long_whys = step_needs(rates, 60, cap, pol)
    short = [step_needs(rates[i:i + 1], 60, cap, pol) for i in range(len(rates))]
    assert long_needs == [n[0][0] for n in short] and long_whys == [n[1][0] for n in short]
