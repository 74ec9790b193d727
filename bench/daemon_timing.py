"""How close to its scheduled instant does a warm-up command go out?

A real daemon (APScheduler BackgroundScheduler, real clock, SQLite store) holds N endpoints
whose plans have warm-ups at random instants over the next minute (off the reconcile ticks),
while M other endpoints with two days of history are forecast and planned every 10 s
(seasonal naive), so the change jobs compete with cycles and reconciles as they would in
production. The provider is the tests' `faulty` plugin, which logs the wall-clock time each
apply call starts: lateness = that time - the command's planned time.

    .venv/bin/python bench/daemon_timing.py [--endpoints 200] [--changes 3] [--busy 50]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "daemon"), str(REPO / "tests" / "daemon" / "plugin")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=200, help="endpoints with timed warm-ups")
    ap.add_argument("--changes", type=int, default=3, help="warm-ups per endpoint within the window")
    ap.add_argument("--busy", type=int, default=50, help="endpoints forecast and planned every cycle")
    ap.add_argument("--window", type=float, default=60.0, help="seconds over which warm-ups are spread")
    args = ap.parse_args()

    from daemon_helpers import Faulty, write_config
    from prometheus_client import CollectorRegistry

    from prewarm import config
    from prewarm.daemon import Daemon
    from prewarm.metrics import Metrics
    from prewarm.providers import registry
    from prewarm.store import CountRow, Store

    registry.available.cache_clear()
    work = Path(tempfile.mkdtemp(prefix="prewarm-timing-"))
    faulty = Faulty(work / "provider")
    url = f"sqlite:///{work / 'prewarm.db'}"
    timed = [{"name": f"t{i:04d}", "dir": faulty.dir, "max_workers": 100} for i in range(args.endpoints)]
    busy = [{"name": f"b{i:04d}", "dir": faulty.dir, "max_workers": 20} for i in range(args.busy)]
    cfg = write_config(work / "prewarm.toml", url, timed + busy,
                       daemon={"cycle_interval": "10s", "reconcile_interval": "30s"},
                       extra='[forecast]\nmodel = "seasonal-naive"\nhistory = "2d"\nhorizon = "1h"\nstep = "5m"\n'
                             'resolution = "fixed"\n')
    settings = config.load(cfg)
    store = Store(url)
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    with store.begin() as c:
        for ep in busy:
            store.insert_counts(c, store.endpoint_id(ep["name"], conn=c), [
                CountRow(ep["name"], now - timedelta(minutes=m), rng.randint(0, 200)) for m in range(5, 2 * 1440, 5)])
    start = now + timedelta(seconds=15)  # time for the daemon to start and plan once
    planned: dict[tuple[str, int], datetime] = {}
    for ep in timed:
        offsets = sorted(rng.uniform(0, args.window) for _ in range(args.changes))
        steps = []
        for k, off in enumerate(offsets, start=1):
            at = start + timedelta(seconds=off)
            steps.append({"at": at, "warm_workers": k, "reason": {"why": "bench"}})
            planned[(ep["name"], k)] = at
        store.save_plan(ep["name"], now, now + timedelta(hours=1), "bench", steps)
    store.close()

    daemon = Daemon(settings, metrics=Metrics(CollectorRegistry()))
    runner = threading.Thread(target=daemon.run, daemon=True)
    t0 = time.process_time()
    runner.start()
    end = start + timedelta(seconds=args.window + 5)
    while datetime.now(timezone.utc) < end:
        time.sleep(0.5)
    daemon.stop()
    runner.join(60)
    cpu = time.process_time() - t0

    first = {}
    for call in faulty.calls("apply", "started"):
        key = (call["endpoint"], call["target"])
        if key in planned and key not in first:
            first[key] = call["t"]
    late = sorted(first[k] - planned[k].timestamp() for k in first)
    # A change not sent because the next one of its endpoint was already due when it ran
    # (level-triggered: the later target wins) is overtaken, not lost.
    unsent = [k for k in planned if k not in first]
    overtaken = [k for k in unsent if (k[0], k[1] + 1) in first
                 and first[(k[0], k[1] + 1)] >= planned[(k[0], k[1] + 1)].timestamp()]
    missing = len(unsent) - len(overtaken)
    q = statistics.quantiles(late, n=100)
    doc = {"warm_ups": len(planned), "sent": len(late), "overtaken": len(overtaken), "missing": missing,
           "p50_s": round(q[49], 4), "p99_s": round(q[98], 4), "max_s": round(late[-1], 4),
           "min_s": round(late[0], 4), "within_1s": sum(x <= 1.0 for x in late) / len(late),
           "endpoints": args.endpoints, "busy_endpoints": args.busy, "cpu_s": round(cpu, 1)}
    doc["late_over_1s"] = sorted((round(planned[k].timestamp() - start.timestamp(), 2),
                                  round(first[k] - planned[k].timestamp(), 2))
                                 for k in first if first[k] - planned[k].timestamp() > 1.0)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
