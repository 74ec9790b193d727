"""History in, demand forecast out, for one or many endpoints.

Bridges the store's rows and the forecasters' long format, and turns a forecaster's frame
(requests per step) into the planner's DemandForecast (requests per minute).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Sequence

from .planner.model import DemandForecast
from .units import floor_time

log = logging.getLogger("prewarm.demand")


def history_frame(endpoint: str, rows: Sequence[tuple], start: datetime, end: datetime, step_s: int):
    """Dense long-format frame (unique_id, ds, y) from (ts, requests, ...) rows at step_s.

    Steps with no row count as zero requests from the first row on: the store holds rows
    only where traffic was recorded. ds is naive UTC, as statsforecast expects.
    """
    import numpy as np
    import pandas as pd

    start = floor_time(start, step_s)
    end = floor_time(end, step_s)
    if rows:
        first = floor_time(rows[0][0], step_s)
        start = max(start, first)
    n = int((end - start).total_seconds() // step_s)
    y = np.zeros(max(n, 0))
    base = start.timestamp()
    for row in rows:
        i = int((row[0].timestamp() - base) // step_s)
        if 0 <= i < n:
            y[i] += row[1]
    ds = pd.date_range(start.replace(tzinfo=None), periods=len(y), freq=f"{step_s}s")
    return pd.DataFrame({"unique_id": endpoint, "ds": ds, "y": y})


def frame_to_demand(frame, step_s: int, model: str) -> dict[str, DemandForecast]:
    """Forecaster output (requests per step) -> per-endpoint DemandForecast (requests/minute)."""
    out: dict[str, DemandForecast] = {}
    per_minute = 60.0 / step_s
    bands = [c for c in frame.columns if c.startswith(("lo-", "hi-"))]
    for uid, part in frame.groupby("unique_id", sort=False):
        part = part.sort_values("ds")
        start = part["ds"].iloc[0].to_pydatetime().replace(tzinfo=timezone.utc)
        out[str(uid)] = DemandForecast(
            start=start, step_s=step_s, model=model,
            mean=tuple(float(v) * per_minute for v in part["mean"]),
            bands={b: tuple(float(v) * per_minute for v in part[b]) for b in bands})
    return out


def demand_records(demand: DemandForecast) -> list[dict]:
    """One record per step: ds, mean and bands, in requests per minute (for JSON and the store)."""
    out = []
    for i in range(len(demand)):
        rec = {"ds": demand.at(i), "mean": demand.mean[i]}
        rec.update({b: v[i] for b, v in demand.bands.items()})
        out.append(rec)
    return out


def forecast_demand(histories: dict[str, Sequence[tuple]], *, now: datetime, model: str, step_s: int,
                    horizon_s: float, history_s: float, season_s: float,
                    levels: Sequence[int]) -> dict[str, DemandForecast]:
    """Forecast every endpoint in `histories` from data strictly before `now`.

    The chosen model falls back to seasonal-naive for endpoints it fails on, so a failing
    model never leaves an endpoint without a forecast.
    """
    import pandas as pd

    from .forecasters import registry

    start = now - timedelta(seconds=history_s)
    frames = [history_frame(name, rows, start, now, step_s) for name, rows in histories.items() if rows]
    if not frames:
        return {}
    history = pd.concat(frames, ignore_index=True)
    horizon = max(1, int(horizon_s // step_s))
    try:
        forecaster = registry.create(model, season_s=int(season_s))
        frame = forecaster.forecast(history, horizon=horizon, step_s=step_s, levels=levels)
        used = forecaster.describe()
    except registry.UnknownForecaster:
        raise
    except Exception as exc:  # noqa: BLE001 - any model failure falls back, and says so
        log.warning("forecaster %s failed (%s); falling back to seasonal-naive", model, exc)
        forecaster = registry.create("seasonal-naive", season_s=int(season_s))
        frame = forecaster.forecast(history, horizon=horizon, step_s=step_s, levels=levels)
        used = forecaster.describe() + " (fallback)"
    return frame_to_demand(frame, step_s, used)
