"""Demand -> workers, and the break-even of a speculative worker. Pure arithmetic.

Two questions, one model: arrivals are Poisson at the forecast rate, a request holds one of a
worker's `concurrency` slots for `service_time_s`.

* How many workers for a busy step? The number of requests in service is Poisson with mean
  A = rate x service time (M/G/inf), and the share of arrivals that find every slot busy is
  Erlang's loss formula B(slots, A). A request that finds no free slot is a cold request (the
  platform starts a worker for it), so we take the fewest workers whose loss is at most the
  blocking target. This covers "arrivals during service"; arrivals during a start-up are
  covered because the pool is commanded a lead time ahead (see core).
* Bursty traffic: real arrivals are burstier than Poisson (NASA's per-minute counts vary 5x
  more than a Poisson count of the same mean). With `peakedness` z > 1 (the variance over the
  mean of the number of requests in service) the loss is Hayward's approximation, Erlang's
  formula on the load and the slots both divided by z: the pool is sized for the peak within
  the minute rather than its mean (planner.burstiness estimates z from recent history).
* Is a worker worth holding through a lull of length L? The first arrival in the lull would be
  cold without it; P(at least one arrival) = 1 - exp(-rate x L). Hold when that probability
  times the value of an avoided cold start pays for L seconds of a worker.
"""
from __future__ import annotations

import math

from .model import CapacityModel


def erlang_b(servers: int, load: float) -> float:
    """Erlang loss: share of Poisson arrivals that find all `servers` busy at offered `load`."""
    if load <= 0:
        return 0.0
    b = 1.0  # B(0, A) = 1; recurrence B(n) = A B(n-1) / (n + A B(n-1)) is numerically stable
    for n in range(1, servers + 1):
        b = load * b / (n + load * b)
    return b


class Loss:
    """Share of arrivals that find every slot busy, as a function of the number of slots, at one
    offered load: Erlang's B for Poisson arrivals (peakedness 1), Hayward's B(S / z, A / z) for
    peaked ones. Slots / z is fractional: interpolated log-linearly between whole numbers of
    servers (exact at peakedness 1). B at whole servers is computed once, by the recurrence."""

    __slots__ = ("peakedness", "_load", "_b")

    def __init__(self, load: float, peakedness: float = 1.0):
        if peakedness < 1.0:
            raise ValueError("peakedness is at least 1 (Poisson)")
        self.peakedness = peakedness
        self._load = max(0.0, load) / peakedness
        self._b = [1.0]  # B(0) = 1

    def _at(self, servers: int) -> float:
        b = self._b
        if len(b) <= servers:
            self._extend(servers)
        return b[servers]

    def _extend(self, servers: int) -> None:
        b, load = self._b, self._load
        last = b[-1]
        for n in range(len(b), servers + 1):
            last = load * last / (n + load * last) if load > 0 else 0.0
            b.append(last)

    def __call__(self, slots: int) -> float:
        x = slots / self.peakedness
        k = math.floor(x + 1e-12)
        f = x - k
        b = self._b
        if len(b) <= k + 1:
            self._extend(k + 1)
        lo = b[k]
        if f < 1e-9:
            return lo
        hi = b[k + 1]
        if hi <= 0.0 or lo <= 0.0:
            return lo * (1 - f)
        return math.exp(math.log(lo) * (1 - f) + math.log(hi) * f)


def offered_load(rate_per_min: float, capacity: CapacityModel) -> float:
    """Mean number of requests in service (Little's law): arrivals per second x service time."""
    return max(0.0, rate_per_min) / 60.0 * capacity.service_time_s


def workers_for_rate(rate_per_min: float, capacity: CapacityModel,
                     blocking: float | None = None, limit: int = 10_000, peakedness: float = 1.0) -> int:
    """Fewest workers for `rate_per_min`: with `blocking`, the fewest whose loss (Erlang's, or
    Hayward's at `peakedness` > 1) is at most `blocking`; without, the offered load over
    concurrency rounded up (the mean only). At least one whenever a request is expected.
    Non-decreasing in the rate."""
    if rate_per_min <= 0:
        return 0
    load = offered_load(rate_per_min, capacity)
    mean_workers = max(1, math.ceil(load / capacity.concurrency - 1e-9))
    if blocking is None:
        return mean_workers
    if blocking <= 0:
        raise ValueError("blocking target must be positive")
    # Loss falls with every slot; start from the mean (loss there is well above any sensible
    # target) and add workers until the loss is low enough.
    loss = Loss(load, peakedness)
    workers = mean_workers
    while loss(workers * capacity.concurrency) > blocking and workers < limit:
        workers += 1
    return workers


