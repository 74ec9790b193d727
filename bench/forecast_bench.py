"""Forecasting benchmarks (issue 4). Run from the repository root:

    .venv/bin/python bench/forecast_bench.py startup            # process start -> 100 forecasts
    .venv/bin/python bench/forecast_bench.py speed [--n 200]    # endpoints/s/core per model
    .venv/bin/python bench/forecast_bench.py fleet [--n 10000]  # 10,000 x 14 d x 5 min, peak RSS
    .venv/bin/python bench/forecast_bench.py accuracy           # auto vs seasonal naive, last week

The fleet is synthetic but made of real traffic: each endpoint is a 14-day window of the
NASA or an Alibaba trace at 5 minutes, shifted by a random number of days and scaled.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
MODELS = ["seasonal-naive", "seasonal-naive-weekly", "croston-sba", "adida", "imapa", "tsb",
          "autotheta", "autoets", "mstl", "autoarima"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_fleet(n: int, days: int = 14, step_s: int = 300, seed: int = 7):
    import numpy as np
    import pandas as pd

    from prewarm.forecasters.resolution import aggregate
    from prewarm.forecasting import history_from_csv

    sources = []
    for path in (TRACES / "nasa_http_1995" / "per_minute.csv", TRACES / "alibaba_genai_2026" / "per_minute.csv"):
        frame = aggregate(history_from_csv(str(path)), 60, step_s)
        for _, grp in frame.groupby("unique_id"):
            sources.append(grp["y"].to_numpy())
    rng = np.random.default_rng(seed)
    per_day = 86400 // step_s
    length = days * per_day
    ds = pd.date_range("2025-01-01", periods=length, freq=f"{step_s}s")
    ids, ys = [], []
    for i in range(n):
        src = sources[i % len(sources)]
        offset = rng.integers(0, (len(src) - length) // per_day + 1) * per_day
        ys.append(src[offset:offset + length] * rng.uniform(0.5, 2.0))
        ids.append(f"ep{i:05d}")
    return pd.DataFrame({"unique_id": np.repeat(ids, length), "ds": np.tile(ds, n),
                         "y": np.concatenate(ys).round()})


def cmd_startup(args) -> None:
    code = ("import time; t0=time.time();"
            "from prewarm.forecasters import registry; import bench_fleet;"
            "h=bench_fleet.fleet(100); t1=time.time();"
            "registry.create('seasonal-naive').forecast(h, horizon=72, step_s=300);"
            "print(round(t1-t0,2), round(time.time()-t0,2))")
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    total = time.time() - start
    load_s, forecast_s = out.stdout.split()
    print(f"startup: process start -> first forecast of 100 endpoints (5-min, 14 d): {total:.2f} s "
          f"(interpreter+imports+data {load_s} s, in-process total {forecast_s} s)")


def cmd_speed(args) -> None:
    from prewarm.forecasters import registry

    history = synthetic_fleet(args.n)
    print(f"speed: {args.n} endpoints x 14 d x 5 min, horizon 6 h, levels 80/95, n_jobs=1")
    for name in args.models or MODELS:
        n = args.n if name not in ("mstl", "autoarima") else max(10, args.n // 10)
        part = history[history["unique_id"].isin(history["unique_id"].unique()[:n])]
        t = time.time()
        registry.create(name).forecast(part, horizon=72, step_s=300)
        spent = time.time() - t
        print(f"  {name:22s} {n:5d} endpoints {spent:7.2f} s  {n / spent:8.1f} endpoints/s/core")


def cmd_fleet(args) -> None:
    from prewarm.forecasters import registry

    t0 = time.time()
    history = synthetic_fleet(args.n)
    built = time.time() - t0
    model = registry.create(args.model, n_jobs=args.jobs)
    t = time.time()
    for start in range(0, args.n, args.batch):
        ids = history["unique_id"].unique()[start:start + args.batch]
        model.forecast(history[history["unique_id"].isin(ids)], horizon=72, step_s=300)
    spent = time.time() - t
    print(f"fleet: {args.n} endpoints x 14 d x 5 min with {args.model}, n_jobs={args.jobs}, batches of "
          f"{args.batch}: {spent:.1f} s ({args.n / spent:.0f} endpoints/s), history built in {built:.1f} s, "
          f"peak RSS {peak_rss_mb():.0f} MB")


def cmd_accuracy(args) -> None:
    import pandas as pd

    from prewarm.config import ForecastSettings
    from prewarm.forecasters.accuracy import score
    from prewarm.forecasting import forecast_endpoints, history_from_csv

    traces = {"nasa": TRACES / "nasa_http_1995" / "per_minute.csv",
              "alibaba": TRACES / "alibaba_genai_2026" / "per_minute.csv"}
    for trace, path in traces.items():
        history = history_from_csv(str(path))
        end = history["ds"].max().floor("h")
        origins = [end - pd.Timedelta(days=7) + pd.Timedelta(hours=6 * i) for i in range(28)]
        for model in ("auto", "seasonal-naive"):
            settings = ForecastSettings(model=model, step_s=args.step, horizon_s=6 * 3600,
                                        refit_interval_s=86400)
            choices: dict = {}
            rows = []
            t = time.time()
            for origin in origins:
                now = origin.to_pydatetime().replace(tzinfo=dt.timezone.utc)
                run = forecast_endpoints(history, settings, now=now, choices=choices)
                choices.update(run.new_choices)
                for uid, f in run.forecasts.items():
                    frame = f.frame.assign(origin=origin)
                    rows.append(frame[frame["ds"] < origin + pd.Timedelta(hours=6)])
            fc = pd.concat(rows, ignore_index=True)
            step = fc.groupby("unique_id")["ds"].diff().min()
            actual = history.assign(ds=history["ds"].dt.floor(step)).groupby(["unique_id", "ds"], as_index=False)["y"].sum()
            joined = fc.merge(actual, on=["unique_id", "ds"], how="inner")
            for uid, s in score(joined, quantile_column="hi-80").items():
                picked = sorted({c.model + ("+conformal" if c.params else "") for u, c in choices.items() if u == uid})
                print(json.dumps({"trace": trace, "endpoint": uid, "model": model, "picked": picked,
                                  **{k: round(v, 3) for k, v in s.items()}, "seconds": round(time.time() - t, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("startup")
    p = sub.add_parser("speed")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--models", nargs="*")
    p = sub.add_parser("fleet")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--model", default="seasonal-naive")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--batch", type=int, default=2000)
    p = sub.add_parser("accuracy")
    p.add_argument("--step", type=int, default=300, help="finest step the resolution choice may pick")
    args = parser.parse_args()
    {"startup": cmd_startup, "speed": cmd_speed, "fleet": cmd_fleet, "accuracy": cmd_accuracy}[args.cmd](args)


if __name__ == "__main__":
    main()
