"""Which step to forecast at, and how to get back to per-minute demand.

Sparse series (most minutes zero, the Alibaba GPU models) are noise at one minute: a model
fitted there forecasts a smear near zero and its intervals are meaningless. Summing to 5 or
15 minutes gives counts a model can follow. The planner then needs per-minute arrival rates
(lead time and service time are minutes or less), derived from the coarse forecast by
`split_step`:

- mean: spread evenly (or by a share profile), so a 5-minute count of 10 is 2 a minute;
- band: the excess of a band over the mean shrinks with the square root of the share. For
  arrivals independent within the step (Poisson-like) this is exact: the per-minute
  quantile is lambda + z*sqrt(lambda) = (coarse excess)/sqrt(k) above the per-minute mean.
  Bursts inside the step are correlated, where the truth lies between excess*share and
  excess*sqrt(share); sqrt(share) is the wider of the two, so the error is on the warm side.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEPS_S = (60, 300, 900)


def zero_share(history: "pd.DataFrame", step_s: int, base_step_s: int) -> "pd.Series":
    """Share of steps with no request per series, after summing to step_s."""
    coarse = aggregate(history, base_step_s, step_s)
    return (coarse["y"] <= 0).groupby(coarse["unique_id"], sort=False).mean()


def choose_step(history: "pd.DataFrame", base_step_s: int = 60, *, max_zero_share: float = 0.5,
                steps: Sequence[int] = STEPS_S) -> dict[str, int]:
    """Per unique_id the finest step in `steps` (>= base_step_s) at which at most
    `max_zero_share` of the steps are empty; the coarsest step when none qualifies."""
    candidates = sorted(s for s in steps if s >= base_step_s and s % base_step_s == 0)
    if not candidates:
        raise ValueError(f"no step in {list(steps)} is a multiple of the history step {base_step_s}s")
    ids = list(history["unique_id"].unique())
    chosen: dict[str, int] = {}
    for step in candidates:
        todo = [u for u in ids if u not in chosen]
        if not todo:
            break
        shares = zero_share(history[history["unique_id"].isin(todo)], step, base_step_s)
        for uid, share in shares.items():
            if share <= max_zero_share:
                chosen[uid] = step
    for uid in ids:
        chosen.setdefault(uid, candidates[-1])
    return chosen


def aggregate(history: "pd.DataFrame", base_step_s: int, step_s: int) -> "pd.DataFrame":
    """Sum dense base-step history into step_s bins aligned to the epoch (00:00, 00:05...).
    A trailing partial bin is dropped: it would read as a dip. Extra columns are kept if
    they are boolean flags (any) and dropped otherwise."""
    import pandas as pd

    if step_s == base_step_s:
        return history
    if step_s % base_step_s:
        raise ValueError(f"step {step_s}s is not a multiple of the history step {base_step_s}s")
    per_bin = step_s // base_step_s
    frame = history.assign(ds=history["ds"].dt.floor(f"{step_s}s"))
    agg = {"y": ("y", "sum"), "n": ("y", "size")}
    if "imputed" in frame.columns:
        agg["imputed"] = ("imputed", "any")
    out = frame.groupby(["unique_id", "ds"], sort=False, as_index=False).agg(**agg)
    # Dense input is partial only at its two ends: a partial bin would read as a dip.
    out = out[out.pop("n") == per_bin]
    return out.sort_values(["unique_id", "ds"], ignore_index=True)


def split_step(mean: "np.ndarray", bands: dict[str, "np.ndarray"], share: "np.ndarray"):
    """Values for one fine step carrying `share` of a coarse step (see the module doc)."""
    import numpy as np

    fine_mean = mean * share
    root = np.sqrt(share)
    fine = {name: np.maximum(fine_mean + (vals - mean) * root, 0.0) for name, vals in bands.items()}
    return fine_mean, fine


def disaggregate(frame: "pd.DataFrame", coarse_s: int, fine_s: int,
                 profile: "pd.DataFrame | None" = None) -> "pd.DataFrame":
    """A forecast frame at coarse_s -> fine_s rows (values per fine step). `profile`
    (unique_id, slot, share) gives each fine slot's share of its coarse step, e.g. from
    `intra_profile`; uniform when absent."""
    import numpy as np
    import pandas as pd

    k = coarse_s // fine_s
    if k == 1:
        return frame
    value_cols = [c for c in frame.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    band_cols = [c for c in value_cols if c != "mean"]
    rep = frame.loc[frame.index.repeat(k)].reset_index(drop=True)
    slot = np.tile(np.arange(k), len(frame))
    rep["ds"] = rep["ds"] + pd.to_timedelta(slot * fine_s, unit="s")
    if profile is not None:
        rep["slot"] = slot
        rep = rep.merge(profile, on=["unique_id", "slot"], how="left")
        share = rep.pop("share").fillna(1.0 / k).to_numpy()
        rep = rep.drop(columns=["slot"])
    else:
        share = np.full(len(rep), 1.0 / k)
    mean = rep["mean"].to_numpy(float)
    fine_mean, fine = split_step(mean, {c: rep[c].to_numpy(float) for c in band_cols}, share)
    rep["mean"] = fine_mean
    for c in band_cols:
        rep[c] = fine[c]
    return rep


def intra_profile(history: "pd.DataFrame", coarse_s: int, fine_s: int, *,
                  days: int = 7, prior: float = 1.0) -> "pd.DataFrame":
    """Each fine slot's share of its coarse step over the last `days` (unique_id, slot,
    share), shrunk toward uniform by `prior` pseudo-requests per slot so that a sparse
    series does not put a whole hour's demand into the one minute that happened to be busy."""
    k = coarse_s // fine_s
    cutoff = history.groupby("unique_id")["ds"].transform("max") - _days(days)
    recent = history[history["ds"] > cutoff]
    slot = ((recent["ds"].astype("int64") // 10**9) % coarse_s) // fine_s
    sums = recent.assign(slot=slot).groupby(["unique_id", "slot"], as_index=False)["y"].sum()
    sums["y"] = sums["y"].clip(lower=0) + prior
    sums["share"] = sums["y"] / sums.groupby("unique_id")["y"].transform("sum")
    sums["slot"] = sums["slot"].astype(int)
    return sums[sums["slot"] < k][["unique_id", "slot", "share"]]


def _days(n: int):
    import pandas as pd
    return pd.Timedelta(days=n)
