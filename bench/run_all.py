"""`make bench`: the quick benchmarks, one after another (a few minutes). The long ones
(fleet, accuracy, the full backtest table, takeover) are run by hand: see bench/README.md."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
QUICK = [
    ["cli_startup.py", "--runs", "10"],
    ["forecast_bench.py", "startup"],
    ["backtest_bench.py", "speed"],
    ["daemon_timing.py"],
]


def main() -> int:
    failed = 0
    for args in QUICK:
        print(f"\n$ python bench/{' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
