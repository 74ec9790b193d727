"""Forecast these endpoints: history -> resolution -> model (stored choice, or a new one)
-> forecast frame -> calendar events -> per-minute DemandForecast for the planner.

What the cycle, the backtester and `prewarm forecast` call. Fail warm: when the configured
model fails for a batch, seasonal naive forecasts it; when that fails too, a flat forecast
at the recent peak does (never no forecast). Each result says which model produced it.

Per-minute demand (`to_demand`): the planner needs arrivals per minute over the lead and
service times; a 5- or 15-minute forecast is split into minutes by
`prewarm.forecasters.resolution.split_step`: the mean evenly, the band excess over the mean
by 1/sqrt(k) (exact for arrivals independent within the step, on the warm side for bursts).
"""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from .forecast_events import apply_events
from .planner.model import DemandForecast
from .units import floor_time, to_utc

if TYPE_CHECKING:
    import pandas as pd

    from .config import ForecastSettings
    from .forecasters.auto import ModelChoice

log = logging.getLogger("prewarm.forecasting")
BASE_STEP_S = 60


@dataclass(frozen=True)
class EndpointForecast:
    endpoint: str
    demand: DemandForecast  # per minute, requests per minute
    model: str  # what produced it, e.g. "mstl+conformal", "seasonal-naive (fallback: ...)"
    step_s: int  # the step the model ran at
    events: tuple[str, ...] = ()  # calendar events that changed it
    frame: Any = None  # the model's frame at step_s (requests per step), for storage/explain


@dataclass
class ForecastRun:
    forecasts: dict[str, EndpointForecast] = field(default_factory=dict)
    new_choices: dict[str, "ModelChoice"] = field(default_factory=dict)  # to store
    errors: dict[str, str] = field(default_factory=dict)  # endpoint -> what failed (and fell back)


def history_from_rows(rows_by_endpoint: Mapping[str, Sequence[tuple]]) -> "pd.DataFrame":
    """Store rows (ts aware or naive UTC, requests, ...) -> long frame at one minute, only
    the rows there are (gaps are handled by `forecast_endpoints`)."""
    import pandas as pd

    frames = []
    for name, rows in rows_by_endpoint.items():
        if rows:
            ts = pd.to_datetime([to_utc(r[0]) for r in rows], utc=True).tz_localize(None)
            frames.append(pd.DataFrame({"unique_id": name, "ds": ts.floor("60s"),
                                        "y": [float(r[1]) for r in rows]}))
    if not frames:
        return pd.DataFrame({"unique_id": [], "ds": pd.to_datetime([]), "y": []})
    out = pd.concat(frames, ignore_index=True)
    return out.groupby(["unique_id", "ds"], as_index=False)["y"].sum()


def history_from_csv(path: str, default_tz: str = "UTC") -> "pd.DataFrame":
    """A `ts,endpoint,requests` CSV (the shared traces' per_minute.csv) -> long frame."""
    import pandas as pd

    raw = pd.read_csv(path)
    missing = {"ts", "endpoint", "requests"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)} (expected ts,endpoint,requests)")
    stamps = raw["ts"].astype(str)
    # One parse: aware stamps (Z or an offset) straight to UTC; naive ones in default_tz.
    aware = stamps.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if aware.all():
        ts = pd.to_datetime(stamps, utc=True, format="ISO8601")
    elif not aware.any():
        ts = pd.to_datetime(stamps, format="ISO8601").dt.tz_localize(default_tz)
    else:
        ts = pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns, UTC]")
        ts[aware] = pd.to_datetime(stamps[aware], utc=True, format="ISO8601")
        ts[~aware] = pd.to_datetime(stamps[~aware], format="ISO8601").dt.tz_localize(default_tz).dt.tz_convert("UTC")
    ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.DataFrame({"unique_id": raw["endpoint"].astype(str), "ds": ts,
                         "y": raw["requests"].astype(float)})


