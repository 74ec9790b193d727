"""Store -> forecast: refreshing each endpoint's forecast when it is due (staggered over
[forecast] refresh_interval), in the cycle or handed to the refresh pool, and the forecasts
kept in the runtime between refreshes (fail warm: a failed refresh keeps the cached one)."""
from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from datetime import datetime, timedelta
from typing import Any

from .config import EndpointSettings
from .history import read_history_frames
from .runtime import CachedForecast, Runtime

log = logging.getLogger("prewarm.cycle")
REFRESH_BATCH = 500  # endpoints forecast together (their history in memory at once)


def refresh_phase(name: str) -> float:
    """A stable share of the refresh interval in (0, 1] per endpoint: after a (re)start
    refreshes every endpoint at once, the next refreshes are spread over the interval."""
    return (zlib.crc32(name.encode()) % 1000 + 1) / 1000.0


def usable(cached: CachedForecast | None, fsettings, now: datetime) -> bool:
    return cached is not None and cached.settings == fsettings and cached.made_at <= now <= cached.usable_until


def refresh_due(rt: Runtime, name: str, fsettings, now: datetime) -> bool:
    cached = rt.forecasts.get(name)
    return cached is None or cached.settings != fsettings or not cached.made_at <= now < cached.due


def refresh_forecasts(rt: Runtime, eps: list[EndpointSettings], fsettings, now: datetime, cutoff: datetime,
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
                forecasts.update(forecast_frame(rt, frame, fsettings, cutoff, span, save, base_step))
            except Exception as exc:  # noqa: BLE001 - even the fallbacks failed: keep the cached forecasts
                names = list(frame["unique_id"].unique())
                for name in names:
                    rt._error("forecast", name)
                    failed[name] = ("forecast", str(exc))
                log.error("forecast failed for %d endpoints (%s...), keeping the last forecasts and plans: %s",
                          len(names), ", ".join(names[:3]), exc)
        del frames
        for name, fc in forecasts.items():
            out[name] = compact(fc)  # the model's frame and float tuples go now, not after planning
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


def refresh_in_background(rt: Runtime, pool, due: list[EndpointSettings], fsettings, now: datetime,
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
    return {ep.name for ep in due if not usable(rt.forecasts.get(ep.name), fsettings, now)} & pool.busy()


def take_refreshes(rt: Runtime, finished: list) -> dict[str, tuple[str, str]]:
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


def compact(fc):
    """The forecast as the cache keeps it: demand in float arrays (~4x smaller than tuples of
    floats at 10,000 endpoints), without the model's frame."""
    import numpy as np
    from .planner.model import DemandForecast

    d = fc.demand
    demand = DemandForecast(start=d.start, step_s=d.step_s, mean=np.asarray(d.mean, dtype=float),
                            bands={b: np.asarray(v, dtype=float) for b, v in d.bands.items()}, model=d.model,
                            pinned=np.asarray(d.pinned, dtype=bool) if len(d.pinned) else ())
    return dataclasses.replace(fc, demand=demand, frame=None)


def forecast_rows(rt: Runtime, histories: dict[str, list[tuple]], fsettings, cutoff: datetime, horizon_s: float,
                  save: bool) -> dict:
    """EndpointForecasts by name, reusing stored model choices and storing new ones."""
    from .forecasting import history_from_rows

    rows = {name: r for name, r in histories.items() if r}
    if not rows:
        return {}
    return forecast_frame(rt, history_from_rows(rows), fsettings, cutoff, horizon_s, save)


def forecast_frame(rt: Runtime, history, fsettings, cutoff: datetime, horizon_s: float, save: bool,
                   base_step_s: int = 60) -> dict:
    """`forecast_rows` from a long frame (unique_id, ds, y) at base_step_s."""
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
