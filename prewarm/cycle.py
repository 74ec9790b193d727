"""One cycle: read history, forecast, plan, apply what is due, record.

Composes the store, the forecasters, the pure planner and the providers. `now` is always
passed in. Fail warm: an error at any stage keeps the last plan and never lowers capacity.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from .coldstart import lead_seconds
from .config import EndpointSettings, Settings
from .planner.core import plan_endpoint
from .planner.model import CapacityModel, EndpointPlan, Hold, Observed, PolicySettings
from .providers import registry as provider_registry
from .providers.base import EndpointRef, Provider
from .store import Store

log = logging.getLogger("prewarm.cycle")
RECENT_WINDOW = timedelta(minutes=5)
COLD_RATE_WINDOW = timedelta(hours=1)


def capacity_model(ep: EndpointSettings, measured: list[float] | None = None) -> CapacityModel:
    """The endpoint's capacity model; with cold_start_learn, the lead is a percentile of the
    measured times to ready once there are enough of them."""
    from .readiness import learned_lead

    c = ep.capacity
    lead = lead_seconds(c.cold_start_s, c.cold_start_dist, c.cold_start_percentile)
    if c.cold_start_learn and measured:
        lead = learned_lead(measured, c.cold_start_percentile) or lead
    return CapacityModel(concurrency=c.concurrency, service_time_s=c.service_time_s,
                         cold_start_s=lead,
                         min_workers=c.min_workers, max_workers=c.max_workers,
                         price_per_worker_hour=c.price_per_worker_hour)


def policy_settings(settings: Settings, ep: EndpointSettings, capacity: CapacityModel | None = None) -> PolicySettings:
    from .policy import policy_from_settings
    return policy_from_settings(settings.planner_for(ep), capacity or capacity_model(ep))


TUNED_KNOBS = ("quantile_column", "cold_start_value_s", "floor")
TUNING_WINDOW = timedelta(days=1)


def tuned_policy(rt: "Runtime", ep: EndpointSettings, base: PolicySettings, capacity: CapacityModel,
                 rows: list[tuple], now: datetime, bands: tuple[str, ...], persist: bool = True) -> PolicySettings:
    """The cold-start feedback loop: the observed cold-start rate since the knobs last moved
    (at most a day) tunes them toward the target, at most once per tune_interval. Tuned knobs
    are stored, so a restart keeps them; a change of the configured values resets them."""
    from .planner.tuning import ObservedStats, tune

    p = rt.settings.planner_for(ep)
    if not p.auto_tune:
        return base
    configured = {k: getattr(base, k) for k in TUNED_KNOBS}
    stored = rt.store.tuned_policy(ep.name)
    policy, since = base, now - TUNING_WINDOW
    if stored is not None and stored[1].get("configured") == configured:
        updated_at, knobs = stored
        policy = dataclasses.replace(base, **{k: knobs["tuned"][k] for k in TUNED_KNOBS})
        since = max(since, updated_at)
        if (now - updated_at).total_seconds() < p.tune_interval_s:
            return policy
    summary = rt.store.count_summary(ep.name, since, now) if ep.history is None else None
    if not summary or summary["reported"] <= 0:
        return policy  # no observed cold starts to tune on
    stats = ObservedStats(requests=int(summary["reported"]), cold_requests=int(summary["cold_starts"]),
                          baseline_rpm=_baseline_rpm(rows, since, now, base.baseline_percentile))
    new = tune(policy, stats, capacity, bands)
    if not persist:
        return new
    rt.store.save_tuned_policy(ep.name, now, {"configured": configured,
                                              "tuned": {k: getattr(new, k) for k in TUNED_KNOBS},
                                              "observed": {"requests": stats.requests, "cold": stats.cold_requests}})
    if new != policy:
        log.info("%s: tuned %s (observed %d cold of %d requests)", ep.name,
                 {k: getattr(new, k) for k in TUNED_KNOBS}, stats.cold_requests, stats.requests)
    return new


def _baseline_rpm(rows: list[tuple], since: datetime, now: datetime, percentile: float) -> float:
    """A low percentile of requests per minute over [since, now); minutes without a row are 0."""
    import numpy as np

    minutes = max(1, int((now - since).total_seconds() // 60))
    values = np.zeros(minutes)
    for row in rows:
        i = int((row[0] - since).total_seconds() // 60)
        if 0 <= i < minutes:
            values[i] = row[1]
    return float(np.percentile(values, percentile))


@dataclass
class EndpointOutcome:
    endpoint: str
    plan: EndpointPlan | None = None
    model: str | None = None
    error: str | None = None
    stage: str | None = None


@dataclass
class ActionOutcome:
    endpoint: str
    target: int
    previous: int | None
    result: str  # ok, unchanged, error, skipped
    reason: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Runtime:
    """What a cycle needs: settings, the store, providers (created on first use), metrics."""

    def __init__(self, settings: Settings, store: Store | None = None, metrics=None) -> None:
        self.settings = settings
        self.store = store or Store(settings.store.url, echo=settings.store.echo)
        self.metrics = metrics
        self.providers: dict[str, Provider] = {}
        self.last_prune: datetime | None = None
        # The daemon measures each scale-out's time to ready in the background; a one-shot
        # `prewarm once` exits before that could finish, so it does not.
        self.watch_readiness = False

    def provider(self, ep: EndpointSettings) -> Provider:
        if ep.name not in self.providers:
            ref = EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers)
            self.providers[ep.name] = provider_registry.create(ep.provider, ref)
        return self.providers[ep.name]

    def endpoints(self, names: Iterable[str] | None = None) -> list[EndpointSettings]:
        if names is None:
            return list(self.settings.endpoints)
        return [self.settings.endpoint(n) for n in names]

    def close(self) -> None:
        for p in self.providers.values():
            try:
                p.close()
            except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                log.debug("closing provider failed", exc_info=True)
        self.store.close()

    def _error(self, stage: str, endpoint: str) -> None:
        if self.metrics:
            self.metrics.errors.labels(stage, endpoint).inc()


def read_history(rt: Runtime, ep: EndpointSettings, start: datetime, end: datetime) -> list[tuple]:
    if ep.history is not None:
        from .store.external import fetch_history
        return fetch_history(ep.history.url, ep.history.query, endpoint=ep.name, start=start, end=end)
    return rt.store.history(ep.name, start, end)


def observed(rows: list[tuple], now: datetime, rt: Runtime, ep: EndpointSettings) -> Observed:
    recent = [r[1] for r in rows if r[0] >= now - RECENT_WINDOW]
    summary = rt.store.count_summary(ep.name, now - COLD_RATE_WINDOW, now) if ep.history is None else None
    rate = None
    if summary and summary["reported"] > 0:
        rate = summary["cold_starts"] / summary["reported"]
    if rt.metrics is not None and rate is not None:
        rt.metrics.cold_rate.labels(ep.name).set(rate)
    return Observed(requests_per_minute_recent=float(max(recent, default=0)), cold_start_rate=rate)


def plan_cycle(rt: Runtime, now: datetime, names: Iterable[str] | None = None, *,
               save: bool = True, horizon_s: float | None = None) -> dict[str, EndpointOutcome]:
    """Forecast and plan the endpoints; store forecasts, model choices and plans unless
    save=False. Endpoints sharing [forecast] settings are forecast in one batch."""
    outcomes: dict[str, EndpointOutcome] = {}
    groups: dict[Any, list[EndpointSettings]] = {}
    for ep in rt.endpoints(names):
        groups.setdefault(rt.settings.forecast_for(ep), []).append(ep)
    cutoff = now - timedelta(seconds=rt.settings.daemon.ingest_delay_s)
    for fsettings, eps in groups.items():
        histories: dict[str, list[tuple]] = {}
        for ep in eps:
            try:
                histories[ep.name] = read_history(rt, ep, cutoff - timedelta(seconds=fsettings.history_s), cutoff)
            except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plan
                rt._error("history", ep.name)
                log.error("history for %s failed, keeping the last plan: %s", ep.name, exc)
                outcomes[ep.name] = EndpointOutcome(ep.name, error=str(exc), stage="history")
        horizon = fsettings.horizon_s if horizon_s is None else horizon_s
        try:
            forecasts = _forecast(rt, histories, fsettings, cutoff, horizon + (now - cutoff).total_seconds(), save)
        except Exception as exc:  # noqa: BLE001 - even the fallbacks failed: keep the last plans
            for name in histories:
                rt._error("forecast", name)
                outcomes[name] = EndpointOutcome(name, error=str(exc), stage="forecast")
            log.error("forecast failed for %s, keeping the last plans: %s", ", ".join(histories), exc)
            continue
        for ep in eps:
            if ep.name not in outcomes:
                outcomes[ep.name] = _plan_one(rt, ep, forecasts.get(ep.name), histories[ep.name], now, cutoff,
                                              horizon, save)
    return outcomes


def _forecast(rt: Runtime, histories: dict[str, list[tuple]], fsettings, cutoff: datetime, horizon_s: float,
              save: bool) -> dict:
    """EndpointForecasts by name, reusing stored model choices and storing new ones."""
    from .forecasting import forecast_endpoints, history_from_rows

    rows = {name: r for name, r in histories.items() if r}
    if not rows:
        return {}
    choices = {}
    if fsettings.model == "auto":
        from .forecasters.auto import ModelChoice
        for name in rows:
            stored = rt.store.latest_model_choice(name)
            if stored:
                choices[name] = ModelChoice.from_row(name, stored["model"], stored["step_s"], stored["chosen_at"],
                                                     json.dumps(stored["scores"]))
    run = forecast_endpoints(history_from_rows(rows), fsettings, now=cutoff, choices=choices, horizon_s=horizon_s)
    for name, why in run.errors.items():
        rt._error("forecast", name)
        log.warning("forecast for %s fell back: %s", name, why)
    if save:
        for name, choice in run.new_choices.items():
            rt.store.save_model_choice(name, choice.chosen_at, choice.model, choice.step_s,
                                       json.loads(choice.scores_json()))
    return run.forecasts


def _plan_one(rt: Runtime, ep: EndpointSettings, fc, rows: list[tuple], now: datetime, cutoff: datetime,
              horizon: float, save: bool) -> EndpointOutcome:
    if fc is None:
        log.warning("no history for %s yet; nothing planned", ep.name)
        return EndpointOutcome(ep.name, error="no history yet", stage="history")
    demand = _from(fc.demand, now)
    try:
        hold_row = rt.store.active_hold(ep.name, now)
        hold = Hold(*hold_row) if hold_row else None
        capacity = capacity_model(ep, rt.store.ready_durations(ep.name) if ep.capacity.cold_start_learn else None)
        policy = tuned_policy(rt, ep, policy_settings(rt.settings, ep, capacity), capacity, rows, cutoff,
                              ("mean", *demand.bands), persist=save)
        seen = observed(rows, cutoff, rt, ep)
        needs = rt.store.recent_needs(ep.name, now - timedelta(seconds=policy.scale_in_delay_s), now)
        seen = dataclasses.replace(seen, need_history=tuple(needs))
        plan = plan_endpoint(ep.name, demand, capacity, policy, now, seen, hold)
        if save:
            rt.store.save_plan(ep.name, now, now + timedelta(seconds=horizon), fc.model,
                               [{"at": c.at, "warm_workers": c.warm_workers, "idle_timeout_s": c.idle_timeout_s,
                                 "reason": {**dict(c.reason), "events": list(fc.events)} if fc.events
                                 else dict(c.reason)} for c in plan.commands], need_now=plan.need_now)
            _snapshot(rt, ep, fc.model, demand, now)
    except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plan
        rt._error("plan", ep.name)
        log.error("planning %s failed, keeping the last plan: %s", ep.name, exc)
        return EndpointOutcome(ep.name, error=str(exc), stage="plan")
    if rt.metrics is not None and len(demand):
        rt.metrics.forecast.labels(ep.name, "mean").set(demand.mean[0])
        for band, values in demand.bands.items():
            rt.metrics.forecast.labels(ep.name, band).set(values[0])
    return EndpointOutcome(ep.name, plan=plan, model=fc.model)


def _snapshot(rt: Runtime, ep: EndpointSettings, model: str, demand, now: datetime) -> None:
    """Store the forecast every forecast_snapshot_interval (not every cycle: a 6-hour
    per-minute forecast a minute is 500,000 rows a day per endpoint), then score the
    snapshots whose horizon has passed."""
    from .accuracy import score_pending

    d = rt.settings.daemon
    last = rt.store.last_forecast_time(ep.name)
    if last is None or (now - last).total_seconds() >= d.forecast_snapshot_interval_s:
        rt.store.save_forecast(ep.name, now, model, demand.step_s, demand_records(demand))
    try:
        score_pending(rt.store, ep.name, now=now - timedelta(seconds=d.ingest_delay_s),
                      horizon_s=rt.settings.forecast_for(ep).horizon_s,
                      quantile_column=rt.settings.planner_for(ep).quantile, metrics=rt.metrics)
    except Exception as exc:  # noqa: BLE001 - scoring is bookkeeping; it must not stop planning
        rt._error("accuracy", ep.name)
        log.warning("scoring forecasts of %s failed: %s", ep.name, exc)
    if rt.last_prune is None or (now - rt.last_prune).total_seconds() >= d.forecast_snapshot_interval_s:
        rt.last_prune = now
        pruned = rt.store.prune(now - timedelta(seconds=d.retention_s))
        if any(pruned.values()):
            log.info("pruned %s", pruned)


def demand_records(demand) -> list[dict]:
    """One record per step: ds, mean and bands, in requests per minute (JSON and the store)."""
    out = []
    for i in range(len(demand)):
        rec = {"ds": demand.at(i), "mean": demand.mean[i]}
        rec.update({b: v[i] for b, v in demand.bands.items()})
        out.append(rec)
    return out


def _from(demand, now: datetime):
    """Drop forecast steps that end before now (the forecast starts at the ingest cutoff)."""
    from .planner.model import DemandForecast
    skip = 0
    while skip < len(demand) and demand.at(skip + 1) <= now:
        skip += 1
    if skip == 0:
        return demand
    return DemandForecast(start=demand.at(skip), step_s=demand.step_s, mean=demand.mean[skip:],
                          bands={b: v[skip:] for b, v in demand.bands.items()}, model=demand.model)


def due_command(plan_rows: list[dict], now: datetime) -> dict | None:
    """The command in force at `now`: the last one at or before it."""
    from .apply import due_command as due
    return due(plan_rows, now)


def apply_due(rt: Runtime, now: datetime, names: Iterable[str] | None = None, *,
              retry_deadline_s: float = 30.0, cancel=None, may_act=None) -> list[ActionOutcome]:
    """Bring each provider to the target in force now. Level-triggered, idempotent, fail warm:
    see prewarm/apply.py (cached plan when the database is down, no lowering on a stale plan
    or an unreadable provider, backoff on throttling, holds as a floor)."""
    from .apply import apply_all
    return apply_all(rt, now, names, retry_deadline_s=retry_deadline_s, cancel=cancel, may_act=may_act)


def run_once(rt: Runtime, now: datetime, names: Iterable[str] | None = None) -> tuple[dict, list]:
    outcomes = plan_cycle(rt, now, names)
    actions = apply_due(rt, now, names)
    return outcomes, actions
