"""The static guard, off the planning path: per endpoint, last week's best static setting
(always-on floor, keep-alive), judged on its own history and stored, so that the plan is
never materially worse than it ([planner] static_guard; docs/backtesting.md, "The static
guard").

A judgement replays the trailing week of the endpoint's per-minute history (the store's,
cut at now - [daemon] ingest_delay) against the static settings the provider can carry out
(the backtester's advisor sweep), and with "auto" the plan alone on the same week
(prewarm.backtest.runner.static_guard). It costs seconds to a minute per endpoint, so it is
never made while planning: the daemon's `guard` job judges the due endpoints within a time
budget per run, `prewarm once` judges what is due before it plans, and plan_step reads the
stored result (the daemon, `once` and `explain` agree; a restart recomputes nothing).

Due: never judged, judged under another mode or without a smoothing among the endpoint's
`[planner] smoothing_choices`, or judged a week ago (a young endpoint, with
less than a week of history, a day ago: as the backtester, every season until the window
fills). Fail warm: a failing judgement keeps the stored setting (a floor is never dropped
because of an error), is logged, counted (prewarm_errors_total{stage="guard"}) and tried
again after RETRY.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .config import EndpointSettings
from .planner.model import StaticSetting
from .runtime import Runtime
from .units import format_duration

if TYPE_CHECKING:
    from .backtest.judgement import Judgement

log = logging.getLogger("prewarm.guard")
SEASON = timedelta(days=1)
WINDOW = 7 * SEASON  # the week a static setting is judged on, and how long a judgement holds
HISTORY = 8 * SEASON  # what a judgement reads: the week, and the day before it the plan's forecasts start from
RETRY = timedelta(hours=1)  # after a failed judgement
PLATFORM_IDLE_TIMEOUT_S = 60.0  # the platform's own keep-alive when the provider does not say


def mode_of(rt: Runtime, ep: EndpointSettings) -> str:
    return rt.settings.planner_for(ep).static_guard


def stored_smoothing(row: dict[str, Any] | None, choices) -> float | None:
    """The smoothing a stored judgement chose, if it is still one of the endpoint's
    `[planner] smoothing_choices` (None: plan with `smoothing`)."""
    if row is None or row.get("smoothing_s") is None:
        return None
    value = float(row["smoothing_s"])
    return value if value in {float(c) for c in choices} else None


def stored_static(row: dict[str, Any] | None) -> StaticSetting | None:
    """The setting a stored judgement holds (None: the plan alone, or never judged)."""
    if row is None or not row.get("setting"):
        return None
    s = row["setting"]
    return StaticSetting(floor=int(s["floor"]), keepalive_s=s.get("keepalive_s"),
                         cold_rate=s.get("cold_rate"), worker_hours=s.get("worker_hours"))


def holds(static: StaticSetting | None) -> str:
    """What a judgement holds the plan to, for a person (`prewarm status`, `prewarm report`)."""
    return "the plan runs alone" if static is None else f"the plan is held at or above {static.text()}"


def failed_attempt(row: dict[str, Any] | None) -> tuple[datetime, str] | None:
    """(when, error) of the stored row's last attempt if it failed after the judgement in
    force (that judgement stays: fail warm); None when the last attempt succeeded."""
    if not row or not row.get("error"):
        return None
    if row.get("judged_at") is not None and row["attempted_at"] <= row["judged_at"]:
        return None
    return row["attempted_at"], row["error"]


def is_due(row: dict[str, Any] | None, mode: str, now: datetime, choices=()) -> bool:
    """Due for a judgement under `mode` with `choices` ([planner] smoothing_choices)?"""
    if mode == "off":
        return False
    if row is None:
        return True
    if row.get("error") and now - row["attempted_at"] < RETRY:
        return False
    if row.get("judged_at") is None or row["mode"] != mode:
        return True
    if choices and stored_smoothing(row, choices) is None:  # chosen among other values, or none yet
        return True
    young = (row.get("span_s") or 0.0) < WINDOW.total_seconds() - 3600.0
    return now - row["judged_at"] >= (SEASON if young else WINDOW)


def due_endpoints(rt: Runtime, now: datetime,
                  names: Iterable[str] | None = None) -> tuple[list[EndpointSettings], dict[str, dict]]:
    """The endpoints due for a judgement, and the stored rows (one query)."""
    eps = [ep for ep in rt.endpoints(names) if mode_of(rt, ep) != "off"]
    rows = rt.store.static_guards([ep.name for ep in eps]) if eps else {}
    return [ep for ep in eps if is_due(rows.get(ep.name), mode_of(rt, ep), now,
                                       rt.settings.planner_for(ep).smoothing_choices)], rows


def judge(rt: Runtime, ep: EndpointSettings, now: datetime,
          previous: StaticSetting | None) -> "tuple[Judgement, float]":
    """(the Judgement for the next week: the static setting the plan may not go below or None,
    and the smoothing of `[planner] smoothing_choices` it plans with; the history span it was
    judged on), from the trailing week before now - ingest delay."""
    import numpy as np

    from .backtest.executable import Executable
    from .backtest.predictive import PredictiveSettings
    from .backtest.runner import BacktestConfig, static_guard
    from .backtest.simulator import ColdStart, WorkerModel
    from .backtest.traces import from_counts
    from .endpoint_policy import capacity_model, policy_settings
    from .history import read_history

    cutoff = now - timedelta(seconds=rt.settings.daemon.ingest_delay_s)
    rows = [r for r in read_history(rt, ep, cutoff - HISTORY, cutoff) if r[1]]
    starts = np.array([r[0].timestamp() for r in rows], dtype=np.float64)
    trace = from_counts(ep.name, starts, np.array([int(r[1]) for r in rows], dtype=np.int64))
    measured = rt.store.ready_durations_of([ep.name]).get(ep.name) if ep.capacity.cold_start_learn else None
    capacity = capacity_model(ep, measured)
    caps = rt.provider(ep).capabilities()
    platform = getattr(caps, "platform_idle_timeout_s", None) or PLATFORM_IDLE_TIMEOUT_S
    cfg = BacktestConfig(start_s=0.0, end_s=1.0,
                         worker=WorkerModel(capacity.concurrency, platform),
                         cold_start=ColdStart(fixed_s=capacity.cold_start_s),
                         service_time_s=capacity.service_time_s,
                         target_cold_rate=rt.settings.planner_for(ep).target_cold_rate,
                         ingest_delay_s=rt.settings.daemon.ingest_delay_s,
                         price_per_worker_hour=capacity.price_per_worker_hour,
                         max_workers=capacity.max_workers or 1000,
                         policy=policy_settings(rt.settings, ep, capacity),
                         forecaster=forecaster_for(rt, ep),
                         provider=Executable.of(ep.provider.get("kind", ""), caps),
                         predictive=PredictiveSettings(
                             guard=mode_of(rt, ep),
                             smoothing_choices_s=tuple(rt.settings.planner_for(ep).smoothing_choices)))
    end = cutoff.timestamp()
    span = max(0.0, end - max(end - WINDOW.total_seconds(), float(starts[0]))) if len(starts) else 0.0
    return static_guard(trace, cfg)(now.timestamp(), previous), span


def forecaster_for(rt: Runtime, ep: EndpointSettings):
    """The endpoint's configured forecaster for the plan-alone replay; with model "auto" (a
    choice per endpoint and step), the backtester's default (None: the `[forecast]` default,
    select; backtest.replay.default_forecaster)."""
    from .forecasters import registry

    fs = rt.settings.forecast_for(ep)
    if fs.model == "auto":
        return None
    params: dict[str, Any] = {"backend": fs.backend, "n_jobs": fs.n_jobs}
    if fs.model == "seasonal-naive":
        params["season_s"] = int(fs.season_s)
    return registry.create(fs.model, **params)


def judge_due(rt: Runtime, now: datetime, names: Iterable[str] | None = None, *, budget_s: float | None = None,
              clock: Callable[[], float] = time.monotonic,
              judge_fn: "Callable[..., tuple[Judgement, float]] | None" = None) -> dict[str, str]:
    """Judge the endpoints that are due (all of them, or until `budget_s` has passed: at least
    one per call) and store each result. Returns name -> what happened ("guarded ...", "plan
    alone", or the error). A failure keeps the stored setting (fail warm)."""
    judge_fn = judge_fn or judge
    started = clock()
    due, rows = due_endpoints(rt, now, names)
    done: dict[str, str] = {}
    for ep in due:
        if done and budget_s is not None and clock() - started >= budget_s:
            log.info("static guard: %d due endpoints left for the next run", len(due) - len(done))
            break
        previous = stored_static(rows.get(ep.name))
        mode = mode_of(rt, ep)
        try:
            judged, span = judge_fn(rt, ep, now, previous)
        except Exception as exc:  # noqa: BLE001 - fail warm: keep the last setting
            rt._error("guard", ep.name)
            kept = f"keeping floor {previous.floor}" if previous is not None else "the plan runs alone"
            log.error("%s: judging the static guard failed (%s); %s, retried in %s", ep.name, exc, kept, RETRY)
            try:
                rt.store.save_static_guard(ep.name, mode=mode, attempted_at=now, error=str(exc) or type(exc).__name__)
            except Exception as store_exc:  # noqa: BLE001 - the database is down: the next run retries
                log.error("%s: recording the failed judgement failed: %s", ep.name, store_exc)
            done[ep.name] = f"failed: {exc}"
            continue
        try:
            rt.store.save_static_guard(ep.name, mode=mode, attempted_at=now, span_s=span,
                                       setting=asdict(judged.static) if judged.static is not None else None,
                                       smoothing_s=judged.smoothing_s,
                                       evidence=judged.evidence.as_dict() if judged.evidence is not None else None)
        except Exception as exc:  # noqa: BLE001 - not stored: judged again next run, plans keep the last
            rt._error("guard", ep.name)
            log.error("%s: storing the static guard failed: %s", ep.name, exc)
            done[ep.name] = f"failed: {exc}"
            continue
        done[ep.name] = describe(judged.static, judged.smoothing_s)
        log.info("%s: static guard judged on %.1f days of history: %s%s", ep.name, span / 86400, done[ep.name],
                 f" ({judged.evidence.text()})" if judged.evidence is not None else "")
    return done


def describe(static: StaticSetting | None, smoothing_s: float | None = None) -> str:
    smoothing = "" if smoothing_s is None else f"; smoothing {format_duration(smoothing_s)}"
    if static is None:
        return "plan alone" + smoothing
    return static.text() + smoothing


def schedule(daemon, now: datetime) -> None:
    """The daemon's `guard` job (leader only), every cycle interval, first at once (beside the
    start-up cycle, which plans from what is stored): it judges the due endpoints for at most
    one cycle interval of work per run (at least one endpoint), on a scheduler thread of its
    own, never in the cycle. Never two at a time; a late run is coalesced."""
    interval = daemon.settings.daemon.cycle_interval_s
    if all(daemon.settings.planner_for(ep).static_guard == "off" for ep in daemon.settings.endpoints):
        return
    daemon.scheduler.add_job(_guard_job, "interval", args=[daemon], seconds=interval, id="guard",
                             replace_existing=True, coalesce=True, max_instances=1,
                             misfire_grace_time=max(1, int(interval)),
                             next_run_time=now)


def _guard_job(daemon) -> None:
    rt = daemon.rt
    if rt is None or daemon.cancel.is_set():
        return
    try:
        judge_due(rt, daemon.clock(), budget_s=daemon.settings.daemon.cycle_interval_s)
    except Exception as exc:  # noqa: BLE001 - e.g. the database is down: the next run retries
        log.error("static guard: %s; plans keep the stored settings", exc)
