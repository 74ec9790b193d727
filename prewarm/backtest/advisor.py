"""Break-even advisor: for an endpoint's history and prices, is persistent, hybrid or pure
on-demand capacity cheapest at the target cold-start rate? Pure: no I/O, no clock.

The three patterns are static settings of the same worker model the backtester replays
(frontier.sweep: floor F x keep-alive K, every point replayed on the history):
* persistent: F always-on workers and no keep-alive beyond them (the shortest K swept), as a
  provisioned endpoint; overflow still starts on-demand workers (cold requests);
* hybrid: F >= 1 always-on workers plus on-demand workers kept alive K;
* on-demand: F = 0, keep-alive K (scale to zero).
Floor hours are billed at the persistent price, the rest at the on-demand price (serverless
GPU seconds usually cost more than a reserved instance's). Each pattern's cheapest setting
that meets the target is reported; the advice is the cheapest of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable

from ..planner.model import StaticSetting
from .frontier import KEEPALIVES_S, Point

KINDS = ("persistent", "hybrid", "on-demand")


@dataclass(frozen=True)
class Prices:
    on_demand_per_hour: float = 1.0
    persistent_per_hour: float = 1.0

    def __post_init__(self) -> None:
        if self.on_demand_per_hour < 0 or self.persistent_per_hour < 0:
            raise ValueError("prices cannot be negative")


@dataclass(frozen=True)
class Option:
    kind: str
    floor: int
    keepalive_s: float
    cold_rate: float
    worker_hours: float
    floor_hours: float  # of worker_hours, the always-on part
    cost: float

    def as_dict(self) -> dict:
        return {"kind": self.kind, "floor": self.floor, "keepalive_s": self.keepalive_s,
                "cold_rate": round(self.cold_rate, 5), "worker_hours": round(self.worker_hours, 3),
                "floor_hours": round(self.floor_hours, 3), "cost": round(self.cost, 3)}


@dataclass(frozen=True)
class Advice:
    target_cold_rate: float
    best: Option | None  # None: no setting swept meets the target
    options: dict[str, Option | None]

    def as_dict(self) -> dict:
        return {"target_cold_rate": self.target_cold_rate,
                "advice": self.best.kind if self.best else None,
                "options": {k: (o.as_dict() if o else None) for k, o in self.options.items()}}


def kind_of(point: Point, shortest_keepalive_s: float) -> str:
    if point.floor == 0:
        return "on-demand"
    return "persistent" if point.keepalive_s <= shortest_keepalive_s else "hybrid"


def advise_from_points(points: Iterable[Point], window_hours: float, prices: Prices,
                       target_cold_rate: float) -> Advice:
    """The cheapest setting of each pattern with a cold-start rate at most the target."""
    if not 0 < target_cold_rate < 1:
        raise ValueError("target_cold_rate must be between 0 and 1")
    points = list(points)
    shortest = min((p.keepalive_s for p in points), default=0.0)
    best: dict[str, Option | None] = {k: None for k in KINDS}
    for p in points:
        if p.cold_rate > target_cold_rate:
            continue
        floor_hours = min(p.worker_hours, p.floor * window_hours)
        cost = floor_hours * prices.persistent_per_hour + (p.worker_hours - floor_hours) * prices.on_demand_per_hour
        kind = kind_of(p, shortest)
        option = Option(kind, p.floor, p.keepalive_s, p.cold_rate, p.worker_hours, floor_hours, cost)
        current = best[kind]
        if current is None or (option.cost, option.cold_rate) < (current.cost, current.cold_rate):
            best[kind] = option
    met = [o for o in best.values() if o is not None]
    return Advice(target_cold_rate, min(met, key=lambda o: (o.cost, o.cold_rate)) if met else None, best)


def advise(trace, cfg, prices: Prices, target_cold_rate: float, max_floor: int | None = None,
           keepalives: tuple[float, ...] = KEEPALIVES_S) -> Advice:
    """Replay the static settings on `trace` over cfg's window and advise."""
    from .frontier import sweep

    points = sweep(trace, cfg, max_floor=max_floor, keepalives=keepalives)
    return advise_from_points(points, (cfg.end_s - cfg.start_s) / 3600.0, prices, target_cold_rate)


def render(endpoint: str, advice: Advice) -> str:
    lines = [f"{endpoint}: advice at a {100 * advice.target_cold_rate:g}% cold-start target: "
             f"{advice.best.kind if advice.best else 'none of the swept settings meets it'}"]
    for kind in KINDS:
        o = advice.options[kind]
        if o is None:
            lines.append(f"  {kind:10s}  no setting meets the target")
        else:
            lines.append(f"  {kind:10s}  F={o.floor} K={o.keepalive_s:g}s  cold {100 * o.cold_rate:5.2f}%  "
                         f"{o.worker_hours:8.1f} worker-h ({o.floor_hours:.1f} always-on)  cost {o.cost:9.2f}")
    return "\n".join(lines)


