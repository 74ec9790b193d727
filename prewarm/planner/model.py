"""Plain data the planner takes and gives. No I/O, no clock, no pandas: the planner runs for
every endpoint every cycle, and property tests build these by the thousand."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from ..units import format_duration


@dataclass(frozen=True)
class CapacityModel:
    """How an endpoint turns requests into workers, and what a worker costs."""

    concurrency: int = 1  # requests one worker serves at once
    service_time_s: float = 1.0  # how long a request holds a slot
    cold_start_s: float = 30.0  # from start command to ready (the lead time)
    min_workers: int = 0
    max_workers: int = 100
    price_per_worker_hour: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.service_time_s <= 0:
            raise ValueError("service_time_s must be positive")
        if self.cold_start_s < 0:
            raise ValueError("cold_start_s cannot be negative")
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError("need 0 <= min_workers <= max_workers")


# The smoothings the static guard's weekly judgement replays the plan alone at, per endpoint,
# on its own trailing week; the endpoint then plans with the one that did best there
# (backtest.runner.choose_smoothing; [planner] smoothing_choices). Chosen on the tuning parts
# (docs/backtesting.md): the values the tuning sweep of `smoothing` found best on one series or
# another.
SMOOTHING_CHOICES_S: tuple[float, ...] = (3600.0, 7200.0, 10800.0)


@dataclass(frozen=True)
class PolicySettings:
    """The planner's knobs. Defaults are the documented `[planner]` defaults."""

    quantile_column: str = "hi-80"  # which forecast band sizes the warm pool (hi-80 = q0.9)
    speculative: bool = True  # hold one warm worker through lulls
    # Below this many expected requests per hour in a lull, the speculative worker does not
    # pay for itself (see planner.core.speculative_pays).
    speculative_min_requests_per_hour: float = 0.0
    floor: int = 0  # always-on part (hybrid pattern); the planner never goes below it
    scale_in_delay_s: float = 600.0  # hysteresis: hold a higher target this long before lowering
    idle_timeout_s: float | None = None  # for providers that accept one
    budget_worker_hours_per_day: float | None = None
    # Busy steps: the fewest workers whose Erlang loss (share of arrivals finding every slot
    # busy, i.e. cold) is at most this. None sizes to the mean load only (Little's law).
    blocking: float | None = 0.02
    # Lulls: when set, a worker is held through a step only if the cold starts it is expected
    # to avoid pay for it, an avoided cold start being worth this many worker-seconds
    # (sizing.hold_pays). None keeps the simple rule of speculative_min_requests_per_hour.
    cold_start_value_s: float | None = None
    smoothing_s: float = 0.0  # average the forecast over +- this (sparse traffic is noisy per minute)
    recent_window_s: float = 900.0  # how far ahead recent actual traffic floors the plan
    floor_rule: str = "fixed"  # "fixed": use floor; "baseline": the tuner sizes floor to the baseline load
    baseline_percentile: float = 10.0  # which low percentile of recent load is the baseline
    target_cold_rate: float = 0.02  # what the tuner aims at
    # Idle timeout of on-demand workers, for providers that accept one. "fixed": idle_timeout_s
    # throughout. "forecast": while the forecast says a held worker pays for itself (busy
    # hours), idle_timeout_busy_s, so workers started by a burst stay for the next one; in a
    # forecast lull idle_timeout_s (None: the provider's own), so they go at once.
    idle_timeout_rule: str = "fixed"
    # None: the value of an avoided cold start (cold_start_value_s), the ski-rental
    # break-even, capped at idle_timeout_max_s.
    idle_timeout_busy_s: float | None = None
    idle_timeout_max_s: float = 4 * 3600.0
    # Share of cold_start_value_s credited to warm workers beyond the first (value-based
    # sizing). Below 1 when a long busy-hours idle timeout already keeps burst workers: the
    # planner then holds the first worker through busy hours and leaves bursts to keep-alive.
    burst_value_share: float = 1.0
    # Arrival model of the sizing. "poisson": Erlang's loss on the forecast rate. "observed":
    # Hayward's loss at the peakedness of the observed per-minute counts
    # (Observed.arrival_dispersion, planner.burstiness), so a busy step is sized for the peak
    # within the minute rather than its mean; Poisson while nothing has been observed.
    burstiness: str = "poisson"
    # Without cold_start_value_s, the value starts at this x (lead + service time) /
    # target_cold_rate worker-seconds (2.0: 100 x at a 2% target; planner.tuning.initial_value_s).
    initial_value_factor: float = 2.0
    # The tuner lowers the value only on this much evidence at the current setting (a daily
    # cycle: a few quiet hours say nothing about the busy ones; planner.tuning.tune).
    give_back_span_s: float = 86400.0

    def __post_init__(self) -> None:
        if self.floor < 0:
            raise ValueError("floor cannot be negative")
        if self.blocking is not None and not 0 < self.blocking < 1:
            raise ValueError("blocking must be between 0 and 1")
        if self.floor_rule not in ("fixed", "baseline"):
            raise ValueError("floor_rule must be 'fixed' or 'baseline'")
        if not 0 < self.target_cold_rate < 1:
            raise ValueError("target_cold_rate must be between 0 and 1")
        if self.idle_timeout_rule not in ("fixed", "forecast"):
            raise ValueError("idle_timeout_rule must be 'fixed' or 'forecast'")
        for name in ("idle_timeout_s", "idle_timeout_busy_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative")
        if not 0 < self.burst_value_share <= 1:
            raise ValueError("burst_value_share must be in (0, 1]")
        if self.idle_timeout_max_s <= 0:
            raise ValueError("idle_timeout_max_s must be positive")
        if self.initial_value_factor <= 0:
            raise ValueError("initial_value_factor must be positive")
        if self.give_back_span_s < 0:
            raise ValueError("give_back_span_s cannot be negative")
        if self.burstiness not in ("poisson", "observed"):
            raise ValueError("burstiness must be 'poisson' or 'observed'")

    def busy_idle_timeout_s(self) -> float:
        """The idle timeout the forecast rule uses in busy hours."""
        busy = self.idle_timeout_busy_s
        if busy is None:
            busy = self.cold_start_value_s if self.cold_start_value_s is not None else self.idle_timeout_max_s
        return min(busy, self.idle_timeout_max_s)


