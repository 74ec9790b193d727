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

from dataclasses import dataclass
from typing import Iterable

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
