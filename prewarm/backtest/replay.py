"""Replay one policy over one endpoint's trace and measure what users would pay (the
layer below the static guard: runner.run adds the guard, advisor and frontier replay static
settings with this directly).

The replay starts `warmup_s` before the evaluation window (so keep-alive workers, the tuner
and the idle-time histogram are in their steady state at `--from`), and every metric counts
only the window: requests arriving in it, worker-seconds spent in it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..planner.model import CapacityModel, PolicySettings
from ..planner.tuning import initial_value_s
from . import baselines
from .baselines import Cmd
from .clairvoyant import lower_bound_worker_s
from .executable import FULL, Executable
from .predictive import PredictivePolicy, PredictiveSettings
from .simulator import ColdStart, Simulator, WorkerModel
from .traces import Trace, service_times


@dataclass
class BacktestConfig:
    start_s: float  # evaluation window [start, end)
    end_s: float
    worker: WorkerModel = field(default_factory=WorkerModel)
    cold_start: ColdStart = field(default_factory=lambda: ColdStart(fixed_s=30.0))
    service_time_s: float | None = None  # None: the trace's own, or an error if it has none
    lead_percentile: float = 90.0  # the planner's lead: this percentile of the cold starts
    target_cold_rate: float = 0.02
    ingest_delay_s: float = 60.0
    price_per_worker_hour: float = 1.0
    max_workers: int = 1000
    warmup_s: float = 86400.0
    predictive: PredictiveSettings = field(default_factory=PredictiveSettings)
    policy: PolicySettings | None = None  # None: the backtest default (see predictive_policy)
    forecaster: Any = None  # a prewarm Forecaster; None: the daemon's default (default_forecaster)
    seed: int = 0
    # What the provider can carry out (executable.Executable; provider_capabilities(kind)):
    # commands are replayed as the provider executes them, the predictive policy is the one
    # for that provider (policy.for_provider), and its static guard sweeps only settable
    # keep-alives. Default: everything (idle timeout settable, no cap).
    provider: Executable = field(default_factory=lambda: FULL)


@dataclass
class Result:
    endpoint: str
    policy: str
    requests: int
    cold_requests: int
    worker_hours: float
    idle_worker_hours: float
    cost: float
    latency_p50_s: float
    latency_p99_s: float
    commands: int
    worker_starts: int
    schedule: list[Cmd] = field(default_factory=list, repr=False)
    lifetimes: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    cold_times: np.ndarray | None = field(default=None, repr=False)
    forecast_trace: list[tuple[float, ...]] = field(default_factory=list, repr=False)  # see PredictivePolicy
    tunings: list = field(default_factory=list, repr=False)
    guards: list = field(default_factory=list, repr=False)  # (t, StaticSetting | None) per guard update
    smoothings: list = field(default_factory=list, repr=False)  # (t, smoothing chosen) per guard update
    judgements: list = field(default_factory=list, repr=False)  # (t, judgement.Judgement) per guard update

    @property
    def cold_rate(self) -> float:
        return self.cold_requests / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "policy": self.policy, "requests": self.requests,
                "cold_requests": self.cold_requests, "cold_rate": round(self.cold_rate, 5),
                "worker_hours": round(self.worker_hours, 3),
                "idle_worker_hours": round(self.idle_worker_hours, 3), "cost": round(self.cost, 3),
                "added_latency_p50_s": round(self.latency_p50_s, 3),
                "added_latency_p99_s": round(self.latency_p99_s, 3),
                "commands": self.commands, "worker_starts": self.worker_starts}


def capacity_for(trace: Trace, cfg: BacktestConfig) -> CapacityModel:
    """The capacity model the planner is given: what an operator would configure, from the
    history before the window (median service time) and the cold-start model (a percentile)."""
    if cfg.service_time_s is not None:
        service = cfg.service_time_s
    else:
        # Only the history before the replay starts acting (no look-ahead); none: 1 s.
        past = trace.between(-math.inf, replay_start_s(trace, cfg))
        svc = service_times(past, None) if len(past) else np.zeros(0)
        svc = svc[np.isfinite(svc)]
        service = float(np.median(svc)) if len(svc) else 1.0
    return CapacityModel(concurrency=cfg.worker.concurrency, service_time_s=max(service, 0.1),
                         cold_start_s=cfg.cold_start.percentile(cfg.lead_percentile),
                         min_workers=0, max_workers=cfg.max_workers,
                         price_per_worker_hour=cfg.price_per_worker_hour)


def predictive_policy(capacity: CapacityModel, cfg: BacktestConfig) -> PolicySettings:
    """The daemon's default [planner] settings, through the daemon's own mapping."""
    from ..policy import for_provider
    if cfg.policy is not None:
        policy = cfg.policy
    else:
        from ..config import PlannerSettings
        from ..policy import policy_from_settings
        policy = policy_from_settings(PlannerSettings(target_cold_rate=cfg.target_cold_rate), capacity)
    return for_provider(policy, cfg.provider.idle_timeout, cfg.provider.idle_timeout_max_s)


def default_forecaster(season_s: float, name: str | None = None):
    """The forecaster the predictive policy replays: `name`, or the daemon's default (the
    `[forecast]` model's default, `select`), so the backtest measures what the daemon runs.
    Seasonal models get the replay's season."""
    from ..config import ForecastSettings
    from ..forecasters import registry

    name = name or ForecastSettings.model_fields["model"].default
    seasonal = name in ("seasonal-naive", "seasonal-mean")
    return registry.create(name, **({"season_s": int(season_s)} if seasonal else {}))


