"""The cycle at fleet scale: N endpoints (default 10,000) with 14 days of 5-minute history
each in an SQLite store (or --url PostgreSQL), one Runtime as the daemon holds it.

Measures, with the real cycle (prewarm.cycle.plan_cycle: batched store reads, forecasts
cached between staggered refreshes, plans written in one transaction per batch):
  (b) the first cycle of a new runtime: every forecast refreshed (+ every plan), wall and CPU,
      and the refresh part alone;
  (a) the following cycles, one simulated minute apart: every plan recomputed from the cached
      forecasts plus the ~1/10 of forecasts the staggered refresh makes due, wall and CPU;
  (c) peak RSS of the process.

With --refresh-processes N ([daemon] refresh_processes), refreshes run in N background
processes as in the daemon: the first cycle plans each job's endpoints as the job arrives
(first_plans_after_s says when the first were written); the following cycles only
plan, and are paced one real minute apart (--pace, seconds) so the children refresh in the
time a daemon would give them. Then each cycle also reports the children's CPU seconds since
the last cycle, how many refreshes are in flight, the oldest forecast held (the refresh target:
every forecast younger than refresh_interval plus a cycle), and the RSS of parent + children.

    .venv/bin/python bench/plan_fleet.py [--endpoints 10000] [--days 14] [--cycles 3] [--url URL [--reuse]]
        [--refresh-processes 1 [--pace 60]]

(--reuse: the store at --url holds a previous run's seed; plans and forecasts a previous run
stored stay, so its first cycle confirms rather than writes plans.)
"""
from __future__ import annotations

import argparse
import json
import math
import os
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


