import math

import pandas as pd
import pytest

from prewarm.forecasters.accuracy import (coverage, coverage_interval, error_ratio_interval, mase, pinball_loss,
                                          score)
from prewarm.forecasters.base import level_to_quantile


def test_pinball_weights_under_forecasts_by_q():
    # y=10, forecast 8: under by 2 -> 0.9*2; forecast 12: over by 2 -> 0.1*2
    assert pinball_loss([10], [8], 0.9) == pytest.approx(1.8)
    assert pinball_loss([10], [12], 0.9) == pytest.approx(0.2)
    assert pinball_loss([10, 10], [8, 12], 0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="quantile"):
        pinball_loss([1], [1], 1.0)
    with pytest.raises(ValueError, match="1 actuals but 2"):
        pinball_loss([1], [1, 2], 0.5)


def test_coverage_counts_inclusive_band():
    assert coverage([1, 5, 9, 10], [0, 0, 0, 0], [5, 5, 5, 10]) == 0.75
    assert math.isnan(coverage([], [], []))


def test_coverage_interval_counts_blocks_not_steps():
    import numpy as np

    rng = np.random.default_rng(3)
    # 40 blocks of 30 steps; each block is all in or all out (a level error misses them all),
    # 80% of blocks in: the interval is as wide as 40 coin flips, not 1,200
    inside_block = rng.random(40) < 0.8
    y = np.repeat(np.where(inside_block, 1.0, 10.0), 30)
    blocks = np.repeat(np.arange(40), 30)
    lo, hi = np.zeros_like(y), np.full_like(y, 5.0)
    a, b = coverage_interval(y, lo, hi, blocks)
    point = coverage(y, lo, hi)
    assert a < point < b
    binomial_40 = 1.645 * math.sqrt(point * (1 - point) / 40)
    assert (b - a) / 2 == pytest.approx(binomial_40, rel=0.3)
    # the same hits counted as 1,200 independent steps: about sqrt(30) times narrower
    a1, b1 = coverage_interval(y, lo, hi, np.arange(len(y)))
    assert (b1 - a1) < (b - a) / 3
    assert coverage_interval(y, lo, hi, blocks) == (a, b)  # seeded
    assert coverage_interval(y[:30], lo[:30], hi[:30], blocks[:30]) == (point_one := coverage(y[:30], lo[:30], hi[:30]),
                                                                         point_one)
    assert all(math.isnan(v) for v in coverage_interval([], [], [], []))


def test_error_ratio_interval_is_paired_by_block():
    import numpy as np

    rng = np.random.default_rng(5)
    base = np.repeat(rng.gamma(2.0, 5.0, 30), 10)  # 30 blocks whose errors differ a lot
    blocks = np.repeat(np.arange(30), 10)
    a, b = error_ratio_interval(0.8 * base, base, blocks)
    assert a == pytest.approx(0.8) and b == pytest.approx(0.8)  # paired: the blocks' spread cancels
    noisy = 0.8 * base * rng.uniform(0.5, 1.5, len(base))
    a, b = error_ratio_interval(noisy, base, blocks)
    ratio = noisy.sum() / base.sum()
    assert a < ratio < b and b < 1.0
    a1, b1 = error_ratio_interval(noisy[:20], base[:20], blocks[:20])  # two blocks: wide
    assert b1 - a1 > b - a
    with pytest.raises(ValueError, match="3 errors but 2"):
        error_ratio_interval([1, 2, 3], [1, 2], [0, 0, 0])
    assert all(math.isnan(v) for v in error_ratio_interval([], [], []))


def test_mase_against_seasonal_naive_scale():
    insample = [1, 2, 3, 1, 2, 3, 1, 2, 5]  # season 3: naive errors 0,0,0,0,0,2 -> scale 1/3
    assert mase([4, 4], [3, 5], insample, season=3) == pytest.approx(3.0)
    assert math.isnan(mase([1], [1], [0, 0, 0, 0], season=1))  # flat history: undefined


def test_score_skips_imputed_and_uses_planner_quantile():
    frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=3, freq="5min"),
                          "y": [10.0, 0.0, 100.0], "imputed": [False, False, True],
                          "mean": [8.0, 1.0, 0.0], "lo-80": [5.0, 0.0, 0.0], "hi-80": [9.0, 2.0, 0.0],
                          "lo-95": [4.0, 0.0, 0.0], "hi-95": [12.0, 3.0, 0.0]})
    s = score(frame, levels=(80, 95), quantile_column="hi-80")["a"]
    assert s["n"] == 2
    assert s["pinball"] == pytest.approx((0.9 * 1 + 0.1 * 2) / 2)
    assert s["coverage-80"] == 0.5 and s["coverage-95"] == 1.0
    assert level_to_quantile("hi-80") == 0.9
