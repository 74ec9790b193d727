"""Burstiness of each endpoint's recent per-minute counts (planner.burstiness), measured
once an hour per endpoint and kept in the runtime for the planner."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from .config import EndpointSettings
from .refresh import refresh_phase
from .runtime import Runtime

log = logging.getLogger("prewarm.cycle")
DISPERSION_WINDOW_MIN = 1440  # the last day of per-minute counts


def dispersion_end(name: str, cutoff: datetime) -> datetime:
    """The endpoint's last hourly boundary at or before the cutoff, offset per endpoint
    (refresh_phase) so a fleet does not re-measure in one cycle."""
    offset = refresh_phase(name) * 3600.0
    t = cutoff.timestamp() - offset
    return datetime.fromtimestamp(t - t % 3600.0 + offset, tz=timezone.utc)


def update_dispersions(rt: Runtime, eps: list[EndpointSettings], cutoff: datetime) -> None:
    """Burstiness of each endpoint's per-minute counts over the day before its last hourly
    boundary (planner.burstiness), measured when the boundary moves: once an hour, the same
    value in cron mode and in the daemon. Endpoints with their own history source, or stored
    in 5- or 15-minute buckets, have no per-minute counts here and are sized as Poisson.
    A read that fails keeps the last value (fail warm)."""
    import numpy as np

    from .planner.burstiness import dispersion_index

    ends = {ep.name: dispersion_end(ep.name, cutoff) for ep in eps if ep.history is None}
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
