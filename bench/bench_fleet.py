"""Imported by `forecast_bench.py startup` in a fresh process (kept out of the way of the
heavier bench module so the measured start is what a daemon pays)."""


def fleet(n: int):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from forecast_bench import synthetic_fleet
    return synthetic_fleet(n)
