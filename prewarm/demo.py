"""`prewarm demo`: the embedded default, end to end, in about a minute.

Writes a config under ./demo (SQLite, the local provider), generates four days of traffic
with a daily peak, ingests it, then replays the fifth day in simulated time: each cycle
forecasts and plans as the daemon would, and each planned change is applied at its time to
real worker processes, which take their load time before they answer. It prints which
workers it warms when and why.
"""
from __future__ import annotations

import csv
import math
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

DEMO_CONFIG = '''# Written by `prewarm demo`.
[store]
url = "sqlite:///{dir}/prewarm.db"

[daemon]
cycle_interval = "15m"
ingest_delay = "1m"

[forecast]                # the defaults (select), with a shorter history and horizon
history = "4d"
horizon = "3h"

[planner]                 # the defaults: the policy the backtester measures
target_cold_rate = 0.02

[[endpoints]]
name = "demo-chat"

[endpoints.capacity]
concurrency = 4
service_time = "20s"
cold_start = "10m"        # the lead: a GPU worker takes minutes to load (compressed for real below)
min_workers = 0
max_workers = 6
price_per_worker_hour = 2.5

[endpoints.provider]
kind = "local"
load_time_s = 1.5         # real seconds each local worker loads before it answers
state_dir = "{dir}/workers"
'''


def daily_rate(moment: datetime) -> float:
    """Requests per minute: a quiet night, a ramp to a 14:00 UTC peak, a sparse evening."""
    h = moment.hour + moment.minute / 60
    peak = 40.0 * math.exp(-((h - 14.0) ** 2) / (2 * 1.6 ** 2))
    morning = 6.0 * math.exp(-((h - 9.0) ** 2) / (2 * 1.0 ** 2))
    return 0.05 + peak + morning


def generate(path: Path, start: datetime, days: float, seed: int = 7, endpoint: str = "demo-chat") -> int:
    rng = random.Random(seed)
    n = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ts", "endpoint", "requests"])
        t = start
        while t < start + timedelta(days=days):
            lam = daily_rate(t)
            # Poisson by inversion: fine for these small rates.
            k, p, u = 0, math.exp(-lam), rng.random()
            cdf = p
            while u > cdf and k < 1000:
                k += 1
                p *= lam / k
                cdf += p
            w.writerow([t.strftime("%Y-%m-%dT%H:%M:%SZ"), endpoint, k])
            n += 1
            t += timedelta(minutes=1)
    return n


def run_demo(directory: Path, echo: Callable[[str], None] = print, hours: float = 24.0) -> dict:
    from . import config as config_mod
    from .cycle import apply_due, plan_cycle
    from .runtime import Runtime
    from .ingest import ingest_file

    directory.mkdir(parents=True, exist_ok=True)
    for old in ("prewarm.db", "prewarm.db-wal", "prewarm.db-shm"):
        (directory / old).unlink(missing_ok=True)
    cfg = directory / "prewarm.toml"
    cfg.write_text(DEMO_CONFIG.format(dir=directory.resolve()))
    settings = config_mod.load(cfg)
    start = datetime(2026, 11, 23, tzinfo=timezone.utc)
    traffic = directory / "traffic.csv"
    rows = generate(traffic, start, days=4)
    rt = Runtime(settings)
    provider = rt.provider(settings.endpoints[0])
    provider.stop_all()
    report = ingest_file(rt.store, traffic)
    echo(f"ingested {report.inserted} minutes of generated traffic ({rows} rows, 4 days, daily peak at 14:00 UTC)")
    ep = settings.endpoints[0]
    echo(f"endpoint {ep.name}: {ep.capacity.concurrency} requests per worker, service {ep.capacity.service_time_s:.0f}s, "
         f"cold start (lead) {ep.capacity.cold_start_s / 60:.0f} min; local workers really load "
         f"{ep.provider['load_time_s']}s")
    echo(f"replaying {start + timedelta(days=4):%Y-%m-%d} in simulated time: a cycle every 15 min, "
         f"each planned change applied at its time\n")

    day = start + timedelta(days=4)
    step = timedelta(seconds=settings.daemon.cycle_interval_s)
    current = None
    changes = 0
    real_started = time.monotonic()
    t = day
    while t < day + timedelta(hours=hours):
        plan_cycle(rt, t)
        plan_rows = rt.store.current_plan(ep.name)
        moments = [t] + [r["at"] for r in plan_rows if t < r["at"] < t + step]
        for moment in moments:
            for act in apply_due(rt, moment):
                if act.result != "ok":
                    continue
                changes += 1
                echo(_describe(moment, act, provider, ep.capacity))
                current = act.target
        t += step
    provider.stop_all()
    rt.close()
    echo(f"\n{changes} changes in a simulated day, {time.monotonic() - real_started:.0f}s real time; "
         f"workers stopped. Config, database and worker logs are in {directory}/")
    return {"changes": changes, "final": current}


def _describe(moment: datetime, act, provider, capacity) -> str:
    r = act.reason
    why = r.get("why", "")
    head = f"{moment:%H:%M} {act.endpoint}: {act.previous} -> {act.target} warm workers"
    # A lull: the forecast keeps well under one worker busy, so the one worker held is the
    # speculative one, there so the next request does not wait for a cold start.
    busy = r.get("forecast_rpm", 0) / 60 * capacity.service_time_s / capacity.concurrency
    lull = act.target == 1 and busy < 0.5
    if why.startswith("forecast") and lull:
        text = (f"{head}: lull (forecast {r.get('forecast_rpm', 0):.2f} req/min at {r.get('quantile')}); one speculative "
                f"worker held so the next request does not wait a {r.get('lead_s', 0) / 60:.0f}-min cold start")
    elif why.startswith("forecast"):
        need = r.get("need_at", "")[11:16]
        text = (f"{head}: forecast {r.get('forecast_rpm', 0):.1f} req/min ({r.get('quantile')}) needs "
                f"{r.get('need')} by {need}, started {r.get('lead_s', 0) / 60:.0f} min ahead (cold start)")
    elif why in ("speculative", "break-even"):
        text = (f"{head}: lull; one speculative worker held: the requests expected in the lull pay for it "
                f"against a {r.get('lead_s', 0) / 60:.0f}-min cold start each (break-even)")
    elif why == "scale_in_delay":
        text = f"{head}: demand falling; stepping down once the scale-in delay has passed"
    else:
        text = f"{head}: {why}"
    if act.target > (act.previous or 0):
        ready = provider.wait_ready(act.target, timeout_s=30)
        text += f" [ready in {ready.seconds:.1f}s real]" if ready.ready else " [not ready after 30s]"
    return text
