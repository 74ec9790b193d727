"""Scoring the stored forecast snapshots whose horizon has passed (prewarm.accuracy), asking
the store only when one of this runtime's snapshots comes due."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .config import EndpointSettings
from .runtime import Runtime

log = logging.getLogger("prewarm.cycle")


def score_due(rt: Runtime, ep: EndpointSettings, now: datetime) -> None:
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
