"""Forecast -> plan: planning a batch of endpoints from their forecasts with the pure planner
(planner.core), its inputs read in a few queries and its plans written in one transaction."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from .autotune import tuned_policy
from .config import EndpointSettings
from .endpoint_policy import capacity_model, policy_settings
from .history import read_history
from .outcomes import EndpointOutcome
from .planner.core import plan_endpoint
from .planner.model import Hold, Observed
from .runtime import Runtime
from .snapshots import save_snapshots
from .static_guard import stored_smoothing, stored_static

log = logging.getLogger("prewarm.cycle")
RECENT_WINDOW = timedelta(minutes=5)
PLAN_BATCH = 500  # endpoints whose planning reads share queries and whose plans share a transaction
COLD_RATE_WINDOW = timedelta(hours=1)


@dataclass
class PlanInputs:
    """What planning a batch reads from the store, a few queries for the whole batch."""
    activity: dict  # name -> count summary over COLD_RATE_WINDOW + recent_max
    holds: dict
    needs: dict
    tuned: dict
    ready: dict
    recent: dict  # endpoints with their own history source: name -> recent rows
    guards: dict  # name -> the stored static-guard judgement (prewarm.static_guard)


def read_inputs(rt: Runtime, eps: list[EndpointSettings], now: datetime, cutoff: datetime) -> PlanInputs:
    names = [ep.name for ep in eps]
    stored = [ep.name for ep in eps if ep.history is None]
    delay = max(rt.settings.planner_for(ep).scale_in_delay_s for ep in eps)
    store = rt.store
    return PlanInputs(
        activity=store.activity(stored, cutoff - COLD_RATE_WINDOW, cutoff - RECENT_WINDOW, cutoff) if stored else {},
        holds=store.active_holds(names, now),
        needs=store.needs(names, now - timedelta(seconds=delay), now),
        tuned=store.tuned_policies([ep.name for ep in eps if rt.settings.planner_for(ep).auto_tune]),
        ready=store.ready_durations_of([ep.name for ep in eps if ep.capacity.cold_start_learn]),
        recent={ep.name: read_history(rt, ep, cutoff - RECENT_WINDOW, cutoff) for ep in eps if ep.history is not None},
        guards=store.static_guards([ep.name for ep in eps if rt.settings.planner_for(ep).static_guard != "off"]))


def plan_batch(rt: Runtime, eps: list[EndpointSettings], forecasts: dict, now: datetime, cutoff: datetime,
               horizon: float, save: bool) -> dict[str, EndpointOutcome]:
    """Plan a batch from its forecasts: inputs read in a few queries, plans written in one
    transaction (an unchanged plan is confirmed, not rewritten), snapshots in another."""
    try:
        inputs = read_inputs(rt, eps, now, cutoff)
    except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plans
        for ep in eps:
            rt._error("plan", ep.name)
        log.error("reading what %d endpoints need for planning failed, keeping the last plans: %s", len(eps), exc)
        return {ep.name: EndpointOutcome(ep.name, error=str(exc), stage="plan") for ep in eps}
    outcomes: dict[str, EndpointOutcome] = {}
    writes, demands = [], {}
    for ep in eps:
        fc = forecasts[ep.name]
        demand = window(fc.demand, now, horizon)
        try:
            plan = plan_one(rt, ep, demand, inputs, now, cutoff, save)
        except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plan
            rt._error("plan", ep.name)
            log.error("planning %s failed, keeping the last plan: %s", ep.name, exc)
            outcomes[ep.name] = EndpointOutcome(ep.name, error=str(exc), stage="plan")
            continue
        outcomes[ep.name] = EndpointOutcome(ep.name, plan=plan, model=fc.model)
        demands[ep.name] = (fc, demand)
        extra = {"events": list(fc.events)} if fc.events else {}
        judged = (inputs.guards.get(ep.name) or {}).get("judged_at")
        writes.append({"endpoint": ep.name, "horizon_end": now + timedelta(seconds=horizon), "model": fc.model,
                       "need_now": plan.need_now,
                       "commands": [{"at": c.at, "warm_workers": c.warm_workers, "idle_timeout_s": c.idle_timeout_s,
                                     "reason": {**dict(c.reason), **extra,
                                                **({"static_judged_at": judged.isoformat()}
                                                   if judged is not None and "static_floor" in c.reason else {})}}
                                    for c in plan.commands]})
        if rt.metrics is not None and len(demand):
            rt.metrics.forecast.labels(ep.name, "mean").set(demand.mean[0])
            for band, values in demand.bands.items():
                rt.metrics.forecast.labels(ep.name, band).set(values[0])
    if save and writes:
        try:
            # Rewritten at least once per snapshot interval: explain finds a plan and a
            # forecast snapshot of about the same time.
            rt.store.save_plans(writes, now, rewrite_after=timedelta(seconds=rt.settings.daemon.forecast_snapshot_interval_s))
        except Exception as exc:  # noqa: BLE001 - fail warm: the last plans stay current
            for w in writes:
                rt._error("plan", w["endpoint"])
                outcomes[w["endpoint"]] = EndpointOutcome(w["endpoint"], error=str(exc), stage="plan")
            log.error("saving %d plans failed, keeping the last plans: %s", len(writes), exc)
            return outcomes
        save_snapshots(rt, [ep for ep in eps if ep.name in demands], demands, now)
    return outcomes


def plan_one(rt: Runtime, ep: EndpointSettings, demand, inputs: PlanInputs, now: datetime, cutoff: datetime,
             save: bool):
    hold_row = inputs.holds.get(ep.name)
    hold = Hold(*hold_row) if hold_row else None
    capacity = capacity_model(ep, inputs.ready.get(ep.name) if ep.capacity.cold_start_learn else None)
    policy = tuned_policy(rt, ep, policy_settings(rt.settings, ep, capacity), capacity, inputs.tuned.get(ep.name),
                          cutoff, ("mean", *demand.bands), persist=save)
    policy = provider_policy(rt, ep, policy)
    seen = observed(inputs, ep)
    if rt.metrics is not None:
        rt.metrics.observed_requests.labels(ep.name).set(seen.requests_per_minute_recent)
        if seen.cold_start_rate is not None:
            rt.metrics.cold_rate.labels(ep.name).set(seen.cold_start_rate)
    since = now - timedelta(seconds=policy.scale_in_delay_s)
    needs = tuple((at, n) for at, n in inputs.needs.get(ep.name, ()) if at >= since)
    seen = dataclasses.replace(seen, need_history=needs, arrival_dispersion=rt.dispersion.get(ep.name))
    static, smoothing = None, None
    planner = rt.settings.planner_for(ep)
    if planner.static_guard != "off":
        row = inputs.guards.get(ep.name)
        static, smoothing = stored_static(row), stored_smoothing(row, planner.smoothing_choices)
        if rt.metrics is not None and row is not None:
            rt.metrics.static_guarded.labels(ep.name).set(1 if static is not None else 0)
            rt.metrics.static_floor.labels(ep.name).set(static.floor if static is not None else 0)
    if smoothing is not None and smoothing != policy.smoothing_s:  # the judgement's choice on last week
        policy = dataclasses.replace(policy, smoothing_s=smoothing)
    return plan_endpoint(ep.name, demand, capacity, policy, now, seen, hold, static=static)


def provider_policy(rt: Runtime, ep: EndpointSettings, policy):
    """The policy the endpoint's provider can carry out (prewarm.policy.for_provider, as the
    backtester replays it): count-only providers get the count-only policy, a cap on the idle
    timeout caps the busy-hours keep-alive. A provider that cannot be made here (e.g. no
    credentials for `prewarm plan`) leaves the policy as configured."""
    from .policy import for_provider
    try:
        caps = rt.provider(ep).capabilities()
    except Exception as exc:  # noqa: BLE001 - planning goes on with the configured policy
        log.debug("%s: provider capabilities unavailable (%s); planning with the configured policy", ep.name, exc)
        return policy
    return for_provider(policy, bool(caps.idle_timeout), caps.idle_timeout_max_s)


def observed(inputs: PlanInputs, ep: EndpointSettings) -> Observed:
    """Recent actual traffic (the largest count of the last RECENT_WINDOW) and the observed
    cold-start rate over COLD_RATE_WINDOW (from ingested counts; none for external history)."""
    if ep.history is not None:
        recent = max((r[1] for r in inputs.recent.get(ep.name, ())), default=0)
        return Observed(requests_per_minute_recent=float(recent), cold_start_rate=None)
    summary = inputs.activity.get(ep.name)
    rate = None
    if summary and summary["reported"] > 0:
        rate = summary["cold_starts"] / summary["reported"]
    return Observed(requests_per_minute_recent=float(summary["recent_max"]) if summary else 0.0,
                    cold_start_rate=rate)


def window(demand, now: datetime, horizon_s: float):
    """The steps of a (cached) forecast from the one containing now to now + horizon, as
    tuples for the planner (the forecast starts at the ingest cutoff, or earlier if cached)."""
    from .planner.model import DemandForecast
    n, step = len(demand), timedelta(seconds=demand.step_s)
    # skip: the steps that end at or before now; stop: the first step at or after the end.
    # Whole-microsecond timedelta arithmetic, the same instants as demand.at().
    skip = min(n, max(0, (now - demand.start) // step))
    stop = min(n, max(skip, -((demand.start - (now + timedelta(seconds=horizon_s))) // step)))

    def part(values):
        piece = values[skip:stop]
        return tuple(piece.tolist()) if hasattr(piece, "tolist") else tuple(piece)

    return DemandForecast(start=demand.at(skip), step_s=demand.step_s, mean=part(demand.mean),
                          bands={b: part(v) for b, v in demand.bands.items()}, model=demand.model,
                          pinned=part(demand.pinned) if len(demand.pinned) else ())
