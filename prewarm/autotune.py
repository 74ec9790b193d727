"""The cold-start feedback loop of a running cycle: the observed cold-start rate tunes the
planner's knobs (planner.tuning, pure) toward the target, and the tuned knobs are stored."""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from .config import EndpointSettings
from .history import read_history
from .planner.model import CapacityModel, PolicySettings
from .runtime import Runtime

log = logging.getLogger("prewarm.cycle")
TUNED_KNOBS = ("quantile_column", "cold_start_value_s", "floor")
TUNING_WINDOW = timedelta(days=1)


def tuned_policy(rt: Runtime, ep: EndpointSettings, base: PolicySettings, capacity: CapacityModel,
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
