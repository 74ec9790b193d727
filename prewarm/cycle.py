"""One cycle: read history, forecast, plan, apply what is due, record.

Composes the store, the forecasters, the pure planner and the providers. `now` is always
passed in. Fail warm: an error at any stage keeps the last plan and never lowers capacity.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
REFRESH_BATCH = 500  # endpoints forecast together (their history in memory at once)
PLAN_BATCH = 500  # endpoints whose planning reads share queries and whose plans share a transaction
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
                 stored: tuple[datetime, dict] | None, now: datetime, bands: tuple[str, ...],
                 persist: bool = True) -> PolicySettings:
    """The cold-start feedback loop: the observed cold-start rate since the knobs last moved
    (at most a day) tunes them toward the target, at most once per tune_interval. Tuned knobs
    are stored (`stored`: what the store holds), so a restart keeps them; a change of the
    configured values resets them. Between tunes nothing is read: a check that found nothing
    to tune on is remembered in the runtime for tune_interval too."""
    from .planner.tuning import ObservedStats, tune

    p = rt.settings.planner_for(ep)
    if not p.auto_tune:
        return base
    configured = {k: getattr(base, k) for k in TUNED_KNOBS}
    policy, since, changed_at = base, now - TUNING_WINDOW, None
    if stored is not None and stored[1].get("configured") == configured:
        updated_at, knobs = stored
        policy = dataclasses.replace(base, **{k: knobs["tuned"][k] for k in TUNED_KNOBS})
        # The evidence is what happened since the knobs last moved (so it reflects the current
        # setting), capped at a day: the same window the backtester's tuner sees.
        changed_at = datetime.fromisoformat(knobs["changed_at"]) if knobs.get("changed_at") else updated_at
        since = max(since, changed_at)
        if (now - updated_at).total_seconds() < p.tune_interval_s:
            return policy
    checked = rt.tune_checked.get(ep.name)
    if checked is not None and checked[0] == configured and 0 <= (now - checked[1]).total_seconds() < p.tune_interval_s:
        return policy
    summary = rt.store.count_summary(ep.name, since, now) if ep.history is None else None
    if not summary or summary["reported"] <= 0:
        if persist:
            rt.tune_checked[ep.name] = (configured, now)
        return policy  # no observed cold starts to tune on
    rows = read_history(rt, ep, since, now)
    stats = ObservedStats(requests=int(summary["reported"]), cold_requests=int(summary["cold_starts"]),
                          baseline_rpm=_baseline_rpm(rows, since, now, base.baseline_percentile),
                          span_s=(now - since).total_seconds())
    new = tune(policy, stats, capacity, bands)
    if not persist:
        return new
    moved = now if new != policy else (changed_at or since)
    rt.store.save_tuned_policy(ep.name, now, {"configured": configured, "changed_at": moved.isoformat(),
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
        # Kept between cycles (in memory: a new runtime starts from the store and refreshes
        # every forecast at its first cycle): forecasts by endpoint, the last snapshot time,
        # snapshots waiting to be scored, the tuner's last check that found nothing.
        self.forecasts: dict[str, CachedForecast] = {}
        # Per-minute burstiness of the day before each endpoint's last hourly boundary, and
        # that boundary: cron runs and the daemon measure the same window, so agree.
        self.dispersion: dict[str, float | None] = {}
        self.dispersion_end: dict[str, datetime] = {}
        self.last_snapshot: dict[str, datetime | None] = {}
        self.unscored: dict[str, list[datetime]] = {}
        self.tune_checked: dict[str, tuple[dict, datetime]] = {}
        # With [daemon] refresh_processes, the daemon refreshes forecasts in a pool of processes
        # (prewarm.refresh_pool) and its cycles only plan; None refreshes in the cycle.
        self.refresh_pool = None
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

    def close_refresh_pool(self) -> None:
        if self.refresh_pool is not None:
            self.refresh_pool.close()
            self.refresh_pool = None

    def close(self) -> None:
        self.close_refresh_pool()
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


DISPERSION_WINDOW_MIN = 1440  # the last day of per-minute counts
BASE_STEPS = (60, 300, 900)  # bucket sizes forecast at their own step (others: per minute)


def read_history_frames(rt: Runtime, eps: list[EndpointSettings], start: datetime, end: datetime,
                        failed: dict[str, tuple[str, str]]) -> dict[int, "Any"]:
    """History of many endpoints as forecaster frames by base step: one query per chunk from
    the store, one fetch per endpoint with its own history source. Endpoints whose stored
    buckets are all 5 or 15 minutes (aligned) are forecast from them as they are, not spread
    over minutes and gap-filled. A read that fails is noted in `failed` (fail warm)."""
    import pandas as pd

    from .forecasting import history_from_rows

    out: dict[int, list] = {}
    mine: dict[str, tuple[str, str]] = {}  # this read's failures (`failed` may hold earlier ones)
    stored = [ep.name for ep in eps if ep.history is None]
    if stored:
        try:
            frame = rt.store.history_frame(stored, start, end)
        except Exception as exc:  # noqa: BLE001 - fail warm: keep the cached forecast and the last plan
            frame = None
            for name in stored:
                mine[name] = ("history", str(exc))
        if frame is not None and len(frame):
            ns = frame["ds"].astype("int64")
            frame["aligned"] = (ns % (frame["bucket_s"] * 1_000_000_000)) == 0
            per = frame.groupby("unique_id", sort=False).agg(lo=("bucket_s", "min"), hi=("bucket_s", "max"),
                                                             aligned=("aligned", "all"))
            base = per["lo"].where((per["lo"] == per["hi"]) & per["aligned"] & per["lo"].isin(BASE_STEPS), 60)
            frame["base"] = frame["unique_id"].map(base)
            for step, part in frame.groupby("base", sort=False):
                part = part[["unique_id", "ds", "y"]]
                if step == 60:  # minutes, as history_from_rows makes them
                    part = part.assign(ds=part["ds"].dt.floor("60s")).groupby(["unique_id", "ds"], as_index=False)["y"].sum()
                out.setdefault(int(step), []).append(part.reset_index(drop=True))
    external = {}
    for ep in eps:
        if ep.history is not None:
            try:
                external[ep.name] = read_history(rt, ep, start, end)
            except Exception as exc:  # noqa: BLE001
                mine[ep.name] = ("history", str(exc))
    if any(external.values()):
        out.setdefault(60, []).append(history_from_rows(external))
    for name, (_, why) in mine.items():
        rt._error("history", name)
        log.error("history for %s failed, keeping the last forecast and plan: %s", name, why)
    failed.update(mine)
    return {step: pd.concat(parts, ignore_index=True) for step, parts in out.items()}


@dataclass
class CachedForecast:
    """A forecast kept in the runtime between refreshes; cycles re-plan from it sliced to now."""
    forecast: Any  # EndpointForecast: demand as arrays, no model frame
    settings: Any  # the ForecastSettings it was made with (a change makes it due)
    made_at: datetime
    due: datetime  # next refresh
    usable_until: datetime  # it covers `horizon` from now until then


def refresh_phase(name: str) -> float:
    """A stable share of the refresh interval in (0, 1] per endpoint: after a (re)start
    refreshes every endpoint at once, the next refreshes are spread over the interval."""
    return (zlib.crc32(name.encode()) % 1000 + 1) / 1000.0


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
    background_failed = _take_refreshes(rt, pool.collect()) if pool is not None else {}
    for fsettings, eps in groups.items():
        horizon = fsettings.horizon_s if horizon_s is None else horizon_s
        due = [ep for ep in eps if not use_cache or _refresh_due(rt, ep.name, fsettings, now)]
        names = {ep.name for ep in eps}
        failed = {name: why for name, why in background_failed.items() if name in names}
        waiting: set[str] = set()
        if pool is not None:
            waiting = _refresh_in_background(rt, pool, due, fsettings, now, cutoff, horizon, save, failed)
            due = []
        fresh = _refresh(rt, due, fsettings, now, cutoff, horizon, use_cache, save, failed)
        ready = [ep for ep in eps if ep.name not in waiting]
        while True:
            outcomes.update(_plan_endpoints(rt, ready, fresh, fsettings, now, cutoff, horizon, save,
                                            use_cache, failed))
            if not waiting:
                break
            # Plan each job's endpoints as it arrives: at a (re)start of a 10,000-endpoint fleet
            # the refreshes take minutes, and the first plans should not wait for the last.
            # What else finished meanwhile may be another group's: it goes to that group.
            taken = _take_refreshes(rt, pool.collect(waiting, first=True))
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
        elif _usable(cached, fsettings, now):
            forecasts[ep.name] = cached.forecast
            if ep.name in failed:
                log.warning("%s: planning from the forecast made at %s", ep.name, cached.made_at.isoformat())
        elif ep.name in failed:
            stage, why = failed[ep.name]
            outcomes[ep.name] = EndpointOutcome(ep.name, error=why, stage=stage)
        else:
            log.warning("no history for %s yet; nothing planned", ep.name)
            outcomes[ep.name] = EndpointOutcome(ep.name, error="no history yet", stage="history")
    todo = [ep for ep in eps if ep.name in forecasts]
    _update_dispersions(rt, todo, cutoff)
    for i in range(0, len(todo), PLAN_BATCH):
        outcomes.update(_plan_batch(rt, todo[i:i + PLAN_BATCH], forecasts, now, cutoff, horizon, save))
    if rt.metrics is not None and use_cache:
        for ep in todo:
            if outcomes[ep.name].plan is None:
                continue
            cached = rt.forecasts.get(ep.name)
            made_at = cached.made_at if cached is not None else now
            rt.metrics.forecast_age.labels(ep.name).set(max(0.0, (now - made_at).total_seconds()))
    return outcomes


def _refresh_in_background(rt: Runtime, pool, due: list[EndpointSettings], fsettings, now: datetime,
                           cutoff: datetime, horizon: float, save: bool,
                           failed: dict[str, tuple[str, str]]) -> set[str]:
    """Hand the due refreshes to the pool (prewarm.refresh_pool). Returns the endpoints to
    wait for: those with no usable cached forecast, so nothing is planned from nothing. What
    the pool could not take is a failed refresh (counted, in `failed`), tried again next cycle."""
    busy = pool.busy()
    refused = pool.submit([ep for ep in due if ep.name not in busy], fsettings, now, cutoff,
                          refresh_span(fsettings, now, cutoff, horizon, keep=True), save)
    for name, why in refused.items():
        rt._error("forecast", name)
        failed[name] = ("forecast", why)
    return {ep.name for ep in due if not _usable(rt.forecasts.get(ep.name), fsettings, now)} & pool.busy()


def _take_refreshes(rt: Runtime, finished: list) -> dict[str, tuple[str, str]]:
    """Cache the forecasts of finished background refreshes; return what failed (counted and
    logged here, where the metrics are)."""
    failed: dict[str, tuple[str, str]] = {}
    for job, result, error in finished:
        if result is None:
            log.error("background refresh of %d endpoints (%s...) failed, keeping their forecasts: %s",
                      len(job.names), ", ".join(job.names[:3]), error)
            failed.update({name: ("forecast", error) for name in job.names})
            for name in job.names:
                rt._error("forecast", name)
            continue
        forecasts, job_failed, errors = result
        install_forecasts(rt, forecasts, job.fsettings, job.made_at)
        failed.update(job_failed)
        for stage, name in errors:  # what the refresh counted (failures, fallbacks), as in the cycle
            rt._error(stage, name)
    return failed


def _usable(cached: "CachedForecast | None", fsettings, now: datetime) -> bool:
    return cached is not None and cached.settings == fsettings and cached.made_at <= now <= cached.usable_until


def _refresh_due(rt: Runtime, name: str, fsettings, now: datetime) -> bool:
    cached = rt.forecasts.get(name)
    return cached is None or cached.settings != fsettings or not cached.made_at <= now < cached.due


def _refresh(rt: Runtime, eps: list[EndpointSettings], fsettings, now: datetime, cutoff: datetime,
             horizon: float, keep: bool, save: bool, failed: dict[str, tuple[str, str]]) -> dict:
    """Forecast `eps` (forecast_batches); with keep, cache each forecast until its
    (staggered) next refresh."""
    out = forecast_batches(rt, eps, fsettings, cutoff, refresh_span(fsettings, now, cutoff, horizon, keep),
                           save, failed)
    if keep:
        install_forecasts(rt, out, fsettings, now)
    return out


def refresh_span(fsettings, now: datetime, cutoff: datetime, horizon: float, keep: bool) -> float:
    """Seconds a refresh forecasts from the cutoff: the horizon from now, and for a cached
    forecast two refresh intervals more, so one failed refresh does not leave the planner
    without one."""
    return horizon + (now - cutoff).total_seconds() + (2 * fsettings.refresh_interval_s if keep else 0.0)


def forecast_batches(rt: Runtime, eps: list[EndpointSettings], fsettings, cutoff: datetime, span: float,
                     save: bool, failed: dict[str, tuple[str, str]]) -> dict:
    """Forecast `eps` in batches of REFRESH_BATCH (history of one batch in memory at a time),
    compacted for the cache. What fails is noted in `failed` (fail warm). Also what a
    background refresh process runs (prewarm.refresh_pool)."""
    out: dict[str, Any] = {}
    for i in range(0, len(eps), REFRESH_BATCH):
        batch = eps[i:i + REFRESH_BATCH]
        frames = read_history_frames(rt, batch, cutoff - timedelta(seconds=fsettings.history_s), cutoff, failed)
        forecasts = {}
        for base_step, frame in frames.items():
            try:
                forecasts.update(_forecast_frame(rt, frame, fsettings, cutoff, span, save, base_step))
            except Exception as exc:  # noqa: BLE001 - even the fallbacks failed: keep the cached forecasts
                names = list(frame["unique_id"].unique())
                for name in names:
                    rt._error("forecast", name)
                    failed[name] = ("forecast", str(exc))
                log.error("forecast failed for %d endpoints (%s...), keeping the last forecasts and plans: %s",
                          len(names), ", ".join(names[:3]), exc)
        del frames
        for name, fc in forecasts.items():
            out[name] = _compact(fc)  # the model's frame and float tuples go now, not after planning
    return out


def install_forecasts(rt: Runtime, forecasts: dict, fsettings, made_at: datetime) -> None:
    """Cache forecasts made from history up to made_at's cutoff until their next refresh: an
    endpoint's first is due again after its phase of the interval (staggered), later ones
    after the interval. A cached forecast covers the horizon for two intervals."""
    interval = fsettings.refresh_interval_s
    for name, fc in forecasts.items():
        first = name not in rt.forecasts
        due = made_at + timedelta(seconds=interval * (refresh_phase(name) if first else 1.0))
        rt.forecasts[name] = CachedForecast(fc, fsettings, made_at, due, made_at + timedelta(seconds=2 * interval))


def _dispersion_end(name: str, cutoff: datetime) -> datetime:
    """The endpoint's last hourly boundary at or before the cutoff, offset per endpoint
    (refresh_phase) so a fleet does not re-measure in one cycle."""
    offset = refresh_phase(name) * 3600.0
    t = cutoff.timestamp() - offset
    return datetime.fromtimestamp(t - t % 3600.0 + offset, tz=timezone.utc)


def _update_dispersions(rt: Runtime, eps: list[EndpointSettings], cutoff: datetime) -> None:
    """Burstiness of each endpoint's per-minute counts over the day before its last hourly
    boundary (planner.burstiness), measured when the boundary moves: once an hour, the same
    value in cron mode and in the daemon. Endpoints with their own history source, or stored
    in 5- or 15-minute buckets, have no per-minute counts here and are sized as Poisson.
    A read that fails keeps the last value (fail warm)."""
    import numpy as np

    from .planner.burstiness import dispersion_index

    ends = {ep.name: _dispersion_end(ep.name, cutoff) for ep in eps if ep.history is None}
    due = [name for name, end in ends.items() if rt.dispersion_end.get(name) != end]
    if not due:
        return
    start = min(ends[n] for n in due) - timedelta(minutes=DISPERSION_WINDOW_MIN)
    try:
        frame = rt.store.history_frame(due, start, max(ends[n] for n in due))
    except Exception as exc:  # noqa: BLE001 - keep the last measurement
        log.warning("burstiness not measured for %d endpoints: %s", len(due), exc)
        return
    parts = dict(tuple(frame.groupby("unique_id", sort=False))) if len(frame) else {}
    for name in due:
        end = np.datetime64(ends[name].replace(tzinfo=None), "m")
        first = end - np.timedelta64(DISPERSION_WINDOW_MIN, "m")
        counts = np.zeros(DISPERSION_WINDOW_MIN)
        part = parts.get(name)
        if part is not None and (part["bucket_s"] == 60).all():
            minutes = part["ds"].to_numpy().astype("datetime64[m]")
            keep = (minutes >= first) & (minutes < end)
            idx = ((minutes[keep] - first) // np.timedelta64(1, "m")).astype(int)
            np.add.at(counts, idx, part["y"].to_numpy(float)[keep])
            rt.dispersion[name] = dispersion_index(counts.tolist())
        else:
            rt.dispersion[name] = None
        rt.dispersion_end[name] = ends[name]


def _compact(fc):
    """The forecast as the cache keeps it: demand in float arrays (~4x smaller than tuples of
    floats at 10,000 endpoints), without the model's frame."""
    import numpy as np
    from .planner.model import DemandForecast

    d = fc.demand
    demand = DemandForecast(start=d.start, step_s=d.step_s, mean=np.asarray(d.mean, dtype=float),
                            bands={b: np.asarray(v, dtype=float) for b, v in d.bands.items()}, model=d.model)
    return dataclasses.replace(fc, demand=demand, frame=None)


