"""How much burstier than Poisson an endpoint's arrivals are, from its recent per-minute counts.
Pure arithmetic (no numpy, no clock): the daemon and the backtester call it on the history
they have, and pass the result to the planner in `Observed.arrival_dispersion`.

The sizing (sizing.Loss) needs the peakedness z of the number of requests in service: its
variance over its mean (1 for Poisson arrivals). Two steps:

* dispersion D of the per-minute counts about their local level (a centered moving mean over
  +- `half_window` minutes, so the daily cycle is not counted as burstiness): D = sum of
  squared deviations / sum of counts. Poisson counts give D = 1; NASA's give about 5.
* peakedness from D: a request holds a slot for s seconds, so the requests in service are
  about a share min(1, s / 60) of a minute's arrivals. The extra variance (D - 1) x mean per
  minute scales with that share squared and the mean with the share: z = 1 + (D - 1) min(1, s/60).
  (For s beyond a minute the occupancy averages over several minutes; taking the minutes'
  deviations as correlated keeps z = D, the cautious side.)
"""
from __future__ import annotations

from typing import Sequence

MAX_PEAKEDNESS = 20.0  # beyond this the approximation means little; cap what one spike can do


def dispersion_index(counts: Sequence[float], half_window: int = 30) -> float | None:
    """Variance over mean of per-minute `counts` (oldest first, whole minutes, zeros included)
    about their centered moving mean over +- half_window minutes. None when the history is
    shorter than one window or holds fewer than 30 requests (too little to tell)."""
    n = len(counts)
    w = 2 * half_window + 1
    if n < w:
        return None
    prefix = [0.0]
    for c in counts:
        prefix.append(prefix[-1] + float(c))
    total = prefix[n - half_window] - prefix[half_window]
    if total < 30:
        return None
    squares = 0.0
    for i in range(half_window, n - half_window):
        level = (prefix[i + half_window + 1] - prefix[i - half_window]) / w
        squares += (float(counts[i]) - level) ** 2
    # A moving mean that includes the minute itself takes 1/w of its variance.
    return squares / total / (1.0 - 1.0 / w)


def peakedness(dispersion: float | None, service_time_s: float, bin_s: float = 60.0) -> float:
    """Peakedness of the requests in service for counts of this dispersion (1 when unknown or
    not over-dispersed), capped at MAX_PEAKEDNESS."""
    if dispersion is None or dispersion <= 1.0:
        return 1.0
    share = min(1.0, max(0.0, service_time_s) / bin_s)
    return min(MAX_PEAKEDNESS, 1.0 + (dispersion - 1.0) * share)
