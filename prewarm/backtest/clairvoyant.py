"""The clairvoyant lower bound: what serving every request warm costs when the future is known.

Every request starts on arrival. The k-th worker is needed while more than (k-1) x concurrency
requests are in service; each such level is started one (mean) cold start before it is
needed and, between needs, kept warm across gaps shorter than a cold start (cheaper than
stopping and loading again). Summed over levels this is the least worker-time any policy can
spend with no cold request, up to the spread of cold-start durations.
"""
from __future__ import annotations

import math

import numpy as np


def lower_bound_worker_s(arrivals: np.ndarray, service_s: np.ndarray, concurrency: int,
                         cold_start_s: float) -> tuple[float, float]:
    """(worker-seconds, busy worker-seconds) of the clairvoyant schedule."""
    if len(arrivals) == 0:
        return 0.0, 0.0
    times = np.concatenate([arrivals, arrivals + service_s])
    deltas = np.concatenate([np.ones(len(arrivals), dtype=np.int64), -np.ones(len(arrivals), dtype=np.int64)])
    order = np.lexsort((deltas, times))
    times, in_service = times[order], np.cumsum(deltas[order])
    workers = -(-in_service // concurrency)  # ceil
    # For each level, the times it switches on and off.
    on: dict[int, float] = {}
    last_off: dict[int, float] = {}
    total = busy = 0.0
    prev = 0
    for t, w in zip(times.tolist(), workers.tolist()):
        if w > prev:
            for level in range(prev + 1, w + 1):
                off = last_off.get(level)
                total += cold_start_s if off is None else min(t - off, cold_start_s)
                on[level] = t
        elif w < prev:
            for level in range(w + 1, prev + 1):
                span = t - on.pop(level)
                total += span
                busy += span
                last_off[level] = t
        prev = w
    return total, busy