def to_demand(frame: "pd.DataFrame", step_s: int, *, out_step_s: int = 60,
              model: str | Mapping[str, str] = "") -> dict[str, DemandForecast]:
    """Forecast frame (values per step_s step) -> per unique_id DemandForecast in requests
    per minute at out_step_s (60: per minute; the split is described in the module doc)."""
    from .forecasters.resolution import disaggregate

    fine = disaggregate(frame, step_s, out_step_s) if step_s > out_step_s else frame
    step = min(step_s, out_step_s) if step_s > out_step_s else step_s
    per_minute = 60.0 / step
    bands = [c for c in fine.columns if c.startswith(("lo-", "hi-"))]
    out: dict[str, DemandForecast] = {}
    for uid, part in fine.groupby("unique_id", sort=False):
        part = part.sort_values("ds")
        start = part["ds"].iloc[0].to_pydatetime().replace(tzinfo=timezone.utc)
        name = model.get(str(uid), "") if isinstance(model, Mapping) else model
        out[str(uid)] = DemandForecast(
            start=start, step_s=step, model=name,
            mean=tuple(float(v) * per_minute for v in part["mean"]),
            bands={b: tuple(float(v) * per_minute for v in part[b]) for b in bands})
    return out


def pin_events(demand: DemandForecast, events) -> DemandForecast:
    """The demand with `pinned` set on the steps whose start lies in one of `events`' windows
    (the steps apply_events changed)."""
    import dataclasses

    import numpy as np

    starts = demand.start.timestamp() + demand.step_s * np.arange(len(demand))
    pinned = np.zeros(len(demand), bool)
    for e in events:
        pinned |= (starts >= e.start.timestamp()) & (starts < e.end.timestamp())
    return dataclasses.replace(demand, pinned=tuple(pinned.tolist()))


def prepare_history(history: "pd.DataFrame", now: datetime, settings: "ForecastSettings",
                    base_step_s: int = BASE_STEP_S) -> "pd.DataFrame":
    """History strictly before `now` (and within history_s), dense at base_step_s (one
    minute), gaps and outages imputed (`prewarm.forecasters.preprocess.fill_gaps`)."""
    import pandas as pd

    from .forecasters.preprocess import fill_gaps

    end = pd.Timestamp(floor_time(now, base_step_s).replace(tzinfo=None))
    start = end - pd.Timedelta(seconds=settings.history_s)
    window = history[(history["ds"] >= start) & (history["ds"] < end)]
    return fill_gaps(window, base_step_s, how=settings.gap_fill, end=end)


def forecast_endpoints(history: "pd.DataFrame", settings: "ForecastSettings", *, now: datetime,
                       choices: Mapping[str, "ModelChoice"] | None = None,
                       horizon_s: float | None = None,
                       model_params: Mapping[str, Any] | None = None,
                       base_step_s: int = BASE_STEP_S) -> ForecastRun:
    """Forecast every endpoint in `history` (unique_id, ds naive UTC, y per minute) from
    data strictly before `now`, with one [forecast] settings (group endpoints by their
    merged settings and call once per group). For model 'auto', `choices` are reused while
    fresher than refit_interval_s; new ones are returned in `run.new_choices` to store.
    `model_params` go to a named model's constructor (e.g. calibration="model" for
    statsforecast's own intervals). `base_step_s`: the step of `history` (one minute from
    the store; coarser for pre-aggregated history, e.g. 300)."""
    from .forecasters.resolution import aggregate, choose_step

    now = to_utc(now)
    run = ForecastRun()
    dense = prepare_history(history, now, settings, base_step_s)
    if dense.empty:
        return run
    if settings.resolution == "auto":
        floor = max(settings.step_s, base_step_s)
        steps = [s for s in (60, 300, 900) if s >= floor] or [floor]
        step_of = choose_step(dense, base_step_s, steps=steps)
    else:
        step_of = {uid: max(settings.step_s, base_step_s) for uid in dense["unique_id"].unique()}
    for uid, choice in (choices or {}).items():
        if settings.model == "auto" and uid in step_of and not choice.is_stale(now, settings.refit_interval_s):
            step_of[uid] = choice.step_s
    horizon_s = settings.horizon_s if horizon_s is None else horizon_s
    for step_s in sorted(set(step_of.values())):
        ids = [u for u, s in step_of.items() if s == step_s]
        part = aggregate(dense[dense["unique_id"].isin(ids)], base_step_s, step_s)
        # The forecast starts at the current (partial) step, so that it covers `now`.
        horizon = max(1, math.ceil((horizon_s + now.timestamp() % step_s) / step_s))
        frame, models = _forecast_batch(part, settings, step_s, horizon, now, choices or {}, run,
                                        model_params or {})
        frame, applied = apply_events(frame, settings.events, step_s)
        demand = to_demand(frame, step_s, model=models)
        for uid in applied:  # the steps the events set, which the planner does not smooth away
            if uid in demand:
                demand[uid] = pin_events(demand[uid], [e for e in settings.events if e.applies_to(uid)])
        frames = dict(tuple(frame.groupby("unique_id", sort=False)))
        for uid, d in demand.items():
            run.forecasts[uid] = EndpointForecast(uid, d, models.get(uid, ""), step_s,
                                                  tuple(applied.get(uid, ())), frames.get(uid))
    return run