# -- the best static setting of the trailing week, online ------------------------------------
TRAILING_WINDOW_S = 7 * 86400.0  # the history a static setting is judged on
MIN_HISTORY_S = 86400.0  # under a day of history: no judgement (the plan runs unguarded)


class TrailingSweep:
    """Static (floor F, keep-alive K) settings replayed on the endpoint's history of the last
    `window_s` before `now_s`, cut at the ingest delay (what the store holds at `now_s`,
    nothing later), each replayed at most once. `cfg` is the worker model (a
    runner.BacktestConfig: concurrency, cold starts, platform idle timeout, service time); its
    window is replaced by the trailing one. `keepalives` (ascending) are the ones the provider
    can set (only the platform's own for a count-only provider)."""

    def __init__(self, trace, now_s: float, cfg, *, ingest_delay_s: float = 60.0,
                 window_s: float = TRAILING_WINDOW_S, keepalives: tuple[float, ...] = KEEPALIVES_S):
        self.end = now_s - ingest_delay_s
        first = float(trace.arrivals[0]) if len(trace) else self.end
        self.start = max(self.end - window_s, first)
        self.past = trace.between(self.start, self.end)
        self.cfg = replace(cfg, start_s=self.start, end_s=self.end, warmup_s=0.0)
        self.keepalives = tuple(keepalives)
        self.hours = (self.end - self.start) / 3600.0
        self.replays = 0
        self._points: dict[tuple[int, float], Point] = {}

    @property
    def span_s(self) -> float:
        return self.end - self.start

    def point(self, floor: int, k: int) -> Point:
        from .replay import replay as run

        key = (floor, self.keepalives[k])
        if key not in self._points:
            r = run(self.past, f"static:{floor}:{self.keepalives[k]:g}", self.cfg)
            self._points[key] = Point(floor, self.keepalives[k], r.cold_rate, r.worker_hours)
            self.replays += 1
        return self._points[key]

    def shortest_meeting(self, floor: int, cold_rate: float) -> Point | None:
        """The shortest K at this floor whose cold rate is at most `cold_rate` (cold starts fall
        with K at a fixed F: bisection)."""
        ks = self.keepalives
        if self.point(floor, len(ks) - 1).cold_rate > cold_rate:
            return None
        lo, hi = 0, len(ks) - 1  # hi meets it
        while lo < hi:
            mid = (lo + hi) // 2
            if self.point(floor, mid).cold_rate <= cold_rate:
                hi = mid
            else:
                lo = mid + 1
        return self.point(floor, hi)

    def cheapest(self, cold_rate: float, near_floor: int | None = None, max_floor: int = 64) -> Point | None:
        """The fewest worker-hours of a static setting with at most `cold_rate`. Floors stop once
        F always-on workers alone cost more than the best found; with `near_floor` (the last
        answer) only it and the floors beside it are searched first (a day moves the answer
        little; the busiest endpoints' replays are the cost), all floors if none meets it."""
        floors = range(max_floor + 1) if near_floor is None else \
            range(max(0, near_floor - 1), min(max_floor, near_floor + 1) + 1)
        best: Point | None = None
        for floor in floors:
            if best is not None and floor * self.hours >= best.worker_hours:
                break
            p = self.shortest_meeting(floor, cold_rate)
            if p is not None and (best is None or p.worker_hours < best.worker_hours):
                best = p
        if best is None and near_floor is not None:
            return self.cheapest(cold_rate, None, max_floor)
        return best

    def setting(self, p: Point) -> StaticSetting:
        """As the planner takes it: keep-alives at or below the platform's come back as None."""
        platform = self.cfg.worker.platform_idle_timeout_s
        keep = None if p.keepalive_s <= platform or math.isclose(p.keepalive_s, platform) else p.keepalive_s
        return StaticSetting(p.floor, keep, p.cold_rate, p.worker_hours)


def trailing_static(trace, now_s: float, cfg, target_cold_rate: float, *, ingest_delay_s: float = 60.0,
                    window_s: float = TRAILING_WINDOW_S, min_history_s: float = MIN_HISTORY_S,
                    keepalives: tuple[float, ...] = KEEPALIVES_S,
                    previous: StaticSetting | None = None) -> StaticSetting | None:
    """The cheapest static setting that met `target_cold_rate` on the trailing week: the
    daemon's question at run time, what would last week's best static setting have cost? None:
    under `min_history_s` of history, or nothing swept meets the target."""
    sweep = TrailingSweep(trace, now_s, cfg, ingest_delay_s=ingest_delay_s, window_s=window_s, keepalives=keepalives)
    if sweep.span_s < min_history_s:
        return None
    best = sweep.cheapest(target_cold_rate, previous.floor if previous is not None else None)
    return sweep.setting(best) if best is not None else None