def parse_policy(spec: str) -> tuple[str, dict[str, Any]]:
    """'predictive', 'keepalive:600', 'static:2:600', 'reactive', ... -> (kind, params)."""
    kind, _, arg = spec.partition(":")
    if kind in ("predictive", "reactive", "hybrid-histogram", "always-on", "clairvoyant") and not arg:
        return kind, {}
    from ..units import parse_duration
    try:
        if kind == "keepalive" and arg:
            return "static", {"floor": 0, "keepalive_s": parse_duration(arg)}
        if kind == "static" and arg:
            floor, _, keep = arg.partition(":")
            return "static", {"floor": int(floor), "keepalive_s": parse_duration(keep or "60")}
    except ValueError as exc:
        raise InputError(f"--policy {spec}: {exc}") from None
    raise InputError(f"unknown policy {spec!r}: expected predictive, keepalive:SECONDS, static:F:K, "
                     "reactive, hybrid-histogram, always-on or clairvoyant")


def replay_start_s(trace: Trace, cfg: BacktestConfig) -> float:
    """Where the replay starts acting: `warmup_s` before the window, not before the trace."""
    start = max(cfg.start_s - cfg.warmup_s, float(trace.arrivals[0]) if len(trace) else cfg.start_s)
    return min(start, cfg.start_s)


def replay(trace: Trace, spec: str, cfg: BacktestConfig,
           progress: Callable[[float], None] | None = None, guard=None) -> Result:
    """One policy over the trace. `guard` (predictive only): now, previous static setting -> a
    predictive.Judgement, the static setting the plan may not go below and the smoothing it
    plans with (runner.static_guard builds it; None: the plan alone)."""
    kind, params = parse_policy(spec)
    replay_start = replay_start_s(trace, cfg)
    window = trace.between(replay_start, cfg.end_s)
    svc = service_times(window, cfg.service_time_s)
    in_window = window.arrivals >= cfg.start_s
    if kind == "clairvoyant":
        return _clairvoyant(trace, window, svc, in_window, cfg)
    capacity = capacity_for(trace, cfg)
    policy_obj = None
    if kind == "static":
        schedule = baselines.static(replay_start, params["floor"], params["keepalive_s"])
    elif kind == "always-on":
        schedule = baselines.always_on(replay_start, window.arrivals[in_window], svc[in_window],
                                       cfg.worker.concurrency)
    elif kind == "reactive":
        schedule = baselines.reactive(replay_start, cfg.end_s, window.arrivals, capacity.service_time_s,
                                      cfg.worker.concurrency)
    elif kind == "hybrid-histogram":
        past = trace.between(-math.inf, replay_start)
        schedule = baselines.hybrid_histogram(replay_start, cfg.end_s, window.arrivals, svc, past.arrivals,
                                              service_times(past, cfg.service_time_s or capacity.service_time_s))
    else:
        schedule = None
        forecaster = cfg.forecaster if cfg.forecaster is not None else default_forecaster(cfg.predictive.season_s)
        policy_obj = PredictivePolicy(trace, forecaster, capacity, predictive_policy(capacity, cfg),
                                      cfg.predictive, cfg.ingest_delay_s, on_progress=progress,
                                      static_guard=guard)
    sim = Simulator(cfg.worker, ColdStart(cfg.cold_start.fixed_s, cfg.cold_start.samples_s, cfg.seed),
                    replay_start, window.arrivals)
    applied = _replay(sim, window.arrivals, svc, schedule, policy_obj, replay_start, cfg)
    return _measure(trace.endpoint, spec, sim, applied, window, svc, in_window, cfg, policy_obj)


