"""The issue-3 target table: predictive policy vs the static envelope and the clairvoyant bound.

    .venv/bin/python bench/backtest_bench.py            # everything (a few minutes on 2 cores)
    .venv/bin/python bench/backtest_bench.py alibaba    # one group: alibaba, nasa, azure, speed
    .venv/bin/python bench/backtest_bench.py --seed 1 alibaba   # another seed: sub-second spreading
                                                                # of arrivals and cold-start draws

Worker models:
* Alibaba GenAI (M0002, M0001, M0004, __all__): concurrency 1, service times from the trace,
  measured cold-start distribution, 60 s platform idle timeout, last 7 days (11-24 .. 12-01).
* NASA: service 20 s, concurrency 8, cold start 30 s, 60 s platform idle timeout, last week.
* Azure LLM code (one hour, bursty): an LLM server batching 16 requests (concurrency 16),
  service 2 s, cold start 60 s, 60 s platform idle timeout; evaluation on the last 30 minutes,
  the first 27 warm the forecaster (season 10 min, as an hour has no daily cycle).
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from prewarm.backtest import frontier as fr
from prewarm.backtest.predictive import PredictiveSettings
from prewarm.backtest.runner import BacktestConfig, run
from prewarm.backtest.simulator import ColdStart, WorkerModel
from prewarm.backtest.traces import load_cold_starts, load_trace
from prewarm.units import parse_timestamp

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
SEED = 0  # --seed: spreading of arrivals within their second/minute, and cold-start draws


def ts(text: str) -> float:
    return parse_timestamp(text).timestamp()


def row(name, trace, cfg):
    t = time.perf_counter()
    pred = run(trace, "predictive", cfg)
    t_pred = time.perf_counter() - t
    front = fr.envelope(fr.sweep(trace, cfg))
    comp = fr.compare(front, pred)
    bound = run(trace, "clairvoyant", cfg)
    env_h = fr.hours_at(front, pred.cold_rate)
    env_c = fr.cold_at(front, pred.worker_hours)
    print(f"{name:10s} pred {100 * pred.cold_rate:6.3f}% cold ({pred.cold_requests} of {pred.requests}) "
          f"{pred.worker_hours:8.1f} wh | envelope: {env_h:8.1f} wh at that cold rate, {100 * env_c:6.3f}% at those wh | ratios hours "
          f"{comp.hours_ratio:.2f} cold {comp.cold_ratio:.2f} -> {'BEATS' if comp.beats else 'misses'} | "
          f"clairvoyant {bound.worker_hours:7.1f} wh (pred {pred.worker_hours / bound.worker_hours:.1f}x) | "
          f"replay {t_pred:.1f}s", flush=True)
    for other in ("keepalive:600", "hybrid-histogram", "reactive"):
        r = run(trace, other, cfg)
        print(f"{'':10s}   {other:17s} {100 * r.cold_rate:6.3f}% cold {r.worker_hours:8.1f} wh", flush=True)


def alibaba():
    cs = ColdStart(samples_s=load_cold_starts(TRACES / "alibaba_genai_2026" / "cold_start_latency.csv"))
    cfg = BacktestConfig(start_s=ts("2024-11-24T00:00:00Z"), end_s=ts("2024-12-01T00:00:00Z"),
                         worker=WorkerModel(1, 60.0), cold_start=cs, seed=SEED)
    traces = load_trace(TRACES / "alibaba_genai_2026" / "requests.csv", ["M0002", "M0001", "M0004", "__all__"],
                        seed=SEED)
    for name, tr in traces.items():
        row(name, tr, cfg)


def nasa():
    tr = load_trace(TRACES / "nasa_http_1995" / "per_minute.csv", seed=SEED)["nasa-ksc-www"]
    cfg = BacktestConfig(start_s=ts("1995-07-21T13:33:00-04:00"), end_s=ts("1995-07-28T13:33:00-04:00"),
                         worker=WorkerModel(8, 60.0), cold_start=ColdStart(fixed_s=30.0), service_time_s=20.0,
                         seed=SEED)
    row("nasa", tr, cfg)


def azure():
    tr = load_trace(TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")["code"]
    end = float(tr.arrivals[-1]) + 1
    cfg = BacktestConfig(start_s=end - 1800, end_s=end, worker=WorkerModel(16, 60.0),
                         cold_start=ColdStart(fixed_s=60.0), service_time_s=2.0, warmup_s=1800,
                         predictive=PredictiveSettings(step_s=60, season_s=600, refit_s=300))
    row("azure-code", tr, cfg)


def speed():
    """A 16-day replay of one endpoint (the whole Alibaba M0002 trace, predictive policy)."""
    cs = ColdStart(samples_s=load_cold_starts(TRACES / "alibaba_genai_2026" / "cold_start_latency.csv"))
    tr = load_trace(TRACES / "alibaba_genai_2026" / "requests.csv", ["M0002"])["M0002"]
    cfg = BacktestConfig(start_s=ts("2024-11-15T00:00:00Z"), end_s=ts("2024-12-01T00:00:00Z"),
                         worker=WorkerModel(1, 60.0), cold_start=cs, warmup_s=0.0)
    run(tr, "keepalive:60", cfg)  # imports
    t = time.perf_counter()
    r = run(tr, "predictive", cfg)
    print(f"16-day replay of M0002 (predictive, {r.requests} requests, 23040 planning cycles): "
          f"{time.perf_counter() - t:.1f}s")
    nasa_tr = load_trace(TRACES / "nasa_http_1995" / "per_minute.csv")["nasa-ksc-www"]
    ncfg = replace(cfg, start_s=ts("1995-07-12T13:33:00-04:00"), end_s=ts("1995-07-28T13:33:00-04:00"),
                   worker=WorkerModel(8, 60.0), cold_start=ColdStart(fixed_s=30.0), service_time_s=20.0)
    t = time.perf_counter()
    r = run(nasa_tr, "predictive", ncfg)
    print(f"16-day replay of NASA (predictive, {r.requests} requests): {time.perf_counter() - t:.1f}s")


if __name__ == "__main__":
    groups = {"alibaba": alibaba, "nasa": nasa, "azure": azure, "speed": speed}
    args = sys.argv[1:]
    if args[:1] == ["--seed"]:
        SEED, args = int(args[1]), args[2:]
    for name in args or list(groups):
        print(f"== {name}", flush=True)
        groups[name]()
