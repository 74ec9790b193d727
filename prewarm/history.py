"""Sources -> the cycle: an endpoint's request history, from the store or from its own
history source ([endpoints.history]), as rows or as forecaster frames."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .config import EndpointSettings
from .runtime import Runtime

log = logging.getLogger("prewarm.cycle")
BASE_STEPS = (60, 300, 900)  # bucket sizes forecast at their own step (others: per minute)


def read_history(rt: Runtime, ep: EndpointSettings, start: datetime, end: datetime) -> list[tuple]:
    if ep.history is not None:
        from .store.external import fetch_history
        return fetch_history(ep.history.url, ep.history.query, endpoint=ep.name, start=start, end=end)
    return rt.store.history(ep.name, start, end)


def read_history_frames(rt: Runtime, eps: list[EndpointSettings], start: datetime, end: datetime,
                        failed: dict[str, tuple[str, str]]) -> dict[int, Any]:
    """History of many endpoints as forecaster frames by base step: one query per chunk from
    the store, one fetch per endpoint with its own history source. Endpoints whose stored
    buckets are all 5 or 15 minutes (aligned) are forecast from them as they are, not spread
    over minutes and gap-filled. A read that fails is noted in `failed` (fail warm)."""
    import pandas as pd

    from .forecasting import history_from_rows

    out: dict[int, list] = {}
    mine: dict[str, tuple[str, str]] = {}  # this read's failures (`failed` may hold earlier ones)
    stored = [ep.name for ep in eps if ep.history is None]
    if stored:
        try:
            frame = rt.store.history_frame(stored, start, end)
        except Exception as exc:  # noqa: BLE001 - fail warm: keep the cached forecast and the last plan
            frame = None
            for name in stored:
                mine[name] = ("history", str(exc))
        if frame is not None and len(frame):
            ns = frame["ds"].astype("int64")
            frame["aligned"] = (ns % (frame["bucket_s"] * 1_000_000_000)) == 0
            per = frame.groupby("unique_id", sort=False).agg(lo=("bucket_s", "min"), hi=("bucket_s", "max"),
                                                             aligned=("aligned", "all"))
            base = per["lo"].where((per["lo"] == per["hi"]) & per["aligned"] & per["lo"].isin(BASE_STEPS), 60)
            frame["base"] = frame["unique_id"].map(base)
            for step, part in frame.groupby("base", sort=False):
                part = part[["unique_id", "ds", "y"]]
                if step == 60:  # minutes, as history_from_rows makes them
                    part = part.assign(ds=part["ds"].dt.floor("60s")).groupby(["unique_id", "ds"], as_index=False)["y"].sum()
                out.setdefault(int(step), []).append(part.reset_index(drop=True))
    external = {}
    for ep in eps:
        if ep.history is not None:
            try:
                external[ep.name] = read_history(rt, ep, start, end)
            except Exception as exc:  # noqa: BLE001
                mine[ep.name] = ("history", str(exc))
    if any(external.values()):
        out.setdefault(60, []).append(history_from_rows(external))
    for name, (_, why) in mine.items():
        rt._error("history", name)
        log.error("history for %s failed, keeping the last forecast and plan: %s", name, why)
    failed.update(mine)
    return {step: pd.concat(parts, ignore_index=True) for step, parts in out.items()}