def _forecast(rt: Runtime, histories: dict[str, list[tuple]], fsettings, cutoff: datetime, horizon_s: float,
              save: bool) -> dict:
    """EndpointForecasts by name, reusing stored model choices and storing new ones."""
    from .forecasting import history_from_rows

    rows = {name: r for name, r in histories.items() if r}
    if not rows:
        return {}
    return _forecast_frame(rt, history_from_rows(rows), fsettings, cutoff, horizon_s, save)


def _forecast_frame(rt: Runtime, history, fsettings, cutoff: datetime, horizon_s: float, save: bool,
                    base_step_s: int = 60) -> dict:
    """`_forecast` from a long frame (unique_id, ds, y) at base_step_s."""
    from . import forecasting

    choices = {}
    if fsettings.model == "auto":
        from .forecasters.auto import ModelChoice
        for name, stored in rt.store.latest_model_choices(list(history["unique_id"].unique())).items():
            choices[name] = ModelChoice.from_row(name, stored["model"], stored["step_s"], stored["chosen_at"],
                                                 json.dumps(stored["scores"]))
    run = forecasting.forecast_endpoints(history, fsettings, now=cutoff, choices=choices, horizon_s=horizon_s,
                                         base_step_s=base_step_s)
    for name, why in run.errors.items():
        rt._error("forecast", name)
        log.warning("forecast for %s fell back: %s", name, why)
    if save:
        for name, choice in run.new_choices.items():
            rt.store.save_model_choice(name, choice.chosen_at, choice.model, choice.step_s,
                                       json.loads(choice.scores_json()))
    return run.forecasts