def p_any_arrival(rate_per_min: float, window_s: float) -> float:
    """P(at least one Poisson arrival in `window_s` at `rate_per_min`)."""
    if rate_per_min <= 0 or window_s <= 0:
        return 0.0
    return -math.expm1(-rate_per_min / 60.0 * window_s)


def hold_pays(rate_per_min: float, window_s: float, cold_start_value_s: float) -> bool:
    """Does a warm worker held for `window_s` pay for itself? It avoids (about) one cold start
    when at least one request arrives in the window; that is worth `cold_start_value_s`
    worker-seconds; holding costs `window_s` worker-seconds."""
    return p_any_arrival(rate_per_min, window_s) * cold_start_value_s >= window_s


def break_even_rate_per_hour(cold_start_value_s: float) -> float:
    """The rate below which a worker held through a lull costs more than the cold starts it
    avoids (small-window limit of hold_pays): one avoided cold start per value seconds."""
    return math.inf if cold_start_value_s <= 0 else 3600.0 / cold_start_value_s


def workers_for_value(rate_per_min: float, capacity: CapacityModel, cold_start_value_s: float,
                      limit: int = 10_000, peakedness: float = 1.0) -> int:
    """Cost-optimal workers when an avoided cold start is worth `cold_start_value_s`
    worker-seconds: add worker N while the cold starts it avoids per second, rate x
    (B((N-1)c) - B(Nc)), times the value pay for its one worker-second per second. Worker 1 is
    the speculative worker through a lull (there B(0) = 1: every arrival would be cold). B is
    Erlang's loss, or Hayward's at `peakedness` > 1: bursts make the workers above the mean
    load worth more, and those at it worth less.
    Non-decreasing in the rate: rate x (B(n-1) - B(n)) is Erlang's improvement function over the
    service time, which grows with the load."""
    return workers_for_values(rate_per_min, capacity, (cold_start_value_s,), limit, peakedness)[0]


def workers_for_values(rate_per_min: float, capacity: CapacityModel, cold_start_values: tuple[float, ...],
                       limit: int = 10_000, peakedness: float = 1.0) -> tuple[int, ...]:
    """workers_for_value for several values at one rate: the losses are computed once (the
    planner sizes each step at the full value and at the burst share of it)."""
    return fewest_workers_for_values(rate_per_min, capacity.service_time_s, capacity.concurrency,
                                     cold_start_values, limit, peakedness)


def fewest_workers_for_values(rate_per_min: float, service_time_s: float, concurrency: int,
                              cold_start_values: tuple[float, ...], limit: int = 10_000,
                              peakedness: float = 1.0) -> tuple[int, ...]:
    """workers_for_values on the capacity's two numbers the sizing uses: plain arguments are a
    cheap memo key (the planner memoizes this per distinct rate)."""
    if rate_per_min <= 0:
        return tuple(0 for _ in cold_start_values)
    per_s = rate_per_min / 60.0
    # Loss(load, peakedness)(w x concurrency) for w = 1, 2, ..., inlined (the planner's hot
    # path: every step of every endpoint), the same arithmetic in the same order.
    if peakedness < 1.0:
        raise ValueError("peakedness is at least 1 (Poisson)")
    load = max(0.0, per_s * service_time_s) / peakedness
    c = concurrency
    b = [1.0]  # Erlang's B at whole servers, by the recurrence
    by_workers = [1.0]  # the loss with w workers, filled as far as a value's search goes
    log, exp, floor = math.log, math.exp, math.floor
    out = []
    for value in cold_start_values:
        if value <= 0:
            out.append(0)
            continue
        workers, before = 0, 1.0
        while workers < limit:
            if workers + 1 < len(by_workers):
                after = by_workers[workers + 1]
            else:
                x = (workers + 1) * c / peakedness
                k = floor(x + 1e-12)
                f = x - k
                while len(b) <= k + 1:
                    last = b[-1]
                    b.append(load * last / (len(b) + load * last) if load > 0 else 0.0)
                lo = b[k]
                if f < 1e-9:
                    after = lo
                else:
                    hi = b[k + 1]
                    after = lo * (1 - f) if hi <= 0.0 or lo <= 0.0 else exp(log(lo) * (1 - f) + log(hi) * f)
                by_workers.append(after)
            if per_s * (before - after) * value < 1.0:
                break
            workers, before = workers + 1, after
        out.append(workers)
    return tuple(out)


