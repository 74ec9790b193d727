"""The policies prewarm is measured against, as command schedules computed from the trace.

Each decides from the past only (except `always-on`, sized in hindsight to the window's peak,
and the clairvoyant bound in clairvoyant.py). A schedule is a list of Cmd in time order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Cmd:
    t: float  # epoch seconds
    warm_workers: int
    idle_timeout_s: float | None = None  # None: the platform's own
    reason: dict[str, Any] = field(default_factory=dict, compare=False)


def static(start: float, floor: int, keepalive_s: float) -> list[Cmd]:
    """The hybrid pattern users configure today: F always-on workers, keep-alive K."""
    return [Cmd(start, floor, keepalive_s, {"why": f"static F={floor} K={keepalive_s:g}s"})]


def in_service_peak(arrivals: np.ndarray, service_s: np.ndarray) -> int:
    """Most requests in service at once (every request started on arrival)."""
    if len(arrivals) == 0:
        return 0
    times = np.concatenate([arrivals, arrivals + service_s])
    steps = np.concatenate([np.ones(len(arrivals)), -np.ones(len(arrivals))])
    order = np.lexsort((steps, times))  # ends before starts at the same instant
    return int(np.cumsum(steps[order]).max())


def always_on(start: float, arrivals, service_s, concurrency: int) -> list[Cmd]:
    n = math.ceil(in_service_peak(arrivals, service_s) / concurrency)
    return [Cmd(start, n, None, {"why": f"always-on for the window's peak ({n})"})]


def reactive(start: float, end: float, arrivals: np.ndarray, service_s: float, concurrency: int,
             utilisation: float = 0.7) -> list[Cmd]:
    """Target tracking on the last minute: workers for last minute's load at 70% utilisation."""
    edges = np.arange(start - 60.0, end, 60.0)
    counts = np.histogram(arrivals, bins=np.append(edges, edges[-1] + 60.0))[0]
    out: list[Cmd] = []
    last = None
    for i, t in enumerate(edges[1:], start=0):
        load = counts[i] / 60.0 * service_s
        n = math.ceil(load / (concurrency * utilisation) - 1e-9)
        if n != last:
            out.append(Cmd(float(t), n, None, {"why": "reactive", "last_minute": int(counts[i])}))
            last = n
    return out


def hybrid_histogram(start: float, end: float, arrivals: np.ndarray, service_s: np.ndarray,
                     history_arrivals: np.ndarray, history_service_s: np.ndarray,
                     bin_s: float = 60.0, range_s: float = 4 * 3600.0, head: float = 5.0,
                     tail: float = 99.0, margin: float = 0.10, min_samples: int = 10,
                     cv_threshold: float = 2.0) -> list[Cmd]:
    """Shahrad et al., USENIX ATC'20 ("Serverless in the Wild"), per endpoint (their app).

    Idle times (end of the last running request to the next arrival) go in a histogram of
    1-minute bins over 4 hours. When the endpoint falls idle, the policy takes the pre-warm
    window at the 5th percentile (10% lower) and the keep-alive window at the 99th percentile
    (10% higher) minus the pre-warm window:
    * pre-warm window 0: the endpoint's workers stay loaded for the keep-alive window (the
      platform's idle timeout set to it), so a burst's workers are there for the next burst;
    * otherwise: unload at once (idle timeout 0), load one worker at the end of the pre-warm
      window and keep it for the keep-alive window, then unload.
    Not representative (fewer than `min_samples` idle times, bin counts with a coefficient of
    variation below 2, or most idle times beyond 4 h): the paper's conservative fallback, no
    pre-warm and a keep-alive of the histogram's range (4 h). (The paper switches to ARIMA
    when most idle times are out of range; we keep the fallback there too.)
    """
    nbins = int(range_s // bin_s)
    hist = np.zeros(nbins)
    oob = 0
    all_a = np.concatenate([history_arrivals, arrivals])
    ends = all_a + np.concatenate([history_service_s, service_s])
    first_eval = len(history_arrivals)
    out: list[Cmd] = [Cmd(start, 0, range_s, {"why": "hybrid-histogram start (fallback until idle)"})]
    last_end = -math.inf
    for i in range(len(all_a)):
        a = all_a[i]
        if last_end > -math.inf and a >= last_end:
            b = int((a - last_end) // bin_s)
            if b < nbins:
                hist[b] += 1
            else:
                oob += 1
        last_end = max(last_end, ends[i])
        if i < first_eval - 1:
            continue
        nxt = all_a[i + 1] if i + 1 < len(all_a) else end
        if nxt <= last_end:
            continue  # the endpoint is still busy when the next request arrives: not idle
        pre, keep, why = idle_windows(hist, oob, bin_s, range_s, head, tail, margin, min_samples, cv_threshold)
        e = last_end
        if pre <= 0:
            seq = [(e, 0, keep, "keep-alive")]
        else:
            seq = [(e, 0, 0.0, "unload"), (e + pre, 1, keep, "pre-warm"), (e + pre + keep, 0, 0.0, "keep-alive over")]
        for t, n, timeout, what in seq:
            if t >= nxt or t >= end:
                break
            if t >= start:
                out.append(Cmd(float(t), n, timeout, {"why": f"{why}: {what}"}))
    return out


def idle_windows(hist: np.ndarray, oob: int, bin_s: float, range_s: float, head: float, tail: float,
                 margin: float, min_samples: int, cv_threshold: float) -> tuple[float, float, str]:
    """(pre-warm window, keep-alive window, why) from the idle-time histogram."""
    total = hist.sum()
    cv = hist.std() / hist.mean() if total > 0 else 0.0
    if total < min_samples or cv < cv_threshold or oob > total:
        return 0.0, range_s, "hybrid-histogram fallback (4 h keep-alive)"
    cdf = np.cumsum(hist) / total
    # Percentiles at bin edges: the head bin's lower edge, the tail bin's upper edge.
    pre = float(np.searchsorted(cdf, head / 100.0)) * bin_s * (1 - margin)
    keep = float(np.searchsorted(cdf, tail / 100.0) + 1) * bin_s * (1 + margin) - pre
    return pre, keep, f"hybrid-histogram pre-warm {pre:.0f}s keep {keep:.0f}s"
