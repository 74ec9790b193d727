"""The forecaster protocol.

History comes in statsforecast's long format (`unique_id, ds, y`): one row per endpoint and
step, dense (missing steps filled with 0 by the caller), `ds` naive UTC, `y` the request
count in that step. A forecaster returns, for every unique_id, `horizon` rows at the same
step: `unique_id, ds, mean, lo-<L>, hi-<L>` for each level L, in requests per step, never
negative. Batched: one call forecasts many endpoints.

This module imports nothing of prewarm: forecasters sit at the bottom of the graph.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

if TYPE_CHECKING:  # pandas is imported by the commands that forecast, not by `prewarm --help`
    import pandas as pd


class ForecastError(RuntimeError):
    def __init__(self, message: str, *, model: str, unique_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.unique_ids = list(unique_ids)


class Forecaster(ABC):
    name: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def forecast(self, history: "pd.DataFrame", *, horizon: int, step_s: int,
                 levels: Sequence[int] = (80, 95)) -> "pd.DataFrame":
        """history: unique_id, ds, y (dense at step_s). Returns the frame described above."""

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"


def interval_columns(levels: Sequence[int]) -> list[str]:
    cols: list[str] = []
    for level in sorted(levels):
        cols += [f"lo-{level}", f"hi-{level}"]
    return cols


def level_to_quantile(column: str) -> float:
    """'hi-80' -> 0.9, 'lo-95' -> 0.025, 'mean' -> 0.5 (close enough for a symmetric band)."""
    if column == "mean":
        return 0.5
    side, level = column.split("-")
    tail = (100 - int(level)) / 200
    return 1 - tail if side == "hi" else tail


def tidy(frame: "pd.DataFrame", levels: Sequence[int], keep: Sequence[str] = ()) -> "pd.DataFrame":
    """Clip at zero, keep bands ordered (lo <= mean <= hi), columns in the documented order
    (plus `keep`, e.g. cutoff and y of a cross-validation frame, after unique_id and ds)."""
    cols = ["mean", *interval_columns(levels)]
    out = frame.copy()
    for col in cols:
        out[col] = out[col].astype(float).clip(lower=0.0).fillna(0.0)
    for level in levels:
        lo, hi = f"lo-{level}", f"hi-{level}"
        out[lo] = out[[lo, "mean"]].min(axis=1)
        out[hi] = out[[hi, "mean"]].max(axis=1)
    return out[["unique_id", "ds", *keep, *cols]].reset_index(drop=True)
