"""bench/forecast_bench.py's coverage verdicts are what docs/benchmarks.md counts misses by:
"within 5 points" is inclusive, and a share of whole steps exactly 5 points off is within."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from forecast_bench import coverage_verdict, within_tolerance  # noqa: E402


def test_exactly_five_points_off_is_within():
    assert 168 / 224 - 0.8 < -0.05  # float subtraction puts it just beyond
    assert within_tolerance(168 / 224, 0.8)
    assert coverage_verdict(168 / 224, (0.68, 0.82), 0.8, 56) == "within"
    assert within_tolerance(0.90, 0.95) and within_tolerance(1.0, 0.95)


def test_beyond_five_points_is_off_and_says_whether_chance_can_explain_it():
    assert not within_tolerance(0.749, 0.8)
    assert coverage_verdict(0.862, (0.805, 0.917), 0.8, 28) == "**off**, chance can explain it"
    assert coverage_verdict(0.60, (0.55, 0.66), 0.8, 60) == "**off**"
    assert coverage_verdict(0.654, (0.586, 0.720), 0.8, 6).startswith("**off**; 6 blocks")