@dataclass(frozen=True)
class DemandForecast:
    """Forecast demand for one endpoint: arrival rates in requests per minute per step."""

    start: datetime  # aware UTC, the first step
    step_s: int
    mean: Sequence[float]
    bands: Mapping[str, Sequence[float]] = field(default_factory=dict)  # 'hi-80' -> values
    model: str = ""
    # Steps a declared calendar event set (forecast_events): known, not noise, so the
    # planner's smoothing never averages them below their own value. Empty: none.
    pinned: Sequence[bool] = ()

    def __post_init__(self) -> None:
        for name, values in self.bands.items():
            if len(values) != len(self.mean):
                raise ValueError(f"band {name} has {len(values)} steps, mean has {len(self.mean)}")
        if len(self.pinned) and len(self.pinned) != len(self.mean):
            raise ValueError(f"pinned has {len(self.pinned)} steps, mean has {len(self.mean)}")

    def __len__(self) -> int:
        return len(self.mean)

    def at(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.step_s)

    def series(self, column: str) -> Sequence[float]:
        if column == "mean":
            return self.mean
        if column not in self.bands:
            raise KeyError(f"forecast has no band {column!r} (has: {', '.join(self.bands)})")
        return self.bands[column]


@dataclass(frozen=True)
class Observed:
    """Recent actual traffic, so the planner never scales in on a forecast alone."""

    requests_per_minute_recent: float = 0.0  # e.g. max over the last few minutes
    cold_start_rate: float | None = None
    # The planner's own earlier needs (time, workers) before hysteresis, newest last: a plan
    # made every cycle keeps a higher need for scale_in_delay even though it started earlier.
    need_history: tuple[tuple[datetime, int], ...] = ()
    # Variance over mean of recent per-minute request counts about their local level
    # (planner.burstiness.dispersion_index); None: not known.
    arrival_dispersion: float | None = None

    def __post_init__(self) -> None:
        if self.arrival_dispersion is not None and not self.arrival_dispersion >= 0:
            raise ValueError("arrival_dispersion cannot be negative")


@dataclass(frozen=True)
class StaticSetting:
    """The best static setting (always-on floor, keep-alive) on the endpoint's own recent
    history: the cheapest one that met the target cold-start rate when replayed on the trailing
    week (backtest.advisor.trailing_static). The planner never plans below it: its floor is a
    floor of every command, its keep-alive a lower bound of every idle timeout (None: the
    provider's own is already at least as long). The forecast-driven plan adds on top."""

    floor: int = 0
    keepalive_s: float | None = None
    cold_rate: float | None = None  # what it had on that week (for the reason)
    worker_hours: float | None = None

    def __post_init__(self) -> None:
        if self.floor < 0:
            raise ValueError("floor cannot be negative")
        if self.keepalive_s is not None and not self.keepalive_s >= 0:
            raise ValueError("keepalive_s cannot be negative")

    def text(self) -> str:
        """The setting for a person: "floor 1, keep-alive 3h" ("the platform's keep-alive"
        without one). The one description of a static setting: the guard's log and `once`'s
        result, its evidence, `prewarm explain` and `prewarm report`."""
        keep = "the platform's keep-alive" if self.keepalive_s is None else f"keep-alive {format_duration(self.keepalive_s)}"
        return f"floor {self.floor}, {keep}"

    def idle_timeout(self, planned: float | None) -> float | None:
        """The plan's idle timeout, never below the static keep-alive."""
        if self.keepalive_s is None:
            return planned
        return self.keepalive_s if planned is None else max(planned, self.keepalive_s)


@dataclass(frozen=True)
class Hold:
    """A manual floor (`prewarm hold`), honoured until `until`."""

    workers: int
    until: datetime


@dataclass(frozen=True)
class Command:
    """Hold at least `warm_workers` warm from `at` on. `reason` says why, for `explain`."""

    at: datetime
    warm_workers: int
    idle_timeout_s: float | None = None
    reason: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointPlan:
    endpoint: str
    issued_at: datetime
    commands: tuple[Command, ...]
    need_now: int = 0  # the need at issued_at before hysteresis (feed back as need_history)

    def target_at(self, moment: datetime) -> int | None:
        """The commanded target in force at `moment` (None before the first command)."""
        current = None
        for cmd in self.commands:
            if cmd.at <= moment:
                current = cmd.warm_workers
            else:
                break
        return current
