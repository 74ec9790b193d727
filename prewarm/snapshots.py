"""Forecast snapshots: the forecast stored every forecast_snapshot_interval (for `explain`
and accuracy scoring), scored once their horizon has passed, pruned after the retention."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .config import EndpointSettings
from .runtime import Runtime
from .scoring import score_due

log = logging.getLogger("prewarm.cycle")


def save_snapshots(rt: Runtime, eps: list[EndpointSettings], demands: dict, now: datetime) -> None:
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
        score_due(rt, ep, now)
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
