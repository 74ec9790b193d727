"""One cycle: the pipeline sources -> store -> forecast -> plan -> act, for every endpoint.

Each stage is its own module; this one only composes them. `now` is always passed in.
Fail warm: an error at any stage keeps the last forecast and plan, and never lowers capacity.

- prewarm.runtime: what a cycle needs and keeps between cycles (settings, store, providers,
  cached forecasts);
- prewarm.history: request history from the store or an endpoint's own source;
- prewarm.refresh: forecasts refreshed when due (in the cycle or in prewarm.refresh_pool);
- prewarm.dispersion: the burstiness of recent traffic, once an hour per endpoint;
- prewarm.plan_step: planning a batch with the pure planner (prewarm.autotune tunes its knobs,
  prewarm.endpoint_policy maps the settings), writing plans; prewarm.snapshots stores the
  forecasts and prewarm.scoring scores them;
- prewarm.apply: bringing each provider to the target in force now.

Off the planning path: prewarm.static_guard judges last week's best static setting per
endpoint (weekly; the daemon's `guard` job, or `run_once` before it plans) and plan_step
plans no lower than the stored one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Iterable

from . import plan_step, refresh
from .apply import apply_all
from .config import EndpointSettings
from .dispersion import update_dispersions
from .outcomes import ActionOutcome, EndpointOutcome
from .runtime import Runtime
from .static_guard import judge_due

# Public names callers imported from prewarm.cycle before the stages had modules of their own.
from .endpoint_policy import capacity_model, policy_settings  # noqa: F401,E402
from .history import read_history  # noqa: F401,E402
from .refresh import forecast_batches  # noqa: F401,E402
from .snapshots import demand_records  # noqa: F401,E402

log = logging.getLogger("prewarm.cycle")


def plan_cycle(rt: Runtime, now: datetime, names: Iterable[str] | None = None, *,
               save: bool = True, horizon_s: float | None = None) -> dict[str, EndpointOutcome]:
    """Plan the endpoints, refreshing the forecasts that are due; store forecasts, model
    choices and plans unless save=False.

    A forecast is refreshed every `[forecast] refresh_interval` (staggered per endpoint),
    in batches of endpoints sharing [forecast] settings; cycles in between re-plan from the
    forecast kept in the runtime, sliced to now (a new runtime refreshes all at its first
    cycle). A refresh that fails keeps the cached forecast while it still covers the
    horizon (fail warm). Planning reads and writes a batch of endpoints in a few queries.
    With a refresh pool (rt.refresh_pool, [daemon] refresh_processes) the due refreshes run in
    other processes and the cycle plans from the forecasts it holds, waiting only for endpoints
    that hold none usable. save=False or a horizon_s override (the show commands) forecast
    afresh, in the cycle, and keep nothing."""
    outcomes: dict[str, EndpointOutcome] = {}
    groups: dict[Any, list[EndpointSettings]] = {}
    for ep in rt.endpoints(names):
        groups.setdefault(rt.settings.forecast_for(ep), []).append(ep)
    cutoff = now - timedelta(seconds=rt.settings.daemon.ingest_delay_s)
    use_cache = save and horizon_s is None
    pool = rt.refresh_pool if use_cache else None
    background_failed = refresh.take_refreshes(rt, pool.collect()) if pool is not None else {}
    for fsettings, eps in groups.items():
        horizon = fsettings.horizon_s if horizon_s is None else horizon_s
        due = [ep for ep in eps if not use_cache or refresh.refresh_due(rt, ep.name, fsettings, now)]
        names = {ep.name for ep in eps}
        failed = {name: why for name, why in background_failed.items() if name in names}
        waiting: set[str] = set()
        if pool is not None:
            waiting = refresh.refresh_in_background(rt, pool, due, fsettings, now, cutoff, horizon, save, failed)
            due = []
        fresh = refresh.refresh_forecasts(rt, due, fsettings, now, cutoff, horizon, use_cache, save, failed)
        ready = [ep for ep in eps if ep.name not in waiting]
        while True:
            outcomes.update(_plan_endpoints(rt, ready, fresh, fsettings, now, cutoff, horizon, save,
                                            use_cache, failed))
            if not waiting:
                break
            # Plan each job's endpoints as it arrives: at a (re)start of a 10,000-endpoint fleet
            # the refreshes take minutes, and the first plans should not wait for the last.
            # What else finished meanwhile may be another group's: it goes to that group.
            taken = refresh.take_refreshes(rt, pool.collect(waiting, first=True))
            background_failed.update(taken)
            failed.update({name: why for name, why in taken.items() if name in names})
            arrived = waiting - pool.busy()
            waiting -= arrived
            ready = [ep for ep in eps if ep.name in arrived]
        for name, (stage, why) in failed.items():
            out = outcomes.get(name)
            if out is not None and out.error is None:  # planned from the cache, but say the refresh failed
                out.error, out.stage = f"{stage} failed, planned from the last forecast: {why}", stage
    if pool is not None and rt.metrics is not None:
        rt.metrics.refresh_in_flight.set(len(pool.busy()))
    return outcomes


def _plan_endpoints(rt: Runtime, eps: list[EndpointSettings], fresh: dict, fsettings, now: datetime,
                    cutoff: datetime, horizon: float, save: bool, use_cache: bool,
                    failed: dict[str, tuple[str, str]]) -> dict[str, EndpointOutcome]:
    """Plan `eps` from their fresh forecast, else the cached one while it is usable (fail warm);
    an endpoint with neither gets an outcome that says why."""
    outcomes: dict[str, EndpointOutcome] = {}
    forecasts: dict[str, Any] = {}
    for ep in eps:
        cached = rt.forecasts.get(ep.name) if use_cache else None
        if ep.name in fresh:
            forecasts[ep.name] = fresh[ep.name]
        elif refresh.usable(cached, fsettings, now):
            forecasts[ep.name] = cached.forecast
            if ep.name in failed:
                log.warning("%s: planning from the forecast made at %s", ep.name, cached.made_at.isoformat())
        elif ep.name in failed:
            stage, why = failed[ep.name]
            outcomes[ep.name] = EndpointOutcome(ep.name, error=why, stage=stage)
        else:
            log.warning("no history for %s yet; nothing planned", ep.name)
            outcomes[ep.name] = EndpointOutcome(ep.name, error="no history yet", stage="history", no_history=True)
    todo = [ep for ep in eps if ep.name in forecasts]
    update_dispersions(rt, todo, cutoff)
    for i in range(0, len(todo), plan_step.PLAN_BATCH):
        outcomes.update(plan_step.plan_batch(rt, todo[i:i + plan_step.PLAN_BATCH], forecasts, now, cutoff,
                                             horizon, save))
    if rt.metrics is not None and use_cache:
        for ep in todo:
            if outcomes[ep.name].plan is None:
                continue
            cached = rt.forecasts.get(ep.name)
            made_at = cached.made_at if cached is not None else now
            rt.metrics.forecast_age.labels(ep.name).set(max(0.0, (now - made_at).total_seconds()))
    return outcomes


def apply_due(rt: Runtime, now: datetime, names: Iterable[str] | None = None, *,
              retry_deadline_s: float = 30.0, cancel=None, may_act=None) -> list[ActionOutcome]:
    """Bring each provider to the target in force now. Level-triggered, idempotent, fail warm:
    see prewarm/apply.py (cached plan when the database is down, no lowering on a stale plan
    or an unreadable provider, backoff on throttling, holds as a floor)."""
    return apply_all(rt, now, names, retry_deadline_s=retry_deadline_s, cancel=cancel, may_act=may_act)


def run_once(rt: Runtime, now: datetime, names: Iterable[str] | None = None) -> tuple[dict, list]:
    """`prewarm once`: judge the static guards that are due (prewarm.static_guard; the daemon
    does it in a job of its own, off the cycle), plan, then converge."""
    judge_due(rt, now, names)
    outcomes = plan_cycle(rt, now, names)
    actions = apply_due(rt, now, names)
    return outcomes, actions
