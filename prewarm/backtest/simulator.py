"""The worker model the backtester replays traffic against. Event-driven: work per request and
per command, none per idle second, so weeks of traffic replay in seconds.

* A worker has `concurrency` slots; a request holds one for its service time.
* A worker is usable a cold start after it starts (fixed, or sampled per start from measured
  durations with a fixed seed).
* A request that cannot start within `cold_threshold_s` (2 s) is cold: the platform starts an
  on-demand worker for it, and the request runs on whichever slot frees first (that worker
  once loaded, or an existing one).
* Requests go to the oldest worker that can take them (packing), as serverless platforms route,
  so surplus workers fall idle and stop.
* The commanded target is a floor: the platform keeps at least that many workers (started at
  once when the target rises); a worker beyond it stops once idle for the idle timeout (the
  command's, else the platform's).
* Cost is worker-seconds from start to stop, loading included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class ColdStart:
    """Fixed seconds, or draws (seeded) from measured durations."""

    def __init__(self, fixed_s: float | None = None, samples_s: np.ndarray | None = None, seed: int = 0):
        if (fixed_s is None) == (samples_s is None):
            raise ValueError("give either a fixed cold start or measured samples")
        self.fixed_s = fixed_s
        self.samples_s = None if samples_s is None else np.asarray(samples_s, dtype=float)
        self._rng = np.random.default_rng(seed)
        self._buf: list[float] = []

    def sample(self) -> float:
        if self.fixed_s is not None:
            return self.fixed_s
        if not self._buf:
            self._buf = self._rng.choice(self.samples_s, size=4096).tolist()
        return self._buf.pop()

    def percentile(self, q: float) -> float:
        return self.fixed_s if self.fixed_s is not None else float(np.percentile(self.samples_s, q))

    def mean(self) -> float:
        return self.fixed_s if self.fixed_s is not None else float(self.samples_s.mean())

    def describe(self) -> str:
        if self.fixed_s is not None:
            return f"{self.fixed_s:g}s"
        p = np.percentile(self.samples_s, [50, 90, 99])
        return f"measured (n={len(self.samples_s)}, p50 {p[0]:.1f}s, p90 {p[1]:.1f}s, p99 {p[2]:.1f}s)"


@dataclass(frozen=True)
class WorkerModel:
    concurrency: int = 1
    platform_idle_timeout_s: float = 60.0
    cold_threshold_s: float = 2.0


class _Worker:
    __slots__ = ("start", "ready", "slots", "busy_until", "cover_end", "busy_s", "on_demand")

    def __init__(self, start: float, ready: float, concurrency: int, on_demand: bool):
        self.start = start
        self.ready = ready
        self.slots = [ready] * concurrency  # when each slot is next free
        self.busy_until = ready
        self.cover_end = ready
        self.busy_s = 0.0  # time with at least one request in service
        self.on_demand = on_demand


class Simulator:
    """Feed it commands and arrivals in time order (`command`, `serve`), then `finish`."""

    def __init__(self, model: WorkerModel, cold_start: ColdStart, start_s: float, arrivals: np.ndarray):
        self.model = model
        self.arrivals = arrivals
        n_requests = len(arrivals)
        self.cold_start = cold_start
        self.now = start_s
        self.workers: list[_Worker] = []
        self.target = 0
        self.target_since = start_s
        self.timeout = model.platform_idle_timeout_s
        self.next_expiry = math.inf
        self.cold = np.zeros(n_requests, dtype=bool)
        self.wait_s = np.zeros(n_requests)
        self.served = 0
        self.lifetimes: list[tuple[float, float, float]] = []  # (start, ready, stop) per worker
        self.worker_s = 0.0
        self.busy_s = 0.0
        self.starts = 0
        self.on_demand_starts = 0
        self.commands = 0
        self._last_command: tuple[int, float] | None = None

    # -- commands ---------------------------------------------------------------------------
    def prewarm(self, n: int) -> None:
        """Start the replay with n workers already warm."""
        for _ in range(n):
            self.workers.append(_Worker(self.now, self.now, self.model.concurrency, False))

    def command(self, t: float, warm_workers: int, idle_timeout_s: float | None) -> None:
        self._expire(t, strict=True)  # a worker idle until exactly t is still there for the command
        self.now = max(self.now, t)
        timeout = self.model.platform_idle_timeout_s if idle_timeout_s is None else idle_timeout_s
        if self._last_command != (warm_workers, timeout):
            self.commands += 1
            self._last_command = (warm_workers, timeout)
        self.target, self.target_since, self.timeout = warm_workers, t, timeout
        while len(self.workers) < warm_workers:
            self._start(t, on_demand=False)
        self._refresh_expiry()

    # -- requests ---------------------------------------------------------------------------
    def serve(self, a: float, service_s: float) -> None:
        if a >= self.next_expiry:
            self._expire(a)
        self.now = a
        limit = a + self.model.cold_threshold_s
        best, best_st = None, math.inf
        for w in self.workers:
            ready = w.ready
            if ready > limit:
                continue
            st = min(w.slots)  # max(a, ready, the first free slot), without the builtin's call cost
            if ready > st:
                st = ready
            if st <= a:
                best, best_st = w, a
                break
            if st <= limit and st < best_st:
                best, best_st = w, st
        i = self.served
        self.served += 1
        if best is None:
            self.cold[i] = True
            # The platform starts a worker; the request runs wherever a slot frees first.
            best_st = math.inf
            for w in self.workers:
                st = max(a, w.ready, min(w.slots))
                if st < best_st:
                    best, best_st = w, st
            fresh = self._start(a, on_demand=True)
            if fresh.ready <= best_st:
                best, best_st = fresh, fresh.ready
        self.wait_s[i] = best_st - a
        end = best_st + service_s
        slots = best.slots
        k = slots.index(min(slots))
        slots[k] = end
        if end > best.busy_until:
            best.busy_until = end
        # Busy time: union of service intervals (starts are nearly ordered per worker).
        if end > best.cover_end:
            best.busy_s += end - max(best_st, best.cover_end)
            best.cover_end = end

    # -- internals --------------------------------------------------------------------------
    def _start(self, t: float, on_demand: bool) -> _Worker:
        w = _Worker(t, t + self.cold_start.sample(), self.model.concurrency, on_demand)
        self.workers.append(w)
        self.starts += 1
        self.on_demand_starts += on_demand
        expiry = w.busy_until + self.timeout
        if len(self.workers) > self.target and expiry < self.next_expiry:
            self.next_expiry = expiry
        return w

    def _stop(self, w: _Worker, at: float) -> None:
        self.workers.remove(w)
        self.lifetimes.append((w.start, w.ready, at))
        self.worker_s += at - w.start
        self.busy_s += w.busy_s

    def _expire(self, t: float, strict: bool = False) -> None:
        """Stop workers beyond the target that have been idle for the timeout by time t."""
        if t < self.next_expiry or (strict and t == self.next_expiry):
            return
        while len(self.workers) > self.target:
            w = min(self.workers, key=lambda x: x.busy_until)
            expiry = w.busy_until + self.timeout
            if expiry > t or (strict and expiry == t):
                break
            self._stop(w, max(expiry, self.target_since))
        self._refresh_expiry()

    def _refresh_expiry(self) -> None:
        if len(self.workers) > self.target:
            self.next_expiry = min(w.busy_until for w in self.workers) + self.timeout
        else:
            self.next_expiry = math.inf

    def recent_cold(self, since: float) -> tuple[int, int]:
        """(cold requests, requests) among those served so far that arrived at or after since."""
        lo = int(np.searchsorted(self.arrivals[: self.served], since))
        return int(self.cold[lo:self.served].sum()), self.served - lo

    def totals(self, at: float) -> tuple[float, float]:
        """(worker-seconds, busy worker-seconds) spent up to `at`, running workers included."""
        worker = self.worker_s + sum(max(0.0, at - w.start) for w in self.workers)
        busy = self.busy_s + sum(w.busy_s for w in self.workers)
        return worker, busy

    def finish(self, end_s: float) -> None:
        self._expire(end_s)
        for w in list(self.workers):
            self._stop(w, max(end_s, w.start))
