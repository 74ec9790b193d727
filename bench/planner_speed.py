"""The pure planner's cost per endpoint: plan_endpoint on synthetic 6-hour, 1-minute forecasts
with the default [planner] settings as the daemon runs them (policy_from_settings: burstiness
observed, idle_timeout_rule forecast, 1 h smoothing), bursty arrivals observed (dispersion 3).

    .venv/bin/python bench/planner_speed.py [--n 500]
"""
from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np

from prewarm.config import PlannerSettings
from prewarm.planner.core import plan_endpoint
from prewarm.planner.model import CapacityModel, DemandForecast, Observed
from prewarm.policy import policy_from_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    args = ap.parse_args()
    cap = CapacityModel(concurrency=4, service_time_s=20, cold_start_s=120, max_workers=20)
    policy = policy_from_settings(PlannerSettings(), cap)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(0)
    forecasts = []
    for _ in range(args.n):
        mean = tuple(rng.gamma(1.0, 5.0, 360))
        forecasts.append(DemandForecast(start=now, step_s=60, mean=mean, bands={
            "lo-80": tuple(0.6 * x for x in mean), "hi-80": tuple(1.5 * x for x in mean),
            "lo-95": tuple(0.4 * x for x in mean), "hi-95": tuple(2.0 * x for x in mean)}))
    observed = Observed(requests_per_minute_recent=3.0, arrival_dispersion=3.0)
    started = time.perf_counter()
    commands = 0
    for f in forecasts:
        commands += len(plan_endpoint("e", f, cap, policy, now, observed).commands)
    per = (time.perf_counter() - started) / args.n
    print(f"plan_endpoint: {per * 1000:.2f} ms per endpoint (6 h at 1 min, default policy, dispersion 3), "
          f"{commands / args.n:.1f} commands per plan, {1 / per:.0f} endpoints/s on one core")


if __name__ == "__main__":
    main()
