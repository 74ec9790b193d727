"""Learning real cold-start durations.

After a scale-out, a watcher polls the provider until the new capacity is ready
(`Provider.wait_ready`) and records how long it took (table `readiness`). With
`cold_start_learn = true`, an endpoint's lead becomes a percentile of those measurements
once there are enough of them, instead of the configured `cold_start`.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

log = logging.getLogger("prewarm.readiness")
MIN_SAMPLES = 5
LEARN_FROM = 50  # most recent measurements


def learned_lead(samples: list[float], percentile: float) -> float | None:
    """Nearest-rank percentile of measured ready times, or None with too few samples."""
    if len(samples) < MIN_SAMPLES:
        return None
    from .coldstart import percentile as pct
    return pct(tuple(sorted(samples)), percentile)


def watch(rt, ep, provider, target: int, started_at: datetime, timeout_s: float,
          background: bool = True) -> threading.Thread | None:
    """Measure the time to ready of a scale-out to `target` and record it."""
    def run() -> None:
        try:
            report = provider.wait_ready(target, timeout_s)
        except Exception as exc:  # noqa: BLE001 - measuring is best effort
            log.warning("%s: readiness watch failed: %s", ep.name, exc)
            return
        if report.state is not None and report.state.detail.get("ready_observable") is False:
            return  # the provider cannot tell when capacity is ready (Replicate)
        try:
            rt.store.record_readiness(ep.name, started_at=started_at, target=target, seconds=report.seconds,
                                      ready=report.ready)
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: recording readiness failed: %s", ep.name, exc)
            return
        log.info("%s: %d workers ready after %.1fs", ep.name, target, report.seconds)

    if not background:
        run()
        return None
    thread = threading.Thread(target=run, name=f"ready-{ep.name}", daemon=True)
    thread.start()
    return thread
