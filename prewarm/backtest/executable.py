"""What a provider can carry out of a plan, from its `Capabilities` (providers/base.py).

The planner plans two knobs: warm workers and the idle timeout of on-demand workers. A provider
that cannot set the idle timeout (`Capabilities.idle_timeout` False: the AWS adapters, `local`,
Replicate) is count-only: its platform's own keep-alive applies whatever the plan says. One
that caps it (`idle_timeout_max_s`, e.g. Modal's one hour) gets at most that. Targets are
rounded up to the provider's granularity, capped at its max_workers, and kept at one or more
where it cannot scale to zero. `prewarm backtest --provider-kind KIND` replays what KIND can do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .baselines import Cmd


@dataclass(frozen=True)
class Executable:
    """The parts of a provider's Capabilities a replay needs."""

    kind: str = "any"
    idle_timeout: bool = True
    idle_timeout_max_s: float | None = None
    granularity: int = 1
    max_workers: int | None = None
    scale_to_zero: bool = True

    @classmethod
    def of(cls, kind: str, caps: Any) -> "Executable":
        return cls(kind=kind, idle_timeout=bool(caps.idle_timeout),
                   idle_timeout_max_s=getattr(caps, "idle_timeout_max_s", None),
                   granularity=max(1, int(caps.granularity or 1)), max_workers=caps.max_workers,
                   scale_to_zero=bool(caps.scale_to_zero))

    @property
    def count_only(self) -> bool:
        return not self.idle_timeout

    def command(self, c: Cmd) -> Cmd:
        """The command as the provider carries it out."""
        n = c.warm_workers
        if self.granularity > 1:
            n = math.ceil(n / self.granularity) * self.granularity
        if self.max_workers is not None:
            n = min(n, self.max_workers)
        if not self.scale_to_zero:
            n = max(n, 1)
        idle = c.idle_timeout_s if self.idle_timeout else None
        if idle is not None and self.idle_timeout_max_s is not None:
            idle = min(idle, self.idle_timeout_max_s)
        if (n, idle) == (c.warm_workers, c.idle_timeout_s):
            return c
        return replace(c, warm_workers=n, idle_timeout_s=idle)

    def keepalives(self, swept: tuple[float, ...], platform_s: float) -> tuple[float, ...]:
        """The static keep-alives a user of this provider can set: the swept ones (capped), or
        only the platform's own when the provider cannot set one."""
        if not self.idle_timeout:
            return (platform_s,)
        if self.idle_timeout_max_s is None:
            return swept
        return tuple(sorted({min(k, self.idle_timeout_max_s) for k in swept}))


FULL = Executable()


# Idle-timeout caps the providers' Capabilities do not carry (yet): Modal's scaledown_window is
# 2-3600 s (its capabilities notes say so).
_KNOWN_CAPS_S = {"modal": 3600.0}


def provider_capabilities(kind: str) -> Executable:
    """What a provider kind can execute, from its own `capabilities()` on its schema's defaults
    (no client is made, nothing is called: capabilities() reads only the config). Raises
    InputError for an unknown kind or one whose capabilities need a configured key."""
    from ..errors import InputError
    from ..providers.base import EndpointRef
    from ..providers.registry import UnknownProvider, load_class

    try:
        cls = load_class(kind)
    except UnknownProvider as exc:
        raise InputError(f"--provider-kind: {exc}") from None
    except ImportError as exc:
        raise InputError(f"--provider-kind {kind}: the provider cannot be loaded here ({exc})") from None
    stub = cls.__new__(cls)  # the schema's defaults; no __init__ (it would make a client)
    stub.config = cls.Config.model_construct(kind=kind)
    stub.endpoint = EndpointRef("backtest")
    try:
        caps = cls.capabilities(stub)
    except AttributeError as exc:
        raise InputError(f"--provider-kind {kind}: its capabilities depend on a setting with no default "
                         f"({exc})") from None
    out = Executable.of(kind, caps)
    if out.idle_timeout and out.idle_timeout_max_s is None and kind in _KNOWN_CAPS_S:
        out = replace(out, idle_timeout_max_s=_KNOWN_CAPS_S[kind])
    return out
