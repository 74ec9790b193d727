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


def plot(path: str | Path, result: Result, arrivals: np.ndarray, start: float, end: float) -> None:
    """Traffic, forecast band, warm workers and cold requests over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = np.arange(start, end, 60.0)
    counts = np.histogram(arrivals, bins=np.append(minutes, end))[0]
    alive = np.zeros(len(minutes))
    for s, _ready, stop in result.lifetimes:
        lo, hi = np.searchsorted(minutes, [s, stop])
        alive[lo:hi] += 1
    x = [datetime.fromtimestamp(t, tz=timezone.utc) for t in minutes]
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(12, 6))
    ax1.plot(x, counts, lw=0.6, label="requests per minute")
    if result.forecast_trace:
        ft = np.array(result.forecast_trace)
        fx = [datetime.fromtimestamp(t, tz=timezone.utc) for t in ft[:, 0]]
        ax1.fill_between(fx, ft[:, 1], ft[:, 2], alpha=0.3, color="tab:orange", label="forecast (mean to band)")
    if result.cold_times is not None and len(result.cold_times):
        cx = [datetime.fromtimestamp(t, tz=timezone.utc) for t in result.cold_times]
        ax1.plot(cx, np.zeros(len(cx)), "rx", ms=4, label="cold requests")
    ax1.legend(loc="upper right")
    ax1.set_ylabel("requests / min")
    ax2.step(x, alive, where="post", lw=0.8, label="workers running")
    if result.schedule:
        sx = [datetime.fromtimestamp(c.t, tz=timezone.utc) for c in result.schedule]
        ax2.step(sx, [c.warm_workers for c in result.schedule], where="post", lw=0.8, label="commanded warm")
    ax2.legend(loc="upper right")
    ax2.set_ylabel("workers")
    fig.suptitle(f"{result.endpoint}: {result.policy}, {100 * result.cold_rate:.2f}% cold, "
                 f"{result.worker_hours:.1f} worker-hours")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
