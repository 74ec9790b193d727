"""Backtest output: a readable table, JSON, the schedule CSV, a PNG plot."""
from __future__ import annotations

import csv
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .frontier import Comparison, Point
from .runner import Result

COLUMNS = ("endpoint", "policy", "requests", "cold_rate", "worker_hours", "idle_worker_hours",
           "cost", "added_latency_p50_s", "added_latency_p99_s", "commands")


def table(results: list[Result]) -> str:
    rows = [COLUMNS]
    for r in results:
        d = r.as_dict()
        rows.append((d["endpoint"], d["policy"], str(d["requests"]), f"{100 * r.cold_rate:.2f}%",
                     f"{r.worker_hours:.1f}", f"{r.idle_worker_hours:.1f}", f"{r.cost:.2f}",
                     f"{r.latency_p50_s:.1f}s", f"{r.latency_p99_s:.1f}s", str(r.commands)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def frontier_table(endpoint: str, front: list[Point], result: Result, comparison: Comparison) -> str:
    lines = [f"static envelope for {endpoint} (best floor F / keep-alive K in hindsight):",
             "  cold_rate  worker_hours  F  K"]
    for p in front:
        lines.append(f"  {100 * p.cold_rate:8.2f}%  {p.worker_hours:12.1f}  {p.floor}  {p.keepalive_s:g}s")
    lines.append(f"  predictive: {100 * result.cold_rate:.2f}% cold at {result.worker_hours:.1f} worker-hours; "
                 f"worker-hours vs envelope at that cold rate {_ratio(comparison.hours_ratio)}, "
                 f"cold rate vs envelope at those worker-hours {_ratio(comparison.cold_ratio)} "
                 f"({'beats' if comparison.beats else 'does not beat'} the envelope)")
    return "\n".join(lines)


def _ratio(x: float) -> str:
    return "n/a" if math.isinf(x) else f"{x:.2f}x"


def frontier_json(front: list[Point], comparison: Comparison) -> dict:
    return {"envelope": [{"floor": p.floor, "keepalive_s": p.keepalive_s, "cold_rate": round(p.cold_rate, 5),
                          "worker_hours": round(p.worker_hours, 3)} for p in front],
            "hours_ratio": None if math.isinf(comparison.hours_ratio) else round(comparison.hours_ratio, 4),
            "cold_ratio": None if math.isinf(comparison.cold_ratio) else round(comparison.cold_ratio, 4),
            "beats_envelope": comparison.beats}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_schedule(path: str | Path, results: list[Result]) -> int:
    """`ts,endpoint,warm_workers,idle_timeout_s`: the commands the daemon would have issued."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ts", "endpoint", "warm_workers", "idle_timeout_s"])
        for r in results:
            for c in r.schedule:
                out.writerow([_iso(c.t), r.endpoint, c.warm_workers,
                              "" if c.idle_timeout_s is None else f"{c.idle_timeout_s:g}"])
                n += 1
    return n


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _legend_above(ax, ncol: int) -> None:
    """The legend in a row above the axes: never over the data."""
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=ncol, frameon=False, fontsize=9,
              borderaxespad=0.2, handlelength=1.8)


def timeline_figure(result: Result, arrivals: np.ndarray, start: float, end: float):
    """Traffic, the forecast band, cold requests (top); workers running and commanded (bottom);
    over the evaluation window [start, end) only."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    minutes = np.arange(start, end, 60.0)
    counts = np.histogram(arrivals, bins=np.append(minutes, end))[0]
    alive = np.zeros(len(minutes))
    for s, _ready, stop in result.lifetimes:
        lo, hi = np.searchsorted(minutes, [s, stop])
        alive[lo:hi] += 1

    def dt(ts):
        return [datetime.fromtimestamp(t, tz=timezone.utc) for t in ts]

    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(12, 6.5), height_ratios=(3, 2),
                                   layout="constrained")
    # Traffic thin and light underneath; the forecast band and mean drawn over it, so a dense
    # per-minute series never hides them.
    ax1.plot(dt(minutes), counts, lw=0.5, color="tab:blue", alpha=0.55, zorder=1, label="requests per minute")
    if result.forecast_trace:
        ft = np.array(result.forecast_trace)
        ft = ft[(ft[:, 0] >= start) & (ft[:, 0] < end)]
        if len(ft):
            fx = dt(ft[:, 0])
            ax1.fill_between(fx, ft[:, 3], ft[:, 4], step="post", color="tab:orange", alpha=0.4, lw=0,
                             zorder=3, label="forecast 80% band")
            ax1.step(fx, ft[:, 1], where="post", color="#a0522d", lw=1.1, zorder=4, label="forecast mean")
            if not np.allclose(ft[:, 2], ft[:, 1]):
                ax1.step(fx, ft[:, 2], where="post", color="#a0522d", lw=0.9, ls="--", zorder=4,
                         label="planned on (quantile)")
    if result.cold_times is not None and len(result.cold_times):
        ax1.plot(dt(result.cold_times), np.zeros(len(result.cold_times)), "|", color="tab:red", ms=9, mew=1.2,
                 zorder=5, label=f"cold requests ({len(result.cold_times)})")
    ax1.set_ylabel("requests / min")
    ax1.set_ylim(bottom=0)
    _legend_above(ax1, 5)
    ax2.step(dt(minutes), alive, where="post", lw=1.0, color="tab:green", label="workers running")
    sched = [c for c in result.schedule if c.t < end]
    if sched:
        ax2.step(dt([c.t for c in sched] + [end]), [c.warm_workers for c in sched] + [sched[-1].warm_workers],
                 where="post", lw=1.0, color="tab:purple", label="commanded warm")
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylim(bottom=0)
    ax2.set_ylabel("workers")
    ax2.set_xlim(dt([start, end]))
    _legend_above(ax2, 2)
    fig.suptitle(f"{result.endpoint}: {result.policy}, {100 * result.cold_rate:.2f}% cold, "
                 f"{result.worker_hours:.1f} worker-hours")
    return fig


def frontier_figure(endpoint: str, points: list[Point], front: list[Point], result: Result,
                    comparison: Comparison, target_cold_rate: float):
    """Worker-hours against cold-start rate: every static setting swept (dots), their envelope
    (the best static setting at each cold-start rate, a step curve) and the predictive point."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    ax.scatter([p.worker_hours for p in points], [100 * p.cold_rate for p in points], s=12, color="0.75",
               zorder=2, label=f"static settings swept ({len(points)})")
    env = sorted(front, key=lambda p: p.worker_hours)
    ax.step([p.worker_hours for p in env], [100 * p.cold_rate for p in env], where="post", color="tab:blue",
            lw=1.6, marker="o", ms=4, zorder=3, label="static envelope (best floor F, keep-alive K)")
    ax.axhline(100 * target_cold_rate, color="0.4", ls="--", lw=0.9, zorder=1,
               label=f"target cold-start rate {100 * target_cold_rate:g}%")
    verdict = "beats" if comparison.beats else "does not beat"
    ax.scatter([result.worker_hours], [100 * result.cold_rate], marker="*", s=260, color="tab:red",
               edgecolor="black", lw=0.6, zorder=5,
               clip_on=False,
               label=f"predictive: {100 * result.cold_rate:.2f}% at {result.worker_hours:.1f} h ({verdict} the envelope)")
    ax.set_xlabel("worker-hours")
    ax.set_ylabel("cold-start rate (%)")
    ax.set_yscale("symlog", linthresh=0.1)  # 0% settings stay on the chart; 0.1% to 50% readable
    ax.set_ylim(bottom=0)
    _label_settings(fig, ax, env)
    ax.grid(True, which="major", color="0.9", zorder=0)
    _legend_above(ax, 2)
    ax.set_title(f"{endpoint}: static frontier and the predictive policy", pad=48)
    return fig


def _label_settings(fig, ax, env: list[Point]) -> None:
    """Name the envelope's settings (F floor, K keep-alive) where the labels do not collide."""
    fig.canvas.draw()  # settle the layout, so data -> pixel positions are final
    placed: list[tuple[float, float]] = []
    for p in env:
        x, y = ax.transData.transform((p.worker_hours, 100 * p.cold_rate))
        if any(abs(x - px) < 70 and abs(y - py) < 14 for px, py in placed):
            continue
        placed.append((x, y))
        ax.annotate(f"F{p.floor} K{p.keepalive_s:g}s", (p.worker_hours, 100 * p.cold_rate), fontsize=7,
                    color="tab:blue", xytext=(4, 4), textcoords="offset points")


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot(path: str | Path, result: Result, arrivals: np.ndarray, start: float, end: float) -> None:
    """The timeline PNG."""
    _save(timeline_figure(result, arrivals, start, end), path)


def plot_frontier(path: str | Path, endpoint: str, points: list[Point], front: list[Point], result: Result,
                  comparison: Comparison, target_cold_rate: float) -> None:
    """The frontier PNG."""
    _save(frontier_figure(endpoint, points, front, result, comparison, target_cold_rate), path)
