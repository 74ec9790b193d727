"""Peak memory of `prewarm ingest` on a large per-minute file (issue 12: 5 M rows, 830 MB,
peaked at 8.1 GB RSS when the file was read whole; target < 500 MB).

Generates the file (ts with microseconds and an offset, 50 endpoints with long names, every
column), ingests it with the installed `prewarm` in a child process into a fresh database
(SQLite by default, or --url of an empty server database, upgraded first), and prints the
rows, the file size, the wall time and the child's peak RSS. Then ingests it again (every row
already stored) and prints the same.

    nice -n 10 .venv/bin/python bench/ingest_memory.py                 # 5,000,000 rows, SQLite
    nice -n 10 .venv/bin/python bench/ingest_memory.py --rows 500000 --url postgresql://postgres@127.0.0.1/bench
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BIN = Path(sys.executable).parent / "prewarm"
# Long names, as a fleet names its deployments: ~166 bytes a row, 830 MB for 5 M rows.
ENDPOINTS = [f"team-{i:02d}/llama-3-70b-instruct-awq-prod-us-east-1-variant-{i % 3}"
             f"/deployment-blue-green-canary-rollout-{i:04d}-primary" for i in range(50)]


def generate(path: Path, rows: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with open(path, "w") as fh:
        fh.write("ts,endpoint,requests,cold_starts,p50_ms,p99_ms\n")
        minute = 0
        written = 0
        while written < rows:
            ts = (start + timedelta(minutes=minute)).isoformat(timespec="microseconds")
            for k, name in enumerate(ENDPOINTS):
                if written == rows:
                    break
                n = (minute * 7 + k * 13) % 997
                fh.write(f"{ts},{name},{n},{n % 5},{120 + n % 300}.125,{900 + n % 2000}.875\n")
                written += 1
            minute += 1


def run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `prewarm` child (each run its own measurement:
    the child runs under a fresh intermediate process)."""
    code = ("import resource, subprocess, sys, time; t = time.monotonic(); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
            "sys.exit(p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, str(BIN), *args], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"prewarm {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--url", help="an empty server database (default: a new SQLite file)")
    ap.add_argument("--keep", help="directory for the file and database (default: a temporary one)")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="prewarm-ingest-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv = tmp / f"counts-{args.rows}.csv"
    if not csv.exists():
        t = time.monotonic()
        generate(csv, args.rows)
        print(f"generated {csv} in {time.monotonic() - t:.0f} s")
    url = args.url or f"sqlite:///{tmp / 'bench.db'}"
    if args.url:
        subprocess.run([str(BIN), "--db", url, "db", "upgrade"], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(csv) / 1e6
    print(f"file: {args.rows:,} rows, {size:.0f} MB; store: {url.split('://')[0]}")
    for label in ("first ingest", "again (all stored)"):
        wall, rss = run(["--db", url, "ingest", str(csv)])
        print(f"{label}: {wall:.0f} s, peak RSS {rss:.0f} MB")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
