"""The cold-start feedback loop: observed cold-start rate per endpoint over a rolling window
(from ingested counts) -> the planner's auto-tuner (planner/tuning.py) -> the policy the
next plan uses.

Call site: where a cycle builds an endpoint's policy,

    policy = tuned_policy(rt, ep, policy_settings(rt.settings, ep), now)

The tuner moves the value of an avoided cold start multiplicatively each cycle, so its last
result is kept per runtime (the daemon's memory); a cron `prewarm once` starts from the
configured policy each run. Tuning is on when the endpoint's planner settings ask for it
(`auto_tune = true`, read with getattr so this works before the key exists) and the window
has cold starts reported; otherwise the configured policy is returned unchanged.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from .planner.model import PolicySettings

log = logging.getLogger("prewarm.feedback")
WINDOW = timedelta(hours=1)
_GUARD = threading.Lock()


def observed_stats(store, endpoint: str, now: datetime, window: timedelta = WINDOW):
    """ObservedStats over [now - window, now), or None when no cold starts were reported."""
    from .planner.tuning import ObservedStats

    summary = store.count_summary(endpoint, now - window, now)
    if summary["reported"] <= 0:
        return None
    per_minute = sorted(r[1] for r in store.history(endpoint, now - window, now))
    baseline = per_minute[int(0.1 * (len(per_minute) - 1))] if per_minute else 0.0
    return ObservedStats(requests=int(summary["reported"]), cold_requests=int(summary["cold_starts"]),
                         baseline_rpm=float(baseline))


def tuned_policy(rt, ep, policy: PolicySettings, now: datetime) -> PolicySettings:
    """The policy to plan with: `policy`, tuned toward the target cold-start band when asked."""
    if not getattr(rt.settings.planner_for(ep), "auto_tune", False):
        return policy
    try:
        from .planner.tuning import tune
    except ImportError:  # no tuner installed: plan with the configured policy
        return policy
    from .cycle import capacity_model

    stats = observed_stats(rt.store, ep.name, now)
    with _GUARD:
        memory = rt.__dict__.setdefault("tuned_policies", {})
        base = memory.get(ep.name, policy)
    if stats is None:
        return base
    tuned = tune(base, stats, capacity_model(ep))
    with _GUARD:
        memory[ep.name] = tuned
    if rt.metrics is not None:
        rt.metrics.cold_rate.labels(ep.name).set(stats.cold_requests / max(1, stats.requests))
    log.info("%s: tuned on %d cold of %d requests: value %.0fs, quantile %s, floor %d", ep.name,
             stats.cold_requests, stats.requests, tuned.cold_start_value_s or 0, tuned.quantile_column, tuned.floor,
             extra={"fields": {"endpoint": ep.name, "cold_rate": stats.cold_requests / max(1, stats.requests)}})
    return tuned