def _replay(sim: Simulator, arrivals, svc, schedule, policy_obj, replay_start, cfg) -> list[Cmd]:
    a, s = arrivals.tolist(), svc.tolist()
    n, i = len(a), 0
    snapshot: list = []

    def advance(t: float) -> None:
        nonlocal i
        if not snapshot and t >= cfg.start_s:
            advance_to(cfg.start_s)
            snapshot.append(sim.totals(cfg.start_s))
        advance_to(t)

    def advance_to(t: float) -> None:
        nonlocal i
        while i < n and a[i] < t:
            sim.serve(a[i], s[i])
            i += 1

    applied: list[Cmd] = []

    def apply(c: Cmd) -> None:
        c = cfg.provider.command(c)
        advance(c.t)
        sim.command(c.t, c.warm_workers, c.idle_timeout_s)
        if c.t >= cfg.start_s:
            applied.append(c)

    if schedule is not None:
        for c in schedule:
            apply(c)
    else:
        cycle = policy_obj.settings.cycle_s
        t = replay_start
        while t < cfg.end_s:
            advance(t)
            for c in policy_obj.commands(t, t + cycle, sim, cfg.end_s):
                apply(c)
            t += cycle
    advance(cfg.end_s)
    sim.snapshot_at_start = snapshot[0] if snapshot else (0.0, 0.0)
    return applied


def _measure(endpoint, spec, sim, applied, window, svc, in_window, cfg, policy_obj) -> Result:
    sim.finish(cfg.end_s)
    w0, b0 = sim.snapshot_at_start
    worker_s = sim.worker_s - w0
    busy_s = sim.busy_s - b0
    waits = sim.wait_s[in_window]
    cold = sim.cold[in_window]
    changes, last = [], None
    for c in applied:  # provider commands: only real changes
        key = (c.warm_workers, c.idle_timeout_s)
        if key != last:
            changes.append(c)
            last = key
    return Result(
        endpoint=endpoint, policy=spec, requests=int(in_window.sum()), cold_requests=int(cold.sum()),
        worker_hours=worker_s / 3600.0, idle_worker_hours=max(0.0, worker_s - busy_s) / 3600.0,
        cost=worker_s / 3600.0 * cfg.price_per_worker_hour,
        latency_p50_s=float(np.percentile(waits, 50)) if len(waits) else 0.0,
        latency_p99_s=float(np.percentile(waits, 99)) if len(waits) else 0.0,
        commands=len(changes), worker_starts=sim.starts,
        schedule=changes, lifetimes=sim.lifetimes, cold_times=window.arrivals[in_window][cold],
        forecast_trace=policy_obj.forecast_trace if policy_obj else [],
        tunings=policy_obj.tunings if policy_obj else [], guards=policy_obj.guards if policy_obj else [],
        smoothings=policy_obj.smoothings if policy_obj else [],
        judgements=policy_obj.judgements if policy_obj else [])


def _clairvoyant(trace, window, svc, in_window, cfg) -> Result:
    worker_s, busy_s = lower_bound_worker_s(window.arrivals[in_window], svc[in_window],
                                            cfg.worker.concurrency, cfg.cold_start.mean())
    return Result(endpoint=trace.endpoint, policy="clairvoyant", requests=int(in_window.sum()),
                  cold_requests=0, worker_hours=worker_s / 3600.0,
                  idle_worker_hours=(worker_s - busy_s) / 3600.0,
                  cost=worker_s / 3600.0 * cfg.price_per_worker_hour, latency_p50_s=0.0,
                  latency_p99_s=0.0, commands=0, worker_starts=0)


def with_policy(cfg: BacktestConfig, **changes) -> BacktestConfig:
    return replace(cfg, **changes)
