"""History clean-up before a model sees it: gaps, outliers, local-time seasons.

Decisions (see docs/forecasting.md):
- Gaps. A hole in the data is *missing data*, not zero demand: a collector outage (the NASA
  log has a multi-day hole) filled with zeros would teach a seasonal model a dead day and
  forecast one (fail cold). Missing steps are imputed from the same step one week, else one
  day earlier (the season carries on through the hole), else 0, and flagged `imputed` so
  scoring skips them. A missing step is a step with no row (`how="seasonal"`, for stores
  that write zero rows) and, for either store, a zero run of 2 hours to 4 days in a series
  that is otherwise busy (>= 80% non-zero steps): that is an outage, not a lull. A sparse
  series' all-zero day is real and stays zero; so does a busy one's silence beyond 4 days
  (the endpoint was retired, or moved). With `how="zero"` (stores that keep only non-zero
  steps) absent rows are zero requests.
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
        if how == "zero":
            dense = dense.fillna(0.0)
        dense = _mark_outages(dense, step_s)
        missing = dense.isna().to_numpy()
        if missing.any():
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


def _mark_outages(series: "pd.Series", step_s: int, *, min_run_s: int = 2 * 3600,
                  max_run_s: int = 4 * DAY_S, busy_share: float = 0.8) -> "pd.Series":
    """In a busy series (at least `busy_share` of steps non-zero) a run of zeros from
    min_run_s to max_run_s is an outage of the collector or the service (the NASA log's
    multi-day hole), not a quiet spell: mark it missing. Longer runs are a real change
    (an endpoint retired) and stay zero."""
    import numpy as np

    values = series.to_numpy(copy=True)
    zero = values == 0
    if len(values) == 0 or (~zero & ~np.isnan(values)).mean() < busy_share:
        return series
    edges = np.flatnonzero(np.diff(np.concatenate(([0], zero.astype(int), [0]))))
    for start, stop in zip(edges[::2], edges[1::2]):
        if min_run_s <= (stop - start) * step_s <= max_run_s:
            values[start:stop] = np.nan
    return series.__class__(values, index=series.index)


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