def forecast_in_batches(load_history: "Callable[[Sequence[str]], pd.DataFrame]", endpoints: Sequence[str],
                        settings: "ForecastSettings", *, now: datetime, batch_size: int = 500,
                        choices: Mapping[str, "ModelChoice"] | None = None,
                        horizon_s: float | None = None, **kwargs: Any) -> "Iterator[ForecastRun]":
    """`forecast_endpoints` for a fleet with bounded memory: `load_history(ids)` reads the
    history of `batch_size` endpoints at a time (from the store), and each batch's run is
    yielded for the caller to plan and store before the next one is read. Memory then
    grows with the batch, not the fleet (14 days of 500 endpoints at one minute is ~10 M
    rows, ~0.3 GB while it is forecast); the model's n_jobs workers get a batch each."""
    for start in range(0, len(endpoints), batch_size):
        ids = list(endpoints[start:start + batch_size])
        history = load_history(ids)
        mine = {u: choices[u] for u in ids if choices and u in choices}
        yield forecast_endpoints(history, settings, now=now, choices=mine, horizon_s=horizon_s, **kwargs)
        del history


def _forecast_batch(part, settings, step_s, horizon, now, choices, run, model_params):
    """(frame, model name per unique_id); seasonal naive, then a flat forecast, on failure."""
    import pandas as pd

    from .forecasters import registry
    from .forecasters.auto import AutoForecaster, label

    history = part.drop(columns=["imputed"], errors="ignore")
    ids = list(history["unique_id"].unique())
    levels = settings.levels
    try:
        if settings.model == "auto":
            fresh = {u: c for u, c in choices.items()
                     if u in ids and c.step_s == step_s and not c.is_stale(now, settings.refit_interval_s)}
            todo = [u for u in ids if u not in fresh]
            auto = AutoForecaster(n_jobs=settings.n_jobs)
            if todo:
                from .forecasters.auto import choose_models
                new = choose_models(history[history["unique_id"].isin(todo)], step_s=step_s,
                                    horizon=horizon, now=now, levels=levels, n_jobs=settings.n_jobs)
                run.new_choices.update(new)
                fresh.update(new)
            frame = _in_zone(lambda h, n: auto.forecast(h, horizon=n, step_s=step_s, levels=levels,
                                                       choices=fresh), history, settings, step_s, horizon)
            models = {u: label(c.model, c.params) for u, c in fresh.items()}
        else:
            params = {"backend": settings.backend, "n_jobs": settings.n_jobs, **model_params}
            if settings.model == "seasonal-naive":  # -weekly has its own (a week)
                params["season_s"] = int(settings.season_s)
            forecaster = registry.create(settings.model, **params)
            frame = _in_zone(lambda h, n: forecaster.forecast(h, horizon=n, step_s=step_s, levels=levels),
                             history, settings, step_s, horizon)
            models = {u: forecaster.describe() for u in ids}
            if "model" in frame.columns:  # a selecting model names its choice per endpoint
                chosen = frame.groupby("unique_id", sort=False)["model"].first()
                models.update({u: f"{forecaster.describe()}:{m}" for u, m in chosen.items()})
        missing = [u for u in ids if u not in set(frame["unique_id"])]
        if missing:
            raise RuntimeError(f"no forecast for {', '.join(map(str, missing[:5]))}")
        return frame.drop(columns=["model"], errors="ignore"), models
    except registry.UnknownForecaster:
        raise
    except Exception as exc:  # noqa: BLE001 - any model failure falls back, and says so
        log.warning("forecaster %s failed at step %ss (%s); falling back", settings.model, step_s, exc)
        for uid in ids:
            run.errors[uid] = f"{settings.model}: {exc}"
    try:
        frame = registry.create("seasonal-naive").forecast(history, horizon=horizon, step_s=step_s,
                                                            levels=levels)
        return frame, {u: "seasonal-naive (fallback)" for u in ids}
    except Exception as exc:  # noqa: BLE001
        log.error("seasonal-naive fallback failed too (%s); flat forecast at the recent peak", exc)
        return flat_forecast(history, horizon, step_s, levels), {u: "flat-recent-peak (fallback)" for u in ids}


