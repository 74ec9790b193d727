"""How good a stored forecast was, once the actuals are in. Pure functions.

- pinball loss at quantile q: the loss the planner pays for sizing on that quantile
  (hi-80 is q = 0.9): under-forecasts cost q per request, over-forecasts 1 - q;
- coverage of a band: the share of actuals inside [lo, hi] (nominal 0.8 for the 80% band);
- coverage_interval: how far a measured coverage could be from the band's true one by
  chance, by a block bootstrap over stretches of target time; error_ratio_interval the same
  for the ratio of two forecasts' MAE on the same steps;
- MASE: mean absolute error over the in-sample mean absolute error of the seasonal naive
  forecast, so that 1.0 means "as good as copying the last season".
Steps flagged `imputed` (no data was collected) are not scored.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

from .base import level_to_quantile

if TYPE_CHECKING:
    import pandas as pd


def pinball_loss(actual: Sequence[float], predicted: Sequence[float], q: float) -> float:
    import numpy as np

    y, p = np.asarray(actual, float), np.asarray(predicted, float)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} actuals but {len(p)} predictions")
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if len(y) == 0:
        return math.nan
    diff = y - p
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def coverage(actual: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> float:
    import numpy as np

    y = np.asarray(actual, float)
    if len(y) == 0:
        return math.nan
    return float(np.mean((y >= np.asarray(lo, float)) & (y <= np.asarray(hi, float))))


def coverage_interval(actual: Sequence[float], lo: Sequence[float], hi: Sequence[float],
                      blocks: Sequence[int], *, confidence: float = 0.9, draws: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """A block-bootstrap interval for a band's coverage: how far the measured share could be
    from the band's true coverage by chance alone, given how many independent stretches of
    time it was measured on. Steps of one block (e.g. the same horizon-long stretch of target
    time, scored from overlapping origins) stay together: their hits are correlated (one level
    error misses them all), so counting steps as independent would overstate the evidence.
    Resamples whole blocks with replacement `draws` times (seeded: the same input gives the
    same interval). (nan, nan) without actuals; a single block gives its own coverage twice
    (nothing to resample: the data cannot say how far off it is)."""
    import numpy as np

    y = np.asarray(actual, float)
    inside = (y >= np.asarray(lo, float)) & (y <= np.asarray(hi, float))
    return _block_ratio_interval(inside, np.ones(len(y)), blocks, confidence, draws, seed)


def error_ratio_interval(errors: Sequence[float], baseline_errors: Sequence[float], blocks: Sequence[int], *,
                         confidence: float = 0.9, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A paired block-bootstrap interval for the ratio of two forecasts' mean absolute errors
    on the same steps (`errors` and `baseline_errors` aligned, e.g. MAE against seasonal
    naive's): whole blocks are resampled, both forecasts' errors together, so the interval
    says whether the measured ratio could be chance. (nan, nan) without steps."""
    import numpy as np

    a, b = np.abs(np.asarray(errors, float)), np.abs(np.asarray(baseline_errors, float))
    if len(a) != len(b):
        raise ValueError(f"{len(a)} errors but {len(b)} baseline errors")
    return _block_ratio_interval(a, b, blocks, confidence, draws, seed)


def _block_ratio_interval(num, den, blocks, confidence: float, draws: int, seed: int) -> tuple[float, float]:
    """The `confidence` interval of sum(num) / sum(den) over whole blocks resampled with
    replacement `draws` times (seeded); (nan, nan) without steps."""
    import numpy as np

    if len(num) == 0:
        return (math.nan, math.nan)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    _, code = np.unique(np.asarray(blocks), return_inverse=True)
    sn = np.bincount(code, weights=np.asarray(num, float))
    sd = np.bincount(code, weights=np.asarray(den, float))
    pick = np.random.default_rng(seed).integers(0, len(sn), size=(draws, len(sn)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = sn[pick].sum(axis=1) / sd[pick].sum(axis=1)
    tail = (1 - confidence) / 2
    return (float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail)))


def mase(actual: Sequence[float], predicted: Sequence[float], insample: Sequence[float],
         season: int = 1) -> float:
    """NaN when the in-sample naive error is zero (a flat or all-zero history)."""
    import numpy as np

    y, p, x = (np.asarray(a, float) for a in (actual, predicted, insample))
    if len(y) == 0:
        return math.nan
    season = season if len(x) > season else 1
    if len(x) <= season:
        return math.nan
    scale = float(np.mean(np.abs(x[season:] - x[:-season])))
    if scale == 0:
        return math.nan
    return float(np.mean(np.abs(y - p))) / scale


def score(frame: "pd.DataFrame", *, levels: Iterable[int] = (80, 95), quantile_column: str = "hi-80",
          insample: "pd.DataFrame | None" = None, season: int = 1) -> dict[str, dict[str, float]]:
    """Per unique_id: pinball at the planner's band, coverage of each level, MAE, MASE
    (when `insample` history is given) and the number of scored steps. `frame` holds the
    forecast columns and the actuals `y` on the same rows (cross-validation output, or a
    stored forecast joined to what happened)."""
    q = level_to_quantile(quantile_column)
    data = frame
    if "imputed" in data.columns:
        data = data[~data["imputed"].astype(bool)]
    data = data.dropna(subset=["y"])
    result: dict[str, dict[str, float]] = {}
    history = dict(tuple(insample.groupby("unique_id"))) if insample is not None else {}
    for uid, grp in data.groupby("unique_id", sort=False):
        y = grp["y"].to_numpy(float)
        row = {"n": float(len(y)), "pinball": pinball_loss(y, grp[quantile_column], q),
               "mae": float(abs(y - grp["mean"].to_numpy(float)).mean()) if len(y) else math.nan}
        for level in levels:
            row[f"coverage-{level}"] = coverage(y, grp[f"lo-{level}"], grp[f"hi-{level}"])
        if uid in history:
            row["mase"] = mase(y, grp["mean"], history[uid]["y"], season)
        result[str(uid)] = row
    return result