@dataclass
class PlanInputs:
    """What planning a batch reads from the store, a few queries for the whole batch."""
    activity: dict  # name -> count summary over COLD_RATE_WINDOW + recent_max
    holds: dict
    needs: dict
    tuned: dict
    ready: dict
    recent: dict  # endpoints with their own history source: name -> recent rows


def _read_inputs(rt: Runtime, eps: list[EndpointSettings], now: datetime, cutoff: datetime) -> PlanInputs:
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
        recent={ep.name: read_history(rt, ep, cutoff - RECENT_WINDOW, cutoff) for ep in eps if ep.history is not None})


def _plan_batch(rt: Runtime, eps: list[EndpointSettings], forecasts: dict, now: datetime, cutoff: datetime,
                horizon: float, save: bool) -> dict[str, EndpointOutcome]:
    """Plan a batch from its forecasts: inputs read in a few queries, plans written in one
    transaction (an unchanged plan is confirmed, not rewritten), snapshots in another."""
    try:
        inputs = _read_inputs(rt, eps, now, cutoff)
    except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plans
        for ep in eps:
            rt._error("plan", ep.name)
        log.error("reading what %d endpoints need for planning failed, keeping the last plans: %s", len(eps), exc)
        return {ep.name: EndpointOutcome(ep.name, error=str(exc), stage="plan") for ep in eps}
    outcomes: dict[str, EndpointOutcome] = {}
    writes, demands = [], {}
    for ep in eps:
        fc = forecasts[ep.name]
        demand = _window(fc.demand, now, horizon)
        try:
            plan = _plan_one(rt, ep, demand, inputs, now, cutoff, save)
        except Exception as exc:  # noqa: BLE001 - fail warm: keep the last plan
            rt._error("plan", ep.name)
            log.error("planning %s failed, keeping the last plan: %s", ep.name, exc)
            outcomes[ep.name] = EndpointOutcome(ep.name, error=str(exc), stage="plan")
            continue
        outcomes[ep.name] = EndpointOutcome(ep.name, plan=plan, model=fc.model)
        demands[ep.name] = (fc, demand)
        writes.append({"endpoint": ep.name, "horizon_end": now + timedelta(seconds=horizon), "model": fc.model,
                       "need_now": plan.need_now,
                       "commands": [{"at": c.at, "warm_workers": c.warm_workers, "idle_timeout_s": c.idle_timeout_s,
                                     "reason": {**dict(c.reason), "events": list(fc.events)} if fc.events
                                     else dict(c.reason)} for c in plan.commands]})
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
        _snapshots(rt, [ep for ep in eps if ep.name in demands], demands, now)
    return outcomes


