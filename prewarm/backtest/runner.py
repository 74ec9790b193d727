"""Run one policy over one endpoint's trace, with the static guard on a predictive policy
(the best static setting of the trailing week, advisor.TrailingSweep), and measure what users
would pay. The replay itself is prewarm.backtest.replay; this module only adds the guard on top,
so the static sweeps below it (frontier, advisor) never import it back.
"""
from __future__ import annotations

import math
from dataclasses import replace

from . import advisor
from .executable import FULL
from .frontier import KEEPALIVES_S, Point
from .judgement import ABOVE_TARGET, ALWAYS, COSTLIER, HELD, NO_STATIC, YOUNG, Evidence, Judgement
from .replay import (BacktestConfig, Result, capacity_for, parse_policy, predictive_policy,  # noqa: F401
                     replay, replay_start_s, with_policy)
from .traces import Trace
from ..planner.model import StaticSetting


def run(trace: Trace, spec: str, cfg: BacktestConfig, progress=None) -> Result:
    """One policy over the trace; a predictive one under the static guard unless
    cfg.predictive.guard is "off"."""
    kind, _ = parse_policy(spec)
    guard = static_guard(trace, cfg) if kind == "predictive" and cfg.predictive.guard != "off" else None
    return replay(trace, spec, cfg, progress, guard)


def static_guard(trace: Trace, cfg: BacktestConfig):
    """now, previous -> the Judgement for the next guard period: the static setting the plan
    may not go below (None: the plan alone) and the smoothing it plans with, from the
    endpoint's own trailing week (the history before now only; the search starts at the
    previous setting's floor, or the last one found):

    * the best static setting at the target (advisor.TrailingSweep on the replay's worker model,
      over the keep-alives the provider can set);
    * the smoothing (cfg.predictive.smoothing_choices_s, when given): the plan alone replayed on
      the same week at each, the one that did best there (choose_smoothing);
    * guard "always": that setting, every period;
    * guard "auto": the same week replayed with the plan alone (no guard; at the chosen
      smoothing); the plan runs alone for the next period only if it held there: its cold rate
      not significantly above the target (binomial z <= 1, as the tuner) and no static setting
      with that cold rate cost fewer worker-hours. Otherwise the best static setting guards it;
    * guard "lift": as auto, but the least lift of the plan that held on that week guards it
      (cheapest_lift: a floor and keep-alive at most the best static setting's, under the
      plan), or the best static setting where no smaller lift held. Opt-in: on the report
      parts it fitted last week too tightly (docs/backtesting.md).
    """
    s = cfg.predictive
    keepalives = cfg.provider.keepalives(KEEPALIVES_S, cfg.worker.platform_idle_timeout_s)
    guard_cfg = replace(cfg, provider=FULL)
    alone_cfg = replace(cfg, predictive=replace(s, guard="off"))
    choices = tuple(s.smoothing_choices_s)
    own = predictive_policy(capacity_for(trace, cfg), cfg) if choices else None
    last_floor: list[int] = []

    def guard(now_s: float, previous) -> Judgement:
        sweep = advisor.TrailingSweep(trace, now_s, guard_cfg, ingest_delay_s=cfg.ingest_delay_s,
                                      window_s=s.guard_window, keepalives=keepalives)
        target = cfg.target_cold_rate
        if sweep.span_s < s.season_s:
            return Judgement(None, evidence=Evidence(YOUNG, target, sweep.span_s))
        near = previous.floor if previous is not None else (last_floor[-1] if last_floor else None)
        # Only floors the endpoint can hold (max_workers): a static setting above the cap is
        # none its users could configure, and the planner would pin the plan at the cap.
        best = sweep.cheapest(target, near, max_floor=min(64, cfg.max_workers))
        if best is None:
            return Judgement(None, evidence=Evidence(NO_STATIC, target, sweep.span_s))
        last_floor.append(best.floor)

        def evidence(verdict: str, alone: Result | None) -> Evidence:
            if alone is None:
                return Evidence(verdict, target, sweep.span_s, sweep.setting(best))
            static = sweep.cheapest(alone.cold_rate)
            return Evidence(verdict, target, sweep.span_s, sweep.setting(best), alone.requests, alone.cold_requests,
                            alone.worker_hours, static.worker_hours if static is not None else None)

        past = trace.between(-math.inf, sweep.end)
        week = replace(alone_cfg, start_s=sweep.start, end_s=sweep.end)
        smoothing, alone = None, None
        if choices:
            tried = {v: run(past, "predictive", replace(week, policy=replace(own, smoothing_s=v))) for v in choices}
            smoothing = choose_smoothing(tried, sweep, cfg.target_cold_rate, own.smoothing_s)
            alone, week = tried[smoothing], replace(week, policy=replace(own, smoothing_s=smoothing))
        if s.guard in ("auto", "lift"):
            alone = alone or run(past, "predictive", week)
            verdict = plan_verdict(alone, sweep, target)
            if verdict == HELD:
                return Judgement(None, smoothing, evidence(verdict, alone))
            if s.guard == "lift":
                return Judgement(cheapest_lift(past, week, sweep, best, target), smoothing, evidence(verdict, alone))
            return Judgement(sweep.setting(best), smoothing, evidence(verdict, alone))
        return Judgement(sweep.setting(best), smoothing, evidence(ALWAYS, alone))
    return guard


