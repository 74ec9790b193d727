"""Forecast accuracy tracking: each stored forecast, once what it predicted has happened, is
scored against the actual counts (MASE, pinball loss at the planner's band, coverage of the
80% and 95% intervals), stored, and exported as metrics."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

log = logging.getLogger("prewarm.accuracy")
MASE_HISTORY = timedelta(days=7)
DAY_MINUTES = 1440


def score_pending(store, endpoint: str, *, now: datetime, horizon_s: float, quantile_column: str,
                  metrics=None, limit: int = 3) -> list[dict]:
    """Score up to `limit` stored forecasts of `endpoint` whose horizon has fully passed."""
    import pandas as pd

    from .forecasters.accuracy import score

    done = []
    for issued in store.unscored_forecasts(endpoint, now - timedelta(seconds=horizon_s), limit):
        rows = store.latest_forecast(endpoint, at=issued)
        if not rows or rows[0]["issued_at"] != issued:
            continue
        first, last = rows[0]["ds"], rows[-1]["ds"]
        actual = {r[0]: r[1] for r in store.history(endpoint, first - MASE_HISTORY, last + timedelta(minutes=1))}
        frame = pd.DataFrame([{**{k: v for k, v in r.items() if k not in ("issued_at", "step_s", "model")},
                               "unique_id": endpoint, "y": float(actual.get(r["ds"], 0.0))} for r in rows])
        minutes = pd.date_range(first - MASE_HISTORY, first, freq="60s", inclusive="left", tz="UTC")
        insample = pd.DataFrame({"unique_id": endpoint, "y": [float(actual.get(m.to_pydatetime(), 0.0))
                                                              for m in minutes]})
        levels = [int(c.split("-")[1]) for c in frame.columns if c.startswith("hi-")]
        result = score(frame, levels=levels, quantile_column=quantile_column, insample=insample,
                       season=DAY_MINUTES).get(endpoint, {})
        scores = {"mase": _finite(result.get("mase")), "pinball": _finite(result.get("pinball")),
                  "coverage_80": _finite(result.get("coverage-80")), "coverage_95": _finite(result.get("coverage-95"))}
        store.save_accuracy(endpoint, issued_at=issued, scored_at=now, model=rows[0]["model"], steps=len(rows),
                            scores=scores)
        if metrics is not None:
            for key, value in scores.items():
                if value is not None:
                    metrics.accuracy.labels(endpoint, key).set(value)
        done.append({"issued_at": issued, **scores})
    return done


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None
