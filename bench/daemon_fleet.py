"""The daemon holding a fleet: memory and CPU of one process leading N endpoints (default
1,000) over a simulated day, with its own jobs (cycle, reconcile, change jobs) run in time
order on a simulated clock (prewarm.daemon_sim), the dry-run provider, an SQLite store.

Reports: CPU seconds and wall time of the simulated day, CPU per cycle and per reconcile pass,
RSS at the start and at each simulated hour (a leak shows as growth), and the CPU a real day
would cost at the default cadence (cycle every 60 s, reconcile every 30 s), extrapolated from
the measured per-pass costs.

    .venv/bin/python bench/daemon_fleet.py [--endpoints 1000] [--cycle 1h] [--reconcile 15m]
"""
from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fleet_config import write_fleet_config  # bench/ is the script's directory


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_config(path: Path, url: str, n: int, cycle: str, reconcile: str) -> Path:
    return write_fleet_config(path, url, n, daemon={"cycle_interval": cycle, "reconcile_interval": reconcile},
                              forecast={"model": "seasonal-naive", "history": "2d", "horizon": "2h", "step": "5m",
                                        "resolution": "fixed"})


def seed_history(store, n: int, start: datetime, days: float, rng: random.Random) -> None:
    from prewarm.store import CountRow

    for i in range(n):
        name = f"ep{i:05d}"
        peak, hour, width = rng.uniform(1, 300), rng.uniform(6, 20), rng.uniform(0.5, 3)
        rows = []
        for m in range(0, int(days * 1440), 5):
            at = start + timedelta(minutes=m)
            h = at.hour + at.minute / 60
            rate = peak * math.exp(-((h - hour) / width) ** 2) + rng.uniform(0, 2)
            rows.append(CountRow(name, at, int(rate * 5)))
        with store.begin() as c:
            store.insert_counts(c, store.endpoint_id(name, conn=c), rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--cycle", default="1h", help="simulated cycle interval")
    ap.add_argument("--reconcile", default="15m", help="simulated reconcile interval")
    ap.add_argument("--hours", type=float, default=24.0)
    args = ap.parse_args()

    from prewarm import config
    from prewarm.daemon import Daemon
    from prewarm.daemon_sim import SimulatedScheduler
    from prewarm.store import Store

    work = Path(tempfile.mkdtemp(prefix="prewarm-fleet-"))
    url = f"sqlite:///{work / 'prewarm.db'}"
    day0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
    t = time.time()
    settings = config.load(write_config(work / "prewarm.toml", url, args.endpoints, args.cycle, args.reconcile))
    store = Store(url)
    seed_history(store, args.endpoints, day0 - timedelta(days=2), 2 + args.hours / 24, random.Random(1))
    setup_s = time.time() - t

    sim = SimulatedScheduler(day0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store)
    cost: dict[str, list[float]] = {"cycle": [], "reconcile": []}

    def timed(name, fn):
        def run(*a):
            c0 = time.process_time()
            fn(*a)
            cost[name].append(time.process_time() - c0)
        return run

    daemon.cycle = timed("cycle", daemon.cycle)
    rss = [("start", round(rss_mb(), 1))]
    cpu0, wall0 = time.process_time(), time.time()
    daemon._lead()
    # Reconcile passes: time only the full passes (change jobs pass an endpoint).
    full = daemon.reconcile

    def reconcile(endpoint=None, at=None):
        if endpoint is None:
            c0 = time.process_time()
            full()
            cost["reconcile"].append(time.process_time() - c0)
        else:
            full(endpoint, at)
    daemon.reconcile = reconcile
    sim.jobs["reconcile"].func = reconcile
    for hour in range(1, int(args.hours) + 1):
        sim.run_until(day0 + timedelta(hours=hour))
        rss.append((f"h{hour}", round(rss_mb(), 1)))
    cpu, wall = time.process_time() - cpu0, time.time() - wall0
    changes = sum(1 for _, job in sim.ran if job.startswith("change:"))
    actions = len(store.actions(limit=10**7))
    cyc = sorted(cost["cycle"])
    rec = sorted(cost["reconcile"])
    per_real_day = 1440 * (sum(cyc) / len(cyc)) + 2880 * (sum(rec) / len(rec))
    print(json.dumps({
        "endpoints": args.endpoints, "simulated_hours": args.hours, "cycle": args.cycle, "reconcile": args.reconcile,
        "setup_s": round(setup_s, 1), "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
        "cycles": len(cyc), "cycle_cpu_s_median": round(cyc[len(cyc) // 2], 2), "cycle_cpu_s_max": round(cyc[-1], 2),
        "reconciles": len(rec), "reconcile_cpu_s_median": round(rec[len(rec) // 2], 2),
        "change_jobs_run": changes, "actions_recorded": actions, "job_errors": len(sim.errors),
        "rss_mb": dict(rss), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "default_cadence_cpu_s_per_day": round(per_real_day), "default_cadence_core_share": round(per_real_day / 86400, 3),
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