def choose_smoothing(tried: dict[float, Result], sweep, target: float, own: float) -> float:
    """The smoothing whose plan-alone replay of the trailing week did best: among those that
    held (plan_held; all of them when none did), the fewest worker-hours against the cheapest
    static setting with at most its cold rate (0 where none has: better than any static
    setting), ties to the policy's own smoothing, then to the first."""
    def ratio(r: Result) -> float:
        static = sweep.cheapest(r.cold_rate)
        return r.worker_hours / static.worker_hours if static is not None and static.worker_hours > 0 else 0.0

    held = {v: r for v, r in tried.items() if plan_held(r, sweep, target)}
    pool = held or tried
    return min(pool, key=lambda v: (ratio(pool[v]), v != own))


def cheapest_lift(past: Trace, week: BacktestConfig, sweep, best, target: float) -> StaticSetting:
    """The least the plan must be lifted by to have held on the trailing week, or the best
    static setting (F*, K*) itself. The plan is replayed with static settings under it, (F, K)
    at most (F*, K*): the smallest F whose cold rate met the target at K* (bisection: cold
    starts fall with the floor), then at that F the shortest K that met it (bisection over the
    keep-alives the provider can set, up to K*). That lift is taken if it held as the plan alone
    must (plan_held: at most the target, and no static setting with its cold rate cheaper);
    else the best static setting guards the plan, as before. Each try is one replay of the
    week; a floor of F* at K* is not replayed (the static setting alone met the target)."""
    tried: dict[tuple[int, int], Result] = {}
    ks = [k for k in sweep.keepalives if k <= best.keepalive_s] or [best.keepalive_s]
    top = len(ks) - 1

    def lifted(floor: int, k: int) -> Result:
        if (floor, k) not in tried:
            setting = sweep.setting(Point(floor, ks[k], 0.0, 0.0))
            tried[floor, k] = replay(past, "predictive", week, None, lambda _now, _prev, st=setting: Judgement(st))
        return tried[floor, k]

    def met(floor: int, k: int) -> bool:
        return (floor, k) == (best.floor, top) or lifted(floor, k).cold_rate <= target

    lo, hi = 0, best.floor
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if met(mid, top) else (mid + 1, hi)
    floor, klo, khi = hi, 0, top
    while klo < khi:
        mid = (klo + khi) // 2
        klo, khi = (klo, mid) if met(floor, mid) else (mid + 1, khi)
    if (floor, khi) != (best.floor, top):
        r = lifted(floor, khi)
        if plan_held(r, sweep, target) and r.cold_rate <= target:
            return sweep.setting(Point(floor, ks[khi], r.cold_rate, r.worker_hours))
    return sweep.setting(best)


def plan_verdict(alone: Result, sweep, target: float) -> str:
    """How the plan alone did on the trailing week: HELD (cold rate not significantly above the
    target, binomial z <= 1, and at least as cheap as the static settings with that cold rate),
    else ABOVE_TARGET or COSTLIER (the first test that failed)."""
    if alone.requests == 0:
        return HELD
    z = (alone.cold_rate - target) / math.sqrt(target * (1 - target) / alone.requests)
    if z > 1.0:
        return ABOVE_TARGET
    static = sweep.cheapest(alone.cold_rate)
    return HELD if static is None or alone.worker_hours <= static.worker_hours else COSTLIER


def plan_held(alone: Result, sweep, target: float) -> bool:
    """Did the plan alone hold on the trailing week (plan_verdict)?"""
    return plan_verdict(alone, sweep, target) == HELD
