"""The provider interface: a few portable verbs, one instance per endpoint.

Modelled on Apache Libcloud (one driver per cloud behind a small set of verbs) and KEDA
(typed config validated at construction, a thin wrapper around each SDK so it can be faked).

A provider module must not import anything of prewarm above `prewarm.providers` and
`prewarm.units`: providers sit at the bottom of the dependency graph.
"""
from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class ProviderConfig(BaseModel):
    """Base of every provider's `[endpoints.provider]` schema. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str


@dataclass(frozen=True)
class EndpointRef:
    """What a provider knows of the endpoint it drives: its name and its hard bounds."""

    name: str
    min_workers: int = 0
    max_workers: int = 1_000_000

    def clamp(self, workers: int) -> int:
        return max(self.min_workers, min(self.max_workers, int(workers)))


@dataclass(frozen=True)
class Capabilities:
    scale_to_zero: bool = True
    idle_timeout: bool = False  # the provider lets us set the idle timeout of on-demand workers
    # What it takes of one, when it can (the daemon asks for no other, prewarm.apply.carried_idle):
    idle_timeout_min_s: float = 0.0
    idle_timeout_max_s: float | None = None
    idle_timeout_step_s: float = 1.0  # whole multiples of this (the daemon rounds up: fail warm)
    idle_timeout_at_zero_only: bool = False  # taken only with a warm target of 0 (a scale-to-zero delay)
    granularity: int = 1  # targets are multiples of this
    max_workers: int | None = None
    typical_ready_s: float | None = None  # typical time from a scale-out to ready capacity
    scheduled: bool = False  # can store future scale actions itself (survives a daemon outage)
    notes: str = ""


@dataclass(frozen=True)
class CapacityState:
    """What the provider reports now. `desired` is the configured warm target, `ready` what
    is actually serving; they differ while workers start."""

    desired: int
    ready: int
    idle_timeout_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    changed: bool
    previous: int | None
    target: int
    idle_timeout_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadyReport:
    ready: bool
    seconds: float  # from the change to ready (or to giving up)
    state: CapacityState | None = None


@dataclass(frozen=True)
class Finding:
    """What `Provider.check` found. `error`: applying cannot work as configured (the message
    says the fix); `warning`: it works, but something else also drives the capacity."""

    level: str  # "error" | "warning"
    message: str


class ProviderError(Exception):
    """Carries the provider, the endpoint, and whether a retry can help."""

    def __init__(self, message: str, *, provider: str, endpoint: str, retryable: bool,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.endpoint = endpoint
        self.retryable = retryable
        self.code = code

    def __str__(self) -> str:
        kind = "retryable" if self.retryable else "not retryable"
        code = f" [{self.code}]" if self.code else ""
        return f"{self.provider} / {self.endpoint}{code}: {self.args[0]} ({kind})"


def describe_fields(config: type[BaseModel], *, duration_aliases: bool = False) -> dict[str, str]:
    """A plugin config's keys (all but `kind`) -> "type, required|default X - description", for
    `prewarm providers list` and `prewarm sources list`. With duration_aliases, a `foo_s` key
    shows as `foo (foo_s)` (the plugin takes either spelling)."""
    out: dict[str, str] = {}
    for name, fld in config.model_fields.items():
        if name == "kind":
            continue
        ann = fld.annotation
        ann = (str(ann).replace("typing.", "") if getattr(ann, "__args__", None)
               else getattr(ann, "__name__", str(ann)))
        req = "required" if fld.is_required() else f"default {fld.get_default(call_default_factory=True)!r}"
        desc = f" - {fld.description}" if fld.description else ""
        shown = f"{name[:-2]} ({name})" if duration_aliases and name.endswith("_s") else name
        out[shown] = f"{ann}, {req}{desc}"
    return out


class Provider(ABC):
    """Subclasses set `kind`, `Config` (a ProviderConfig subclass) and implement the verbs.

    Targets passed to `apply` are already clamped by the caller through `EndpointRef.clamp`;
    providers clamp again (cheap, and a provider may be used directly).
    """

    kind: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]]

    def __init__(self, config: ProviderConfig, endpoint: EndpointRef) -> None:
        self.config = config
        self.endpoint = endpoint

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """Key -> short description with type/default, for `prewarm providers list`."""
        return describe_fields(cls.Config)

    @abstractmethod
    def read(self) -> CapacityState:
        """Current warm capacity of the endpoint."""

    @abstractmethod
    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        """Declare the warm target. Idempotent: applying the current target changes nothing."""

    @abstractmethod
    def capabilities(self) -> Capabilities:
        ...

    def wait_ready(self, target: int, timeout_s: float, *, poll_s: float = 1.0,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> ReadyReport:
        """Poll `read` until `ready >= target` or the timeout. Providers with a better
        signal (a status field) override this."""
        start = clock()
        state = None
        while True:
            state = self.read()
            if state.ready >= target:
                return ReadyReport(True, clock() - start, state)
            if clock() - start >= timeout_s:
                return ReadyReport(False, clock() - start, state)
            sleep(poll_s)

    def check(self) -> list[Finding]:
        """A read-only look at the real resource for setups that cannot work, or that another
        controller also drives; asked when the daemon starts and when a config is checked.
        Raises ProviderError when the resource cannot be read. Default: nothing to check."""
        return []

    def close(self) -> None:
        """Release clients and, for providers that own processes, leave them as they are."""

    def error(self, message: str, *, retryable: bool, code: str | None = None) -> ProviderError:
        return ProviderError(message, provider=self.kind, endpoint=self.endpoint.name,
                             retryable=retryable, code=code)


def retry_call(fn: Callable[[], T], *, deadline_s: float = 30.0, base_s: float = 0.2,
               cap_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               rng: random.Random | None = None,
               on_retry: Callable[[ProviderError, int, float], None] | None = None) -> T:
    """Call fn; retry ProviderErrors marked retryable with full-jitter exponential backoff
    until the deadline. Non-retryable errors and the last retryable one are raised."""
    rng = rng or random.Random()
    start = clock()
    attempt = 0
    while True:
        try:
            return fn()
        except ProviderError as exc:
            if not exc.retryable:
                raise
            attempt += 1
            delay = rng.uniform(0, min(cap_s, base_s * (2 ** attempt)))
            if clock() - start + delay > deadline_s:
                raise
            if on_retry:
                on_retry(exc, attempt, delay)
            sleep(delay)
