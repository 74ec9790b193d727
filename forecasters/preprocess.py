"""History clean-up before a model sees it: gaps, outliers, local-time seasons.

Decisions (see docs/forecasting.md):
- Gaps. A step with no row is *missing data*, not zero demand: a collector outage (the NASA
  log has a multi-day hole) filled with zeros would teach a seasonal model a dead day and
  forecast one (fail cold). Missing steps are imputed from the same step one week, else one
  day earlier (the season carries on through the hole), else 0, and flagged `imputed` so
  scoring can skip them. Zero-count steps must therefore be stored as rows with y = 0; a
  store that keeps only non-zero steps should call `fill_gaps(..., how="zero")`.
- Outliers. A one-off spike must not come back tomorrow at full height (seasonal naive
  copies yesterday). `winsorise` caps each series at `factor` x its `q` quantile before
  seasonal models fit; it never touches the actuals used for scoring.
- Time zones. Models run on naive UTC steps; a daily season tied to local wall-clock time
  (people wake up at 8 local, also after a DST switch) is modelled by forecasting in local
  wall time (`to_local_wall`) and mapping the result back to UTC (`from_local_wall`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

WEEK_S = 7 * 86400
DAY_S = 86400


def fill_gaps(history: "pd.DataFrame", step_s: int, *, how: Literal["seasonal", "zero"] = "seasonal",
              end: "pd.Timestamp | None" = None) -> "pd.DataFrame":
    """Dense `unique_id, ds, y, imputed` at step_s from each series' first row to its last
    (or to `end`, exclusive, when given: the history is known to reach that far)."""
    import numpy as np
    import pandas as pd

    step = pd.Timedelta(seconds=step_s)
    parts = []
    for uid, grp in history.groupby("unique_id", sort=False):
        series = grp.set_index("ds")["y"].astype(float)
        series = series.groupby(level=0).sum()  # duplicate stamps (re-ingest) are one step
        last = series.index.max() if end is None else pd.Timestamp(end) - step
        index = pd.date_range(series.index.min(), max(last, series.index.max()), freq=step)
        dense = series.reindex(index)
        missing = dense.isna().to_numpy()
        if missing.any() and how == "seasonal":
            values = dense.to_numpy(copy=True)
            for lag_s in (WEEK_S, DAY_S):
                lag = lag_s // step_s
                if lag >= len(values):
                    continue
                # Walk forward so a hole longer than the lag is filled from filled values.
                for i in np.flatnonzero(np.isnan(values)):
                    if i >= lag and not np.isnan(values[i - lag]):
                        values[i] = values[i - lag]
            dense = pd.Series(values, index=index)
        dense = dense.fillna(0.0)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": index, "y": dense.to_numpy(),
                                   "imputed": missing}))
    if not parts:
        return pd.DataFrame({"unique_id": [], "ds": [], "y": [], "imputed": []})
    return pd.concat(parts, ignore_index=True)


def winsorise(history: "pd.DataFrame", *, q: float = 0.99, factor: float = 1.5) -> "pd.DataFrame":
    """Cap each series at factor x its q-quantile (of the non-zero steps, so that a series
    that is mostly zero keeps its ordinary bursts)."""
    out = history.copy()
    nonzero = out["y"].where(out["y"] > 0)
    cap = nonzero.groupby(out["unique_id"]).transform(lambda s: s.quantile(q)) * factor
    out["y"] = out["y"].clip(upper=cap.fillna(out["y"].max()))
    return out


def to_local_wall(history: "pd.DataFrame", tz: str) -> "pd.DataFrame":
    """Naive-UTC `ds` -> naive local wall time, kept regular: the hour that a spring-forward
    skips is filled by interpolation, the hour a fall-back repeats is averaged (a rate, so
    the day keeps its shape; the repeated hour's requests are not double counted as a peak)."""
    import pandas as pd

    out = history.copy()
    out["ds"] = out["ds"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    out = out.groupby(["unique_id", "ds"], as_index=False, sort=True)["y"].mean()
    parts = []
    for uid, grp in out.groupby("unique_id", sort=False):
        step = grp["ds"].diff().dropna().min()
        series = grp.set_index("ds")["y"]
        index = pd.date_range(series.index.min(), series.index.max(), freq=step)
        series = series.reindex(index).interpolate(limit_direction="both")
        parts.append(pd.DataFrame({"unique_id": uid, "ds": index, "y": series.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def from_local_wall(frame: "pd.DataFrame", tz: str, targets: "pd.DataFrame") -> "pd.DataFrame":
    """Map a forecast made in local wall time onto the UTC steps in `targets`
    (unique_id, ds naive UTC): each UTC step takes the value of its local wall time."""
    local = targets.copy()
    local["wall"] = local["ds"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    merged = local.merge(frame.rename(columns={"ds": "wall"}), on=["unique_id", "wall"], how="left")
    return merged.drop(columns=["wall"])