def fewest_workers_for_values_array(rates_per_min, service_time_s: float, concurrency: int,
                                    cold_start_values: tuple[float, ...], limit: int = 10_000,
                                    peakedness: float = 1.0) -> list:
    """fewest_workers_for_values for every rate of an array at once (numpy int arrays, one per
    value). The planner sizes every step of every endpoint each cycle: at fleet scale the rates
    barely recur, so a memo of the scalar search misses and the search itself is the cost.

    The scalar search raises the worker count one at a time and stops at the first worker that
    does not pay. Every rate still searching holds the same count, so the loss with w workers
    is one array operation over the rates still searching: the same recurrence, interpolation
    and stopping test, in the same order. At peakedness 1 (Poisson) the result is identical to
    the scalar search; above 1 the interpolation uses numpy's exp and log, which can differ from
    the math module's in the last bit (a decision moves only if it lay within that bit of
    break-even)."""
    import numpy as np

    if peakedness < 1.0:
        raise ValueError("peakedness is at least 1 (Poisson)")
    rates = np.asarray(rates_per_min, dtype=float)
    out = [np.zeros(len(rates), dtype=np.int64) for _ in cold_start_values]
    where = np.flatnonzero(~(rates <= 0))  # as the scalar test: NaN searches on
    if not len(where):
        return out
    per_s = rates[where] / 60.0
    product = per_s * service_time_s
    load = np.where(product > 0.0, product, 0.0) / peakedness  # max(0.0, x), as Python's max
    values = [float(v) for v in cold_start_values]
    searching = [np.full(len(where), v > 0) for v in values]
    before = [np.ones(len(where)) for _ in values]
    levels = {0: np.ones(len(where))}  # Erlang's B at whole servers, the levels still needed
    top, w = 0, 0
    while w < limit:
        alive = np.logical_or.reduce(searching)
        if alive.sum() <= 4:  # a few long searches left: array overhead beats the work, go scalar
            for i in np.flatnonzero(alive).tolist():
                sized = fewest_workers_for_values(float(rates[where[i]]), service_time_s, concurrency,
                                                  cold_start_values, limit, peakedness)
                for j in range(len(values)):
                    if searching[j][i]:
                        out[j][where[i]] = sized[j]
            break
        if alive.sum() < 0.75 * len(alive):  # stop computing losses for rates that are done
            where, per_s, load = where[alive], per_s[alive], load[alive]
            searching = [s[alive] for s in searching]
            before = [b[alive] for b in before]
            levels = {n: b[alive] for n, b in levels.items()}
        x = (w + 1) * concurrency / peakedness
        k = math.floor(x + 1e-12)
        f = x - k
        while top < k + 1:  # the recurrence; 0 where the load is 0, as the scalar
            last = levels[top]
            top += 1
            levels[top] = load * last / (top + load * last)
        for n in [n for n in levels if n < k]:
            del levels[n]
        lo = levels[k]
        if f < 1e-9:
            after = lo
        else:
            hi = levels[k + 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mixed = np.exp(np.log(lo) * (1 - f) + np.log(hi) * f)
            after = np.where((hi <= 0.0) | (lo <= 0.0), lo * (1 - f), mixed)
        w += 1
        for j, value in enumerate(values):
            goes_on = searching[j] & ~(per_s * (before[j] - after) * value < 1.0)
            out[j][where[goes_on]] = w
            before[j] = np.where(goes_on, after, before[j])
            searching[j] = goes_on
    return out