def _plan_one(rt: Runtime, ep: EndpointSettings, demand, inputs: PlanInputs, now: datetime, cutoff: datetime,
              save: bool):
    hold_row = inputs.holds.get(ep.name)
    hold = Hold(*hold_row) if hold_row else None
    capacity = capacity_model(ep, inputs.ready.get(ep.name) if ep.capacity.cold_start_learn else None)
    policy = tuned_policy(rt, ep, policy_settings(rt.settings, ep, capacity), capacity, inputs.tuned.get(ep.name),
                          cutoff, ("mean", *demand.bands), persist=save)
    seen = observed(inputs, ep)
    if rt.metrics is not None:
        rt.metrics.observed_requests.labels(ep.name).set(seen.requests_per_minute_recent)
        if seen.cold_start_rate is not None:
            rt.metrics.cold_rate.labels(ep.name).set(seen.cold_start_rate)
    since = now - timedelta(seconds=policy.scale_in_delay_s)
    needs = tuple((at, n) for at, n in inputs.needs.get(ep.name, ()) if at >= since)
    seen = dataclasses.replace(seen, need_history=needs, arrival_dispersion=rt.dispersion.get(ep.name))
    return plan_endpoint(ep.name, demand, capacity, policy, now, seen, hold)


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


def _snapshots(rt: Runtime, eps: list[EndpointSettings], demands: dict, now: datetime) -> None:
    """Store the forecast every forecast_snapshot_interval (not every cycle: a 6-hour
    per-minute forecast a minute is 500,000 rows a day per endpoint), in one transaction for
    the batch; score the snapshots whose horizon has passed; prune now and then.
    Bookkeeping: a failure here is logged and counted, and never stops planning."""
    d = rt.settings.daemon
    try:
        unknown = [ep.name for ep in eps if ep.name not in rt.last_snapshot]
        if unknown:
            last = rt.store.last_forecast_times(unknown)
            rt.last_snapshot.update({name: last.get(name) for name in unknown})
        due = [ep for ep in eps if rt.last_snapshot[ep.name] is None
               or (now - rt.last_snapshot[ep.name]).total_seconds() >= d.forecast_snapshot_interval_s]
        if due:
            rt.store.save_forecasts([(ep.name, now, demands[ep.name][0].model, demands[ep.name][1].step_s,
                                      demand_records(demands[ep.name][1])) for ep in due])
            for ep in due:
                rt.last_snapshot[ep.name] = now
                if ep.name in rt.unscored:
                    rt.unscored[ep.name].append(now)
    except Exception as exc:  # noqa: BLE001
        for ep in eps:
            rt._error("accuracy", ep.name)
        log.warning("storing forecast snapshots failed: %s", exc)
    for ep in eps:
        _score(rt, ep, now)
    if rt.last_prune is None or (now - rt.last_prune).total_seconds() >= d.forecast_snapshot_interval_s:
        rt.last_prune = now
        pruned = rt.store.prune(now - timedelta(seconds=d.retention_s))
        if any(pruned.values()):
            log.info("pruned %s", pruned)


