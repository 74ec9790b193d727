"""Replay an endpoint from the store: its per-minute history as a trace, and its configured
capacity (cold start, service time, concurrency, price, target cold rate) as the backtest's
worker model, so `prewarm backtest --from-store ENDPOINT` needs no file and no repeated flags."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ..errors import InputError
from ..units import to_utc
from .traces import Trace, from_counts


@dataclass(frozen=True)
class StoredEndpoint:
    trace: Trace
    cold_start_s: float
    cold_start_dist: str | None
    service_time_s: float
    concurrency: int
    price_per_worker_hour: float
    target_cold_rate: float


def stored_endpoint(settings, store, name: str, *, seed: int = 0) -> StoredEndpoint:
    """The endpoint's whole stored history (each minute's requests spread uniformly within it,
    seeded, as for a per-minute file) and its capacity as configured; an endpoint with
    history but no config takes the defaults, as `forecast` and `plan` do."""
    first, last = store.count_span(name)
    if last is None:
        known = ", ".join(sorted(ep.name for ep in settings.endpoints)) or "none configured"
        raise InputError(f"no history for {name!r} in the store (configured endpoints: {known}); "
                         "ingest or sync some first")
    ep = settings.endpoint_or_default(name)
    rows = store.history(name, to_utc(first), to_utc(last) + timedelta(minutes=1))
    t = np.array([to_utc(r[0]).timestamp() for r in rows], dtype=np.float64)
    n = np.array([int(r[1]) for r in rows], dtype=np.int64)
    trace: Trace = from_counts(name, t, n, seed=seed)
    cap = ep.capacity
    return StoredEndpoint(trace=trace, cold_start_s=cap.cold_start_s, cold_start_dist=cap.cold_start_dist,
                          service_time_s=cap.service_time_s, concurrency=cap.concurrency,
                          price_per_worker_hour=cap.price_per_worker_hour,
                          target_cold_rate=settings.planner_for(ep).target_cold_rate)

