"""Re-choose the planner constants of issue 10 on the TUNING parts only (bench/protocol.py): a
coordinate sweep of each constant around the shipped `[planner]` defaults, every other one at
its default.

    nice -n 19 .venv/bin/python bench/tune_defaults.py --out tune.jsonl alibaba azure
    nice -n 19 .venv/bin/python bench/tune_defaults.py --out tune.jsonl --envelopes env.json nasa \\
        --constants burst_value_share --values burst_value_share=0.5   # NASA at some values only
    nice -n 19 .venv/bin/python bench/tune_defaults.py --table tune.jsonl   # the tables again

Series: the tuning part of every series (bench/backtest_bench.py --part tune: Alibaba Nov 15-23
after two days of warm-up, every model with >= 200 requests in Nov 15-23 and `__all__`; NASA
Jul 1-14 after two days; Azure code and conv, the first half hour), with backtest_bench's
worker models. The predictive policy replays the daemon's default forecaster (`select`), seed
0, full capability (idle timeout settable), the static guard off: the guard has no constant of
its own, the sweep tunes the plan it guards.

Score of one setting against each series' static envelope (every floor x keep-alive, swept once
per series on the same tuning part, reused for every setting): the issue's bar (hours ratio <=
0.70 or cold ratio <= 0.50, with the cold rate <= target + 1 point). Objective: the number of
series that beat, more is better; ties broken by the mean over series of
min(hours ratio, cold ratio x 1.4) (the cold ratio scaled so that its bar, 0.5, sits at the
hours ratio's, 0.70; each capped at 2, an infinite ratio counts 2), lower is better.
One Markdown table per constant; a row per value (the centre's row, the defaults or `--base`,
is shared by every table). `--base` runs a later pass of the coordinate sweep around the values
an earlier pass chose.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backtest_bench as bb  # noqa: E402  (bench/backtest_bench.py)

from prewarm.backtest import frontier as fr  # noqa: E402
from prewarm.backtest.predictive import PredictiveSettings  # noqa: E402
from prewarm.backtest.runner import capacity_for, run  # noqa: E402
from prewarm.config import PlannerSettings  # noqa: E402
from prewarm.policy import policy_from_settings  # noqa: E402

# The constants of issue 10 the sweep moves, and the values tried (each around its default).
SWEEP: dict[str, tuple[float, ...]] = {
    "burst_value_share": (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0),
    "initial_value_factor": (1.0, 2.0, 3.0, 5.0),
    "give_back_span_s": (21600.0, 43200.0, 86400.0, 172800.0),
    "smoothing_s": (0.0, 1800.0, 3600.0, 7200.0, 10800.0),
}
SEED = 0
RATIO_CAP = 2.0


def default(constant: str, base: dict[str, float] | None = None) -> float:
    """The constant's value at the centre of the sweep: `base` (a later pass of the coordinate
    sweep, around the values an earlier pass chose), else the shipped default."""
    if base and constant in base:
        return base[constant]
    return PlannerSettings.model_fields[constant].default


def settings_to_run(constants: list[str], only: dict[str, tuple[float, ...]],
                    base: dict[str, float]) -> list[tuple[str, float]]:
    """(constant, value) pairs, the centre first and once (as ("default", 0))."""
    out: list[tuple[str, float]] = [("default", 0.0)]
    for c in constants:
        for v in only.get(c, SWEEP[c]):
            if v != default(c, base):
                out.append((c, v))
    return out


def base_name(base: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(base.items()))


def score(hours_ratio: float, cold_ratio: float) -> float:
    def cap(x: float) -> float:
        return RATIO_CAP if not math.isfinite(x) else min(RATIO_CAP, x)
    return min(cap(hours_ratio), cap(cold_ratio * 0.70 / 0.50))


def envelope(name: str, tr, cfg, cache: Path | None) -> list[fr.Point]:
    """The series' static envelope on its tuning part, swept once (kept in `cache`, a JSON file
    of envelopes by series, so a later run at other values does not sweep it again)."""
    known = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    if name in known:
        return [fr.Point(*p) for p in known[name]]
    t0 = time.perf_counter()
    front = fr.envelope(fr.sweep(tr, cfg))
    print(f"{name}: envelope {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    if cache is not None:
        known = json.loads(cache.read_text()) if cache.exists() else {}
        known[name] = [[p.floor, p.keepalive_s, p.cold_rate, p.worker_hours] for p in front]
        cache.write_text(json.dumps(known))
    return front


def replay_all(groups: list[str], constants: list[str], only: dict[str, tuple[float, ...]], out: Path,
               cache: Path | None = None, base: dict[str, float] | None = None) -> None:
    base = base or {}
    predictive = PredictiveSettings(guard="off")
    for spec in groups:
        group, _, names = spec.partition(":")
        for name, tr, cfg in bb.CONFIGS[group](names.split(",") if names else None, "tune", SEED, predictive):
            front = envelope(name, tr, cfg, cache)
            capacity = capacity_for(tr, cfg)
            for constant, value in settings_to_run(constants, only, base):
                changes = dict(base) if constant == "default" else {**base, constant: value}
                policy = policy_from_settings(PlannerSettings(target_cold_rate=bb.TARGET, **changes), capacity)
                t = time.perf_counter()
                r = run(tr, "predictive", replace(cfg, policy=policy))
                secs = time.perf_counter() - t
                comp = fr.compare(front, r)
                beats = (comp.hours_ratio <= 0.70 or comp.cold_ratio <= 0.50) and r.cold_rate <= bb.TARGET + 0.01
                rec = {"base": base_name(base), "series": name, "constant": constant, "value": value, "requests": r.requests,
                       "cold_rate": r.cold_rate, "worker_hours": r.worker_hours, "hours_ratio": comp.hours_ratio,
                       "cold_ratio": comp.cold_ratio, "beats": beats, "seconds": round(secs, 1)}
                print(f"{name} {constant}={value:g}: {100 * r.cold_rate:.2f}% {r.worker_hours:.1f} wh "
                      f"{comp.hours_ratio:.2f}/{comp.cold_ratio:.2f} {'beats' if beats else 'misses'} "
                      f"({secs:.0f}s)", file=sys.stderr, flush=True)
                with out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")


def tables(paths: list[Path], base: dict[str, float] | None = None) -> str:
    base = base or {}
    recs: dict[tuple[str, str, float], dict] = {}
    for p in paths:
        for line in p.read_text().splitlines():
            r = json.loads(line)
            if r.get("base", "") == base_name(base):  # a later run of the same setting wins
                recs[(r["series"], r["constant"], r["value"])] = r
    series = list(dict.fromkeys(k[0] for k in recs))
    lines = []
    for constant in SWEEP:
        values = sorted({k[2] for k in recs if k[1] == constant} | {default(constant, base)})
        if len(values) < 2:
            continue
        centre = f"others at {base_name(base)}; " if base else ""
        lines += [f"`{constant}` ({centre}centre {default(constant, base):g}):", "",
                  "| value | series beating | mean score | " + " | ".join(series) + " |",
                  "|---" * (3 + len(series)) + "|"]
        keys = [("default", 0.0) if v == default(constant, base) else (constant, v) for v in values]
        # The objective is taken over the series replayed at every value of the table, so that
        # values are compared on the same series (a partial run shows its cells but not more).
        common = [s for s in series if all((s, *k) in recs for k in keys)]
        for v, key in zip(values, keys):
            row = [recs.get((s, *key)) for s in series]
            have = [recs[(s, *key)] for s in common]
            n = sum(r["beats"] for r in have)
            mean = sum(score(r["hours_ratio"], r["cold_ratio"]) for r in have) / max(1, len(have))
            cells = ["n/a" if r is None else
                     f"{r['hours_ratio']:.2f}/{r['cold_ratio']:.2f} {'b' if r['beats'] else '**m**'} "
                     f"({100 * r['cold_rate']:.1f}%)" for r in row]
            mark = " (centre)" if v == default(constant, base) else ""
            lines.append(f"| {v:g}{mark} | {n}/{len(have)} | {mean:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Cells: hours ratio / cold ratio, b = beats, m = misses, (cold rate). Series beating and "
                 "mean score: over the series replayed at every value of the table.")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("groups", nargs="*", help="alibaba, nasa, azure; GROUP:A,B for some series of a group")
    ap.add_argument("--constants", default=",".join(SWEEP), help="which constants to sweep (comma-separated)")
    ap.add_argument("--values", action="append", default=[],
                    help="CONSTANT=V1,V2: only these values of it (e.g. the candidates, for NASA)")
    ap.add_argument("--out", type=Path, default=Path("tune_defaults.jsonl"), help="JSON lines, appended")
    ap.add_argument("--envelopes", type=Path, help="JSON cache of each series' envelope (read, then written)")
    ap.add_argument("--base", default="", help="CONSTANT=V,...: sweep around these values instead of the "
                                               "defaults (a second pass); also selects the tables printed")
    ap.add_argument("--table", type=Path, action="append", default=[], help="print the tables of these files")
    args = ap.parse_args(argv)
    constants = [c for c in args.constants.split(",") if c]
    unknown = set(constants) - set(SWEEP)
    if unknown:
        ap.error(f"unknown constants {sorted(unknown)} (known: {', '.join(SWEEP)})")
    only = {}
    for spec in args.values:
        c, _, vs = spec.partition("=")
        only[c] = tuple(float(v) for v in vs.split(","))
    base = {c: float(v) for c, _, v in (kv.partition("=") for kv in args.base.split(",") if kv)}
    if set(base) - set(SWEEP):
        ap.error(f"unknown constants in --base {sorted(set(base) - set(SWEEP))}")
    if args.groups:
        replay_all(args.groups, constants, only, args.out, args.envelopes, base)
    print(tables(args.table or [args.out], base))


if __name__ == "__main__":
    main(sys.argv[1:])