def _score(rt: Runtime, ep: EndpointSettings, now: datetime) -> None:
    """Score stored snapshots whose horizon has passed. The runtime remembers which of its
    snapshots wait, so the store is asked only when one comes due (and once per endpoint in
    a new runtime, for snapshots of an earlier one)."""
    from .accuracy import score_pending

    d = rt.settings.daemon
    horizon_s = rt.settings.forecast_for(ep).horizon_s
    ready = now - timedelta(seconds=d.ingest_delay_s + horizon_s)
    waiting = rt.unscored.get(ep.name)
    if waiting is not None and not (waiting and waiting[0] <= ready):
        return
    try:
        done = score_pending(rt.store, ep.name, now=now - timedelta(seconds=d.ingest_delay_s), horizon_s=horizon_s,
                             quantile_column=rt.settings.planner_for(ep).quantile, metrics=rt.metrics, limit=3)
    except Exception as exc:  # noqa: BLE001 - scoring is bookkeeping; it must not stop planning
        rt._error("accuracy", ep.name)
        log.warning("scoring forecasts of %s failed: %s", ep.name, exc)
        return
    if len(done) >= 3:  # maybe more waiting: ask again next cycle
        rt.unscored.pop(ep.name, None)
    else:
        last = rt.last_snapshot.get(ep.name)
        rt.unscored[ep.name] = [t for t in (waiting or ([last] if last else [])) if t > ready]


def demand_records(demand) -> list[dict]:
    """One record per step: ds, mean and bands, in requests per minute (JSON and the store)."""
    out = []
    for i in range(len(demand)):
        rec = {"ds": demand.at(i), "mean": demand.mean[i]}
        rec.update({b: v[i] for b, v in demand.bands.items()})
        out.append(rec)
    return out


def _window(demand, now: datetime, horizon_s: float):
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
                          bands={b: part(v) for b, v in demand.bands.items()}, model=demand.model)


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
