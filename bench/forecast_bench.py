"""Forecasting benchmarks (issue 4). Run from the repository root:

    .venv/bin/python bench/forecast_bench.py startup            # process start -> 100 forecasts
    .venv/bin/python bench/forecast_bench.py speed [--n 200]    # endpoints/s/core per model
    .venv/bin/python bench/forecast_bench.py fleet [--n 10000]  # 10,000 x 14 d x 5 min in batches, peak RSS
    .venv/bin/python bench/forecast_bench.py accuracy           # auto vs seasonal naive, rolling origin
    .venv/bin/python bench/forecast_bench.py protocol [--part tune|report]  # every shared series (bench/protocol.py)
    .venv/bin/python bench/forecast_bench.py short              # young endpoints, tuning parts only

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


def children_peak_rss_mb() -> float:
    """The largest peak of the n_jobs worker processes (statsforecast's pool)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class SyntheticFleet:
    """Endpoint i is a `days`-long window of one of the real traces at `step_s`, shifted by
    a random number of days and scaled; built per batch on demand (seeded per endpoint) so
    the fleet never has to be in memory at once, like history read from the store."""

    def __init__(self, days: int = 14, step_s: int = 300, seed: int = 7) -> None:
        import pandas as pd

        from prewarm.forecasters.resolution import aggregate
        from prewarm.forecasting import history_from_csv

        self.sources = []
        for path in (TRACES / "nasa_http_1995" / "per_minute.csv", TRACES / "alibaba_genai_2026" / "per_minute.csv"):
            frame = aggregate(history_from_csv(str(path)), 60, step_s)
            for _, grp in frame.groupby("unique_id"):
                self.sources.append(grp["y"].to_numpy())
        self.seed, self.step_s, self.per_day = seed, step_s, 86400 // step_s
        self.length = days * self.per_day
        self.ds = pd.date_range("2025-01-01", periods=self.length, freq=f"{step_s}s")

    @staticmethod
    def ids(n: int) -> list[str]:
        return [f"ep{i:05d}" for i in range(n)]

    def history(self, ids):
        import numpy as np
        import pandas as pd

        ys = []
        for uid in ids:
            i = int(uid[2:])
            rng = np.random.default_rng([self.seed, i])
            src = self.sources[i % len(self.sources)]
            offset = rng.integers(0, (len(src) - self.length) // self.per_day + 1) * self.per_day
            ys.append(src[offset:offset + self.length] * rng.uniform(0.5, 2.0))
        return pd.DataFrame({"unique_id": np.repeat(list(ids), self.length),
                             "ds": np.tile(self.ds, len(ids)), "y": np.concatenate(ys).round()})


def synthetic_fleet(n: int, days: int = 14, step_s: int = 300, seed: int = 7):
    fleet = SyntheticFleet(days, step_s, seed)
    return fleet.history(fleet.ids(n))


def cmd_startup(args) -> None:
    """A fresh process: imports, 100 endpoints' history (here built from the trace CSVs, in
    the daemon read from the store), first forecast with the default model (statsforecast
    models import statsforecast there)."""
    if args.model is None:
        from prewarm.config import ForecastSettings
        args.model = ForecastSettings().model
    code = ("import time; t0=time.time();"
            "import pandas; from prewarm.forecasters import registry; import bench_fleet; t1=time.time();"
            "h=bench_fleet.fleet(100); t2=time.time();"
            f"registry.create({args.model!r}).forecast(h, horizon=72, step_s=300); t3=time.time();"
            "print(round(t1-t0,2), round(t2-t1,2), round(t3-t2,2))")
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    total = time.time() - start
    imports_s, data_s, forecast_s = out.stdout.split()
    print(f"startup: process start -> first forecast of 100 endpoints (5-min, 14 d, {args.model}): {total:.2f} s "
          f"(interpreter {total - float(imports_s) - float(data_s) - float(forecast_s):.2f} s, pandas+prewarm "
          f"imports {imports_s} s, history from the CSVs {data_s} s, first forecast incl. importing "
          f"statsforecast {forecast_s} s)")


def cmd_speed(args) -> None:
    from prewarm.forecasters import registry

    history = synthetic_fleet(args.n)
    print(f"speed: {args.n} endpoints x 14 d x 5 min, horizon 6 h, levels 80/95, n_jobs=1")
    for name in args.models or MODELS:
        heavy = ("mstl", "autoarima", "autoets", "autotheta")  # calibration: 8 CV fits each
        n = args.n if name not in heavy else max(10, args.n // 10)
        part = history[history["unique_id"].isin(history["unique_id"].unique()[:n])]
        t = time.time()
        registry.create(name).forecast(part, horizon=72, step_s=300)
        spent = time.time() - t
        print(f"  {name:22s} {n:5d} endpoints {spent:7.2f} s  {n / spent:8.1f} endpoints/s/core")


def cmd_fleet(args) -> None:
    """The refresh as the daemon runs it: `forecast_in_batches` reads `--batch` endpoints'
    history at a time (here: built on demand), forecasts them, hands the run over, and
    drops it before the next batch."""
    from prewarm.config import ForecastSettings
    from prewarm.forecasting import forecast_in_batches

    t0 = time.time()
    fleet = SyntheticFleet()
    ids = fleet.ids(args.n)
    now = (fleet.ds[-1] + (fleet.ds[1] - fleet.ds[0])).to_pydatetime().replace(tzinfo=dt.timezone.utc)
    settings = ForecastSettings(model=args.model, resolution="fixed", step_s=300, horizon_s=6 * 3600,
                                n_jobs=args.jobs, history_s=14 * 86400)
    done = 0
    models: dict[str, int] = {}
    for run in forecast_in_batches(fleet.history, ids, settings, now=now, batch_size=args.batch,
                                   base_step_s=300):
        done += len(run.forecasts)
        for f in run.forecasts.values():
            models[f.model] = models.get(f.model, 0) + 1
    spent = time.time() - t0
    print(f"fleet: {done} of {args.n} endpoints x 14 d x 5 min with {args.model}, n_jobs={args.jobs}, "
          f"batches of {args.batch}: {spent:.1f} s ({done / spent:.0f} endpoints/s, history built per batch "
          f"included), peak RSS {peak_rss_mb():.0f} MB (main) + {children_peak_rss_mb():.0f} MB (largest "
          f"of the {args.jobs if args.jobs > 1 else 0} workers); models {models}")


def accuracy_plans(args) -> dict:
    """Per trace: the file, the origins (from history before each only) and the settings.
    NASA and Alibaba: every 6 h over the last 7 days, horizon 6 h, the choice refit daily.
    Azure (under an hour): every minute from minute 20 to the end, horizon 5 min, 1-min
    steps, the choice refit every 10 min: there is no last week, and no day, to look at."""
    import pandas as pd

    def last_week(history):
        end = history["ds"].max().floor("h")
        return [end - pd.Timedelta(days=7) + pd.Timedelta(hours=6 * i) for i in range(28)]

    def within_the_hour(history):
        start, end = history["ds"].min(), history["ds"].max()
        return list(pd.date_range(start + pd.Timedelta(minutes=20), end - pd.Timedelta(minutes=4), freq="min"))

    return {"nasa": (TRACES / "nasa_http_1995" / "per_minute.csv", last_week,
                     dict(step_s=args.step, horizon_s=6 * 3600, refit_interval_s=86400)),
            "alibaba": (TRACES / "alibaba_genai_2026" / "per_minute.csv", last_week,
                        dict(step_s=args.step, horizon_s=6 * 3600, refit_interval_s=86400)),
            "azure": (TRACES / "azure_llm_2023" / "per_minute.csv", within_the_hour,
                      dict(step_s=60, horizon_s=300, refit_interval_s=600)),
            # A new endpoint: the same origins with one day of history (under two seasons).
            "nasa-1d": (TRACES / "nasa_http_1995" / "per_minute.csv", last_week,
                        dict(step_s=args.step, horizon_s=6 * 3600, refit_interval_s=86400, history_s=86400)),
            "alibaba-1d": (TRACES / "alibaba_genai_2026" / "per_minute.csv", last_week,
                           dict(step_s=args.step, horizon_s=6 * 3600, refit_interval_s=86400, history_s=86400))}


DEFAULT_TRACES = ("nasa", "alibaba", "azure")


def cmd_accuracy(args) -> None:
    """Rolling origin, from history before each origin only (`accuracy_plans`). Compared with
    statsforecast's SeasonalNaive as it comes (its own residual intervals: `sn-raw`) and
    with seasonal naive under the calibration layer (`seasonal-naive`)."""
    import pandas as pd

    from prewarm.config import ForecastSettings
    from prewarm.forecasters.accuracy import score
    from prewarm.forecasting import forecast_endpoints, history_from_csv

    runs = {"auto": ("auto", {}), "seasonal-naive": ("seasonal-naive", {}),
            "sn-raw": ("seasonal-naive", {"calibration": "model"})}
    for trace, (path, origins_of, plan) in accuracy_plans(args).items():
        if trace not in (args.traces or DEFAULT_TRACES):
            continue
        everything = history_from_csv(str(path))
        for run_name in args.runs or list(runs):
            model, params = runs.get(run_name, (run_name, {}))
            settings = ForecastSettings(model=model, **plan)
            window = pd.Timedelta(seconds=settings.horizon_s)
            picked: dict[str, list[str]] = {}
            rows = []
            t = time.time()
            # Each series on its own origins (the Azure series start at different minutes).
            for _, history in everything.groupby("unique_id", sort=False):
                choices: dict = {}
                for origin in origins_of(history):
                    now = origin.to_pydatetime().replace(tzinfo=dt.timezone.utc)
                    run = forecast_endpoints(history, settings, now=now, choices=choices, model_params=params)
                    choices.update(run.new_choices)
                    for uid, c in run.new_choices.items():
                        picked.setdefault(uid, []).append(c.model)
                    for uid, f in run.forecasts.items():
                        frame = f.frame.assign(origin=origin)
                        rows.append(frame[frame["ds"] < origin + window])
            fc = pd.concat(rows, ignore_index=True)
            gaps = fc.groupby("unique_id")["ds"].diff()  # origins overlap on Azure: skip back-steps
            step = gaps[gaps > pd.Timedelta(0)].min()
            actual = everything.assign(ds=everything["ds"].dt.floor(step)).groupby(
                ["unique_id", "ds"], as_index=False)["y"].sum()
            joined = fc.merge(actual, on=["unique_id", "ds"], how="inner")
            for uid, s in score(joined, quantile_column="hi-80").items():
                print(json.dumps({"trace": trace, "endpoint": uid, "run": run_name,
                                  "picked": picked.get(uid, []), "scored": int((joined["unique_id"] == uid).sum()),
                                  **{k: round(v, 3) for k, v in s.items()},
                                  "seconds": round(time.time() - t, 1)}), flush=True)


def protocol_series():
    """Per split of bench/protocol.py: the per-minute history of every series it reports
    (unique_id, ds naive UTC, y), read from the traces. Alibaba from requests.csv (its
    per_minute.csv has only five models): every qualifying model and `__all__`, dense per
    minute from the trace's first minute to the end of the report week."""
    import pandas as pd

    import protocol
    from prewarm.forecasting import history_from_csv

    out = {}
    split = protocol.SPLITS["alibaba"]
    models = protocol.alibaba_report_models()
    req = pd.read_csv(protocol.ALIBABA_REQUESTS, usecols=["gmt_create", "checkpoint_model_version_id"])
    minute = pd.to_datetime(req["gmt_create"]).dt.floor("60s")  # naive stamps, read as UTC
    grid = pd.date_range(minute.min(), pd.Timestamp(split.report_end, unit="s") - pd.Timedelta(minutes=1),
                         freq="60s")
    frames = []
    for name in models:
        sel = minute if name == "__all__" else minute[req["checkpoint_model_version_id"] == name]
        counts = sel.value_counts().reindex(grid, fill_value=0)
        frames.append(pd.DataFrame({"unique_id": name, "ds": grid, "y": counts.to_numpy(float)}))
    out["alibaba"] = pd.concat(frames, ignore_index=True)
    out["nasa"] = history_from_csv(str(protocol.NASA))
    out["azure"] = history_from_csv(str(protocol.AZURE_PER_MINUTE))
    return out


#: per split: (horizons in seconds, origin stride in seconds, history needed before an origin)
PROTOCOL_PLANS = {"alibaba": ((3600, 6 * 3600), 3 * 3600, 2 * 86400),
                  "nasa": ((3600, 6 * 3600), 3 * 3600, 2 * 86400),
                  # one hour of trace: horizons that fit a 30-minute part, origins every minute
                  "azure": ((300, 900), 60, 600)}
#: runs of the protocol table: (model, params, horizon-independent: one forecast at the
#: longest horizon scored on each)
PROTOCOL_RUNS = {"select": ("select", {}, False),
                 "seasonal-naive": ("seasonal-naive", {}, True),
                 "sn-conformal": ("seasonal-naive", {"conformal": True}, True),
                 "seasonal-mean": ("seasonal-mean", {}, True),
                 "auto": ("auto", {}, False)}


def horizon_blocks(ds, horizon_s: int):
    """The block of each target time: horizon-long stretches of it (the steps scored from
    overlapping origins, and one level error, stay in one block for a bootstrap)."""
    return ds.astype("int64") // (horizon_s * 10**9)


def horizon_label(h: int) -> str:
    return f"{h // 3600} h" if h >= 3600 else f"{h // 60} min"


def protocol_origins(split, part: str, history, horizon_s: int, stride_s: int, need_s: int):
    """Origins on the stride (UTC) inside the part, with `need_s` of history before them and
    the whole horizon inside the part and the data."""
    import pandas as pd

    lo, hi = split.part(part)
    first_data = history["ds"].min().timestamp()
    end = min(hi, history["ds"].max().timestamp() + 60)
    start = max(lo, first_data + need_s)
    t = -(-start // stride_s) * stride_s
    out = []
    while t + horizon_s <= end:
        out.append(pd.Timestamp(t, unit="s"))
        t += stride_s
    return out


def cmd_protocol(args) -> None:
    """Every shared series (bench/protocol.py) at two horizons, each part scored on its own:
    the default settings (`[forecast]` step 60 s, resolution auto) with each run's model;
    origins every 3 h (Azure: every minute), forecasts from history before each origin only.
    Per series: MAE and pinball (q0.9 on hi-80) of each run and their ratio to seasonal naive,
    coverage of the 80% and 95% bands, per step of the endpoint's resolution."""
    import pandas as pd

    import protocol
    from prewarm.config import ForecastSettings
    from prewarm.forecasters.accuracy import coverage_interval, error_ratio_interval, score
    from prewarm.forecasting import forecast_endpoints

    data = protocol_series()
    results = []
    steps: dict[tuple, pd.DataFrame] = {}  # per (split, series, part, horizon, run): the scored steps
    if args.baseline_from:  # earlier runs' rows (e.g. seasonal naive), for the table only
        results = [json.loads(line) for line in Path(args.baseline_from).read_text().splitlines() if line]
        results = [r for r in results if r["run"] not in args.runs]
    for split_name in args.splits:
        split = protocol.SPLITS[split_name]
        everything = data[split_name]
        horizons, stride_s, need_s = PROTOCOL_PLANS[split_name]
        for part in args.parts:
            for run_name in args.runs:
                model, params, independent = PROTOCOL_RUNS.get(run_name, (run_name, {}, False))
                if model == "select" and args.params:
                    params = {**params, **json.loads(args.params)}
                rows: dict[int, list] = {h: [] for h in horizons}
                t0 = time.time()
                for uid_group, history in ([(None, everything)] if split_name != "azure"
                                           else everything.groupby("unique_id", sort=False)):
                    # every run is scored at each horizon on that horizon's origins; a
                    # horizon-independent one forecasts once per origin, at the longest
                    at = {h: set(protocol_origins(split, part, history, h, stride_s, need_s)) for h in horizons}
                    asked = [(max(horizons), horizons)] if independent else [(h, [h]) for h in horizons]
                    for horizon_s, scored in asked:
                        settings = ForecastSettings(model=model, horizon_s=horizon_s)
                        for origin in sorted(set().union(*(at[h] for h in scored))):
                            now = origin.to_pydatetime().replace(tzinfo=dt.timezone.utc)
                            run = forecast_endpoints(history, settings, now=now, model_params=params)
                            for uid, f in run.forecasts.items():
                                for h in (h for h in scored if origin in at[h]):
                                    frame = f.frame[f.frame["ds"] < origin + pd.Timedelta(seconds=h)]
                                    rows[h].append(frame.assign(step_s=f.step_s, origin=origin,
                                                                model=f.model))
                for h, parts in rows.items():
                    if not parts:
                        continue
                    fc = pd.concat(parts, ignore_index=True)
                    for (uid, step_s), grp in fc.groupby(["unique_id", "step_s"], sort=False):
                        act = everything[everything["unique_id"] == uid]
                        act = act.assign(ds=act["ds"].dt.floor(f"{step_s}s")).groupby("ds", as_index=False)["y"].sum()
                        joined = grp.merge(act, on="ds", how="inner")
                        s = score(joined, quantile_column="hi-80")[str(uid)]
                        block = horizon_blocks(joined["ds"], h)
                        cis = {f"coverage-{lv}-ci": [round(v, 4) for v in coverage_interval(
                            joined["y"], joined[f"lo-{lv}"], joined[f"hi-{lv}"], block)] for lv in (80, 95)}
                        picked = grp.groupby("origin")["model"].first().value_counts().to_dict()
                        row = {"split": split_name, "series": str(uid), "part": part, "horizon_s": h,
                               "run": run_name, "step_s": int(step_s), "origins": int(grp["origin"].nunique()),
                               "scored": int(len(joined)), "blocks": int(block.nunique()), **{k: round(v, 4) for k, v in s.items() if k != "n"}, **cis,
                               "picked": picked, "seconds": round(time.time() - t0, 1)}
                        results.append(row)
                        steps[(split_name, str(uid), part, h, run_name)] = joined[["origin", "ds", "y", "mean"]]
                        print(json.dumps(row), flush=True)
    # the MAE ratio's 90% paired block-bootstrap interval (blocks: horizon-long stretches of
    # target time), where both runs were scored here on the same steps
    for row in results:
        key = (row["split"], row["series"], row["part"], row["horizon_s"])
        mine, base = steps.get((*key, row["run"])), steps.get((*key, "seasonal-naive"))
        if mine is None or base is None or row["run"] == "seasonal-naive":
            continue
        both = mine.merge(base, on=["origin", "ds"], suffixes=("", "_base"))
        row["mae-ratio-ci"] = [round(v, 4) for v in error_ratio_interval(
            both["y"] - both["mean"], both["y_base"] - both["mean_base"],
            horizon_blocks(both["ds"], row["horizon_s"]))]
    if args.out:
        Path(args.out).write_text("\n".join(json.dumps(r) for r in results) + "\n")
    print(protocol_table(results, args.runs[0], "seasonal-naive"))
    print(coverage_table(results, args.runs[0]))


def short_windows(every_s: int = 3 * 3600, minutes: int = 60):
    """Young endpoints from the TUNING parts only (bench/protocol.py): per source, windows of
    `minutes` one-minute counts, one starting every `every_s` (NASA Jul 1-14, Alibaba
    `__all__` Nov 15-23), and each Azure trace's tuning half (30 minutes). {source: [(start,
    counts)]}."""
    import pandas as pd

    import protocol

    data = protocol_series()
    out: dict[str, list] = {}
    for split_name, ids in (("nasa", None), ("alibaba", ["__all__"]), ("azure", None)):
        lo, hi = protocol.SPLITS[split_name].part("tune")
        frame = data[split_name]
        for uid, grp in frame.groupby("unique_id", sort=False):
            if ids is not None and uid not in ids:
                continue
            series = grp.set_index("ds")["y"]
            series = series[(series.index >= pd.Timestamp(lo, unit="s")) & (series.index < pd.Timestamp(hi, unit="s"))]
            key = f"{split_name} {uid}"
            if split_name == "azure":
                out[key] = [(series.index[0], series.to_numpy(float))]
                continue
            grid = series.resample("60s").sum()
            starts = range(0, len(grid) - minutes + 1, every_s // 60)
            out[key] = [(grid.index[i], grid.to_numpy(float)[i:i + minutes]) for i in starts]
    return out


def short_scores(windows, h: int, params: dict, first: int = 10) -> dict:
    """`select` (with `params`) from the first k counts of each window, k >= `first`, h steps
    ahead, against the historic average; see `cmd_short`."""
    import numpy as np
    import pandas as pd

    from prewarm.forecasters.select import SelectForecaster

    err_s, err_m = np.zeros(len(windows)), np.zeros(len(windows))
    inside = {80: [[] for _ in windows], 95: [[] for _ in windows]}
    longest = max(len(y) for _, y in windows)
    for k in range(first, longest - h + 1):
        live = [i for i, (_, y) in enumerate(windows) if len(y) >= k + h]
        hist = pd.concat([pd.DataFrame({"unique_id": f"w{i}", "ds": pd.date_range(
            windows[i][0], periods=k, freq="60s"), "y": windows[i][1][:k]}) for i in live])
        out = SelectForecaster(**params).forecast(hist, horizon=h, step_s=60)
        for i in live:
            y = windows[i][1]
            f = out[out["unique_id"] == f"w{i}"]
            actual = y[k:k + h]
            err_s[i] += np.abs(actual - f["mean"].to_numpy()).sum()
            err_m[i] += np.abs(actual - y[:k].mean()).sum()
            for lv in inside:
                inside[lv][i].extend((actual >= f[f"lo-{lv}"].to_numpy()) & (actual <= f[f"hi-{lv}"].to_numpy()))
    per80 = [np.mean(v) for v in inside[80]]
    return {"windows": len(windows), "mae_ratio": round(err_s.sum() / err_m.sum(), 3),
            "worse_windows": round(float(np.mean(err_s > err_m * (1 + 1e-9))), 3),
            "cov80": round(float(np.mean(np.concatenate(inside[80]))), 3),
            "cov95": round(float(np.mean(np.concatenate(inside[95]))), 3),
            "cov80_p10_p90": [round(float(np.quantile(per80, 0.1)), 3), round(float(np.quantile(per80, 0.9)), 3)]}


def cmd_short(args) -> None:
    """The short-history regime (under a day: a young endpoint) on tuning parts only: per
    window and minute k >= 10, `select` forecasts `h` minutes from the first k counts; scored
    against the historic average (what seasonal naive falls back to). Prints per source and
    horizon: MAE ratio (pooled), share of windows where select's MAE is above the average's,
    pooled 80%/95% coverage and the 10th/90th percentile of the per-window 80% coverage."""
    params = json.loads(args.params) if args.params else {}
    summary = []
    for key, windows in short_windows(int(args.every * 3600)).items():
        for h in args.horizons:
            row = {"source": key, "h": h, **short_scores(windows, h, params)}
            summary.append(row)
            print(json.dumps(row), flush=True)
    print("| source | horizon | windows | MAE select / average | windows worse | cov80 / cov95 | cov80 per window p10-p90 |")
    print("|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['source']} | {r['h']} min | {r['windows']} | {r['mae_ratio']:.3f} | {r['worse_windows']:.2f} | "
              f"{r['cov80']:.3f} / {r['cov95']:.3f} | {r['cov80_p10_p90'][0]:.2f}-{r['cov80_p10_p90'][1]:.2f} |")


def protocol_table(results, run: str, baseline: str) -> str:
    """Markdown: per series, part and horizon, `run` against `baseline`."""
    import statistics

    by = {(r["split"], r["series"], r["part"], r["horizon_s"], r["run"]): r for r in results}
    lines = [f"| series | part | horizon | step | MAE {run} / {baseline} | ratio (90% interval) | pinball ratio | "
             f"{run} cov80 / cov95 | {baseline} cov80 / cov95 |", "|---|---|---|---|---|---|---|---|---|"]
    ratios: dict[tuple, list] = {}
    for (split, series, part, h, r), row in by.items():
        if r != run:
            continue
        base = by.get((split, series, part, h, baseline))
        if base is None:
            continue
        ratio = row["mae"] / base["mae"] if base["mae"] else float("nan")
        pin = row["pinball"] / base["pinball"] if base["pinball"] else float("nan")
        ratios.setdefault((part, h), []).append(ratio)
        hz = horizon_label(h)
        miss80 = "" if within_tolerance(row["coverage-80"], 0.8) else "**"
        miss95 = "" if within_tolerance(row["coverage-95"], 0.95) else "**"
        worse = "**" if ratio > 1 else ""
        ci = row.get("mae-ratio-ci")
        interval = f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        lines.append(f"| {split} {series} | {part} | {hz} | {row['step_s'] // 60} min | {row['mae']:.3g} / "
                     f"{base['mae']:.3g} | {worse}{ratio:.3f}{worse}{interval} | {pin:.3f} | {miss80}{row['coverage-80']:.3f}{miss80}"
                     f" / {miss95}{row['coverage-95']:.3f}{miss95} | {base['coverage-80']:.3f} / {base['coverage-95']:.3f} |")
    for (part, h), rs in sorted(ratios.items()):
        lines.append(f"\nmean MAE ratio, {part}, horizon {h} s: {statistics.mean(rs):.3f} over {len(rs)} series "
                     f"(worst {max(rs):.3f})")
    return "\n".join(lines)


#: fewer independent stretches than this and a bootstrap interval says little (with 2 blocks
#: it has three possible values): no judgement of chance is made
MIN_BLOCKS = 10


def within_tolerance(point: float, nominal: float, tolerance: float = 0.05) -> bool:
    """|point - nominal| <= tolerance, inclusive as written: 168 of 224 steps covered is
    0.75, exactly 5 points from 80%, which float subtraction puts 4e-17 beyond."""
    return abs(point - nominal) <= tolerance + 1e-9


def coverage_verdict(point: float, ci, nominal: float, blocks: int, tolerance: float = 0.05) -> str:
    """Within (the measured share within `tolerance` of nominal); off (outside, and so is the
    whole interval: the band is off beyond what chance explains); off, but the interval
    reaches back within the tolerance (the data cannot tell it from a band within); or off,
    with too few blocks to tell."""
    if within_tolerance(point, nominal, tolerance):
        return "within"
    if blocks < MIN_BLOCKS:
        return f"**off**; {blocks} blocks, too few to tell chance from a miss"
    lo, hi = ci
    if hi < nominal - tolerance or lo > nominal + tolerance:
        return "**off**"
    return "**off**, chance can explain it"


def coverage_table(results, run: str) -> str:
    """Markdown: per series, part and horizon, `run`'s coverage with its 90% block-bootstrap
    interval (blocks: horizon-long stretches of target time), and the verdict."""
    lines = ["| series | part | horizon | blocks | cov80 (90% interval) | verdict | cov95 (90% interval) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r["run"] != run or "coverage-80-ci" not in r:
            continue
        h = r["horizon_s"]
        hz = horizon_label(h)
        cells = []
        for lv in (80, 95):
            point, ci = r[f"coverage-{lv}"], r[f"coverage-{lv}-ci"]
            cells.append(f"{point:.3f} ({ci[0]:.3f}-{ci[1]:.3f}) | {coverage_verdict(point, ci, lv / 100, r['blocks'])}")
        lines.append(f"| {r['split']} {r['series']} | {r['part']} | {hz} | {r.get('blocks', '')} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("startup")
    p.add_argument("--model", default=None, help="the [forecast] default when not given")
    p = sub.add_parser("speed")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--models", nargs="*")
    p = sub.add_parser("fleet")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--model", default="seasonal-naive")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--batch", type=int, default=500)
    p = sub.add_parser("accuracy")
    p.add_argument("--step", type=int, default=300, help="finest step the resolution choice may pick")
    p.add_argument("--traces", nargs="*", help="nasa, alibaba, azure (the default); nasa-1d, alibaba-1d: one day of history")
    p.add_argument("--runs", nargs="*", help="auto, seasonal-naive, sn-raw (default), or any forecaster name")
    p = sub.add_parser("protocol")
    p.add_argument("--splits", nargs="*", default=["alibaba", "nasa", "azure"])
    p.add_argument("--parts", nargs="*", default=["tune"], help="tune (the default) and/or report")
    p.add_argument("--runs", nargs="*", default=["select", "seasonal-naive"],
                   help=f"the first is compared with seasonal-naive; known: {', '.join(PROTOCOL_RUNS)} or any model")
    p.add_argument("--out", help="also write the JSON lines here")
    p.add_argument("--params", help="JSON constructor parameters for the select runs (tuning parts only)")
    p.add_argument("--baseline-from", help="JSON lines of an earlier run holding the baseline's rows")
    p = sub.add_parser("short", help="young endpoints (under a day of history) from the tuning parts only")
    p.add_argument("--params", help="JSON constructor parameters for select")
    p.add_argument("--horizons", nargs="*", type=int, default=[5, 15], help="minutes")
    p.add_argument("--every", type=float, default=3.0, help="hours between window starts")
    args = parser.parse_args()
    {"startup": cmd_startup, "speed": cmd_speed, "fleet": cmd_fleet, "accuracy": cmd_accuracy,
     "protocol": cmd_protocol, "short": cmd_short}[args.cmd](args)


if __name__ == "__main__":
    main()
