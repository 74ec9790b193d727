"""How long `prewarm --help` takes, process start to exit (target: under 0.5 s).

    .venv/bin/python bench/cli_startup.py [--runs 20]

Prints min, median and max wall time of `prewarm --help` and of `prewarm providers list`
(which loads every provider module) over the runs.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "prewarm"


def timed(args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(BIN), *args], check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    for cmd in (["--help"], ["providers", "list"]):
        t = timed(cmd, args.runs)
        print(f"prewarm {' '.join(cmd):16s} min {min(t):.3f}s  median {statistics.median(t):.3f}s  "
              f"max {max(t):.3f}s  ({args.runs} runs)")


if __name__ == "__main__":
    main()
