"""The static frontier: every (floor F, keep-alive K) a user could configure, replayed, and its
lower envelope (the best any static setting reaches, chosen in hindsight per endpoint).

The envelope is a step function, not an interpolation: at cold-start rate c it is the fewest
worker-hours of any static setting whose cold-start rate is at most c (mixing two settings
to land between them is not something a user can configure).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .replay import BacktestConfig, Result
from .replay import replay as run  # static settings: no guard
from .traces import Trace

KEEPALIVES_S = (30, 60, 120, 300, 600, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600)


@dataclass(frozen=True)
class Point:
    floor: int
    keepalive_s: float
    cold_rate: float
    worker_hours: float


def sweep(trace: Trace, cfg: BacktestConfig, max_floor: int | None = None,
          keepalives: tuple[float, ...] = KEEPALIVES_S,
          progress: Callable[[int, int], None] | None = None) -> list[Point]:
    """Replay F = 0, 1, 2, ... (until a floor alone has no cold start, or max_floor) x K."""
    points: list[Point] = []
    limit = max_floor if max_floor is not None else 64
    floors = _floors(limit)
    total = len(floors) * len(keepalives)
    done = 0
    for floor in floors:
        zero_cold = True
        for keep in keepalives:
            r = run(trace, f"static:{floor}:{keep:g}", cfg)
            points.append(Point(floor, keep, r.cold_rate, r.worker_hours))
            zero_cold &= r.cold_requests == 0
            done += 1
            if progress:
                progress(done, total)
            if r.cold_requests == 0:
                break  # a longer keep-alive only costs more
        if zero_cold and max_floor is None:
            break
    return points


def _floors(limit: int) -> list[int]:
    """0..8 one by one, then coarser: a busy endpoint needs dozens of workers."""
    out, f = [], 0
    while f <= limit:
        out.append(f)
        f += 1 if f < 8 else max(2, f // 4)
    return out


def envelope(points: list[Point]) -> list[Point]:
    """The Pareto front: no other point has both fewer cold starts and fewer worker-hours."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cold_rate, p.worker_hours)):
        if not front or p.worker_hours < front[-1].worker_hours - 1e-9:
            front.append(p)
    return front


def hours_at(front: list[Point], cold_rate: float) -> float:
    """Fewest worker-hours of a static setting with at most this cold-start rate."""
    ok = [p.worker_hours for p in front if p.cold_rate <= cold_rate + 1e-12]
    return min(ok) if ok else math.inf


def cold_at(front: list[Point], worker_hours: float) -> float:
    """Lowest cold-start rate of a static setting with at most these worker-hours."""
    ok = [p.cold_rate for p in front if p.worker_hours <= worker_hours + 1e-9]
    return min(ok) if ok else math.inf


@dataclass(frozen=True)
class Comparison:
    hours_ratio: float  # predictive worker-hours / envelope's at the same cold-start rate
    cold_ratio: float  # predictive cold-start rate / envelope's at the same worker-hours

    @property
    def beats(self) -> bool:
        """The issue's bar: at most 70% of the hours, or at most half the cold starts."""
        return self.hours_ratio <= 0.70 or self.cold_ratio <= 0.50


def compare(front: list[Point], result: Result) -> Comparison:
    env_hours = hours_at(front, result.cold_rate)
    env_cold = cold_at(front, result.worker_hours)
    hours_ratio = 0.0 if math.isinf(env_hours) else result.worker_hours / env_hours
    if math.isinf(env_cold) and front:
        # Every static setting costs more than the plan: none runs on its worker-hours. The
        # cheapest one stands in (it has more hours than the plan: the comparison favours it).
        env_cold = min(front, key=lambda p: p.worker_hours).cold_rate
    if math.isinf(env_cold):
        cold_ratio = math.inf  # no static setting at all: nothing to compare with
    elif env_cold == 0:
        cold_ratio = 1.0 if result.cold_rate == 0 else math.inf  # both at zero: a tie, not a win
    else:
        cold_ratio = result.cold_rate / env_cold
    return Comparison(hours_ratio, cold_ratio)