def _in_zone(run_model, history, settings, step_s: int, horizon: int):
    """Run the model in the endpoint's local wall time when a zone is configured, so the
    daily season follows local clocks across DST, and map back to UTC steps."""
    import pandas as pd

    from .forecasters.preprocess import from_local_wall, to_local_wall

    if not settings.timezone or settings.timezone.upper() == "UTC":
        return run_model(history, horizon)
    local = to_local_wall(history, settings.timezone)
    extra = math.ceil(3600 / step_s)  # a fall-back hour: one more local hour to cover
    frame = run_model(local, horizon + extra)
    last = history.groupby("unique_id")["ds"].max()
    targets = pd.DataFrame([(uid, t + pd.Timedelta(seconds=step_s * (i + 1)))
                            for uid, t in last.items() for i in range(horizon)], columns=["unique_id", "ds"])
    out = from_local_wall(frame, settings.timezone, targets)
    value_cols = [c for c in out.columns if c not in ("unique_id", "ds")]
    # A step whose local time is not in the frame (e.g. partial-hour alignment) takes its neighbour's.
    out[value_cols] = out.groupby("unique_id")[value_cols].transform(lambda s: s.ffill().bfill())
    return out.fillna(0.0)


def flat_forecast(history: "pd.DataFrame", horizon: int, step_s: int, levels: Sequence[int]) -> "pd.DataFrame":
    """Last resort: the last day's peak step, flat, as mean and every band (warm, not cold)."""
    import pandas as pd

    rows = []
    day = max(1, 86400 // step_s)
    for uid, grp in history.groupby("unique_id", sort=False):
        peak = float(grp["y"].tail(day).max()) if len(grp) else 0.0
        last = grp["ds"].max()
        for i in range(horizon):
            row = {"unique_id": uid, "ds": last + pd.Timedelta(seconds=step_s * (i + 1)), "mean": peak}
            row.update({f"{side}-{lv}": peak for lv in levels for side in ("lo", "hi")})
            rows.append(row)
    return pd.DataFrame(rows)


@contextmanager
def dask_client(address: str | None = None, n_workers: int = 2):
    """A connected distributed.Client for `backend = "dask"`: to `address`, or to a
    LocalCluster started (and stopped) here, for trying it out: on one machine n_jobs is
    faster; the backend is for clusters."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client
