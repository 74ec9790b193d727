"""Cold-start durations: a fixed number, or measured samples from a CSV.

A CSV gives its samples in a column `seconds`, or in a column `value` in milliseconds (the
Alibaba GenAI trace's cold_start_latency.csv).
"""
from __future__ import annotations

import csv
import math
from functools import lru_cache
from pathlib import Path

from .errors import InputError


@lru_cache(maxsize=16)
def load_samples(path: str) -> tuple[float, ...]:
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            if "seconds" in cols:
                col, scale = "seconds", 1.0
            elif "value" in cols:
                col, scale = "value", 0.001
            else:
                raise InputError(f"{path}: needs a column 'seconds' or 'value' (milliseconds); has {', '.join(cols)}")
            out = []
            for line, rec in enumerate(reader, start=2):
                try:
                    v = float(rec[col]) * scale
                except (TypeError, ValueError):
                    raise InputError(f"{path}: line {line}: {col} {rec[col]!r} is not a number") from None
                if not math.isfinite(v) or v < 0:
                    raise InputError(f"{path}: line {line}: {col} {rec[col]!r} is not a non-negative duration")
                out.append(v)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if not out:
        raise InputError(f"{path}: no samples")
    return tuple(sorted(out))


def percentile(samples: tuple[float, ...], pct: float) -> float:
    """Nearest-rank percentile of sorted samples (pct in (0, 100])."""
    rank = max(1, math.ceil(pct / 100.0 * len(samples)))
    return samples[min(rank, len(samples)) - 1]


def lead_seconds(fixed_s: float, dist_path: str | None, pct: float) -> float:
    """The planner's lead: the fixed cold start, or a percentile of the measured ones."""
    if dist_path:
        return percentile(load_samples(dist_path), pct)
    return fixed_s