def child_stats(pids: list[int]) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB) summed over live child processes."""
    cpu = rss = peak = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
        except (OSError, IndexError):
            pass
    return cpu, rss, peak


def write_config(path: Path, url: str, n: int, model: str, days: int, refresh_processes: int = 0) -> Path:
    return write_fleet_config(path, url, n, daemon={"refresh_processes": refresh_processes},
                              forecast={"model": model, "history": f"{days}d", "horizon": "6h", "step": "5m",
                                        "resolution": "fixed", "refresh_interval": "10m"})


def seed(store, n: int, start: datetime, days: float, rng: random.Random) -> None:
    """Daily peaks at 5-minute buckets, written through the DBAPI in big batches (the
    store's own insert is per endpoint; this is setup, not what is measured)."""
    sqlite = store.dialect == "sqlite"
    with store.begin() as c:
        ids = {}
        for i in range(n):
            ids[f"ep{i:05d}"] = store.endpoint_id(f"ep{i:05d}", conn=c)
    steps = int(days * 288)
    for name, eid in ids.items():
        peak, hour, width = rng.uniform(1, 300), rng.uniform(6, 20), rng.uniform(0.5, 3)
        rows = []
        for k in range(steps):
            at = start + timedelta(minutes=5 * k)
            h = at.hour + at.minute / 60
            rate = peak * math.exp(-((h - hour) / width) ** 2) + rng.uniform(0, 2)
            ts = at.strftime("%Y-%m-%d %H:%M:%S.000000") if sqlite else at.replace(tzinfo=None)
            rows.append((eid, ts, 300, int(rate * 5)))
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            mark = "?" if sqlite else "%s"
            cur.executemany(f"INSERT INTO request_counts (endpoint_id, ts, bucket_s, requests) "
                            f"VALUES ({mark}, {mark}, {mark}, {mark})", rows)
            raw.commit()
        finally:
            raw.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--cycles", type=int, default=3, help="plan cycles after the first, one minute apart")
    ap.add_argument("--model", default="seasonal-naive")
    ap.add_argument("--url", default=None, help="store URL (default: a new SQLite file)")
    ap.add_argument("--reuse", action="store_true", help="the store at --url is seeded already (a previous run)")
    ap.add_argument("--refresh-processes", type=int, default=0, help="[daemon] refresh_processes")
    ap.add_argument("--pace", type=float, default=60.0, help="with a refresh pool: seconds between cycle starts")
    args = ap.parse_args()

    from prewarm import config, plan_step
    from prewarm import refresh as refresh_module
    from prewarm.cycle import plan_cycle
    from prewarm.runtime import Runtime
    from prewarm.daemon import refresh_pool_for
    from prewarm.store import Store

    work = Path(tempfile.mkdtemp(prefix="prewarm-planfleet-"))
    url = args.url or f"sqlite:///{work / 'prewarm.db'}"
    now = datetime(2026, 3, 16, 9, tzinfo=timezone.utc)
    t = time.time()
    settings = config.load(write_config(work / "prewarm.toml", url, args.endpoints, args.model, args.days,
                                        args.refresh_processes), env={})
    store = Store(url, auto_upgrade=True)
    if not args.reuse:
        seed(store, args.endpoints, now - timedelta(days=args.days), args.days, random.Random(1))
    setup_s = time.time() - t
    print(f"setup (config + {args.endpoints} x {args.days} d x 5 min seeded): {setup_s:.0f} s", file=sys.stderr)

    refresh = {"wall": 0.0, "cpu": 0.0, "endpoints": 0}
    real_refresh = refresh_module.refresh_forecasts

    def timed_refresh(rt, eps, *a, **kw):
        w0, c0 = time.time(), time.process_time()
        try:
            return real_refresh(rt, eps, *a, **kw)
        finally:
            refresh["wall"] += time.time() - w0
            refresh["cpu"] += time.process_time() - c0
            refresh["endpoints"] += len(eps)
    refresh_module.refresh_forecasts = timed_refresh

    # When a cycle's first plans are written (a waiting cycle plans each job as it arrives).
    first_plan: dict[str, float | None] = {"at": None}
    real_plan_batch = plan_step.plan_batch

    def timed_plan_batch(*a, **kw):
        out = real_plan_batch(*a, **kw)
        if first_plan["at"] is None:
            first_plan["at"] = time.time()
        return out
    plan_step.plan_batch = timed_plan_batch

    rt = Runtime(settings, store=store)
    rt.refresh_pool = refresh_pool_for(settings, url)
    runs = []
    rss_start = rss_mb()
    children_cpu = 0.0
    peak_total_rss = 0.0
    for k in range(args.cycles + 1):
        at = now + timedelta(minutes=k)
        refresh.update(wall=0.0, cpu=0.0, endpoints=0)
        first_plan["at"] = None
        w0, c0 = time.time(), time.process_time()
        outcomes = plan_cycle(rt, at)
        wall, cpu = time.time() - w0, time.process_time() - c0
        errors = sum(1 for o in outcomes.values() if o.error)
        run = {"cycle": k, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
               "refreshed": refresh["endpoints"], "refresh_wall_s": round(refresh["wall"], 1),
               "refresh_cpu_s": round(refresh["cpu"], 1), "plan_wall_s": round(wall - refresh["wall"], 1),
               "planned": sum(1 for o in outcomes.values() if o.plan is not None), "errors": errors,
               "rss_mb": round(rss_mb(), 1),
               "first_plans_after_s": round(first_plan["at"] - w0, 1) if first_plan["at"] else None}
        if rt.refresh_pool is not None:
            pids = list(rt.refresh_pool._executor._processes or ())
            cpu_now, rss_children, peak_children = child_stats(pids)
            peak_total_rss = max(peak_total_rss, peak_children)
            oldest = min(c.made_at for c in rt.forecasts.values())
            run.update(children_cpu_s=round(cpu_now - children_cpu, 1), in_flight=len(rt.refresh_pool.busy()),
                       oldest_forecast_min=round((at - oldest).total_seconds() / 60, 1),
                       overdue=sum(1 for c in rt.forecasts.values() if c.due < at - timedelta(minutes=1)),
                       rss_with_children_mb=round(rss_mb() + rss_children, 1))
            children_cpu = cpu_now
            if k < args.cycles:
                time.sleep(max(0.0, args.pace - (time.time() - w0)))
        print(json.dumps(run), file=sys.stderr)
        runs.append(run)
    print(json.dumps({
        "endpoints": args.endpoints, "days": args.days, "model": args.model, "store": store.dialect,
        "setup_s": round(setup_s), "rss_start_mb": round(rss_start, 1), "cycles": runs,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "refresh_processes": args.refresh_processes,
        # Parent's peak + each child's own peak (an upper bound: the peaks need not coincide).
        "peak_rss_with_children_mb": (round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + peak_total_rss, 1)
                                      if rt.refresh_pool is not None else None),
    }, indent=2))
    rt.close()


if __name__ == "__main__":
    sys.exit(main())
