"""What a static-guard judgement decided (runner.static_guard) and the evidence it decided on.

Plain data: the daemon stores it (static_guards.evidence), logs it and `prewarm explain` shows
it, so an operator can see why an endpoint runs alone or over last week's best static setting.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..planner.model import StaticSetting

# Why a judgement decided what it did (Evidence.verdict).
HELD = "held"  # the plan alone held on the trailing week: it runs alone
ABOVE_TARGET = "above the target"  # the plan alone ran significantly above the target there
COSTLIER = "costlier than static"  # a static setting with the plan's cold rate cost less there
NO_STATIC = "no static setting met the target"  # nothing to guard with: the plan alone
YOUNG = "under a season of history"  # too little history to judge: the plan alone
ALWAYS = "always"  # guard "always": the best static setting, the plan alone not judged
VERDICTS = (HELD, ABOVE_TARGET, COSTLIER, NO_STATIC, YOUNG, ALWAYS)


@dataclass(frozen=True)
class Evidence:
    """What a static-guard judgement saw on the endpoint's trailing week, for the operator
    (the daemon's log, the store, `prewarm explain`): the verdict, the best static setting at
    the target on that week (what it would have cost) and, where the plan alone was replayed,
    how it did and what the cheapest static setting with its cold rate cost."""
    verdict: str
    target: float
    span_s: float = 0.0  # the history the week's replays covered
    best: StaticSetting | None = None
    alone_requests: int | None = None
    alone_cold: int | None = None
    alone_worker_hours: float | None = None
    static_hours_at_alone: float | None = None  # None: no static setting had a cold rate that low

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Evidence":
        """As stored (as_dict); keys it does not know (a later version's) are left out."""
        best = d.get("best")
        return cls(**{**_known(cls, d), "best": StaticSetting(**_known(StaticSetting, best)) if best else None})

    def text(self) -> str:
        """One line: why the plan runs alone or over a static setting."""
        pct = self.target * 100

        def static_text(s: StaticSetting) -> str:
            return f"{s.text()}: {100 * (s.cold_rate or 0):.2f}% cold at {s.worker_hours or 0:.1f} worker-hours"

        core = static = ""
        if self.alone_requests is not None:
            rate = self.alone_cold / self.alone_requests if self.alone_requests else 0.0
            core = (f"{100 * rate:.2f}% cold ({self.alone_cold} of {self.alone_requests} requests) at "
                    f"{self.alone_worker_hours:.1f} worker-hours")
            if self.static_hours_at_alone is not None:
                static = f", where the cheapest static setting with that cold rate took {self.static_hours_at_alone:.1f}"
        days = f"{self.span_s / 86400:.1f} days"
        best = f"; the best static setting at the {pct:g}% target: {static_text(self.best)}" if self.best else ""
        if self.verdict == YOUNG:
            return f"too little history to judge ({days}): the plan alone"
        if self.verdict == NO_STATIC:
            return f"no static setting met the {pct:g}% target on the trailing {days}: the plan alone"
        if self.verdict == HELD:
            return f"the plan alone held on the trailing {days}: {core}{static}{best}"
        if self.verdict == ABOVE_TARGET:
            return f"guarded: the plan alone ran {core} on the trailing {days}, above the {pct:g}% target{static}{best}"
        if self.verdict == COSTLIER:
            took = "" if self.static_hours_at_alone is None else f" took {self.static_hours_at_alone:.1f}"
            return (f"guarded: the plan alone ran {core} on the trailing {days}; the cheapest static setting "
                    f"with that cold rate{took}{best}")
        ran = f"; the plan alone ran {core} on the trailing {days}" if core else ""
        return f"guarded every week ([planner] static_guard = \"always\"){ran}{best}"


def summary(stored: dict | None) -> str | None:
    """The line of stored evidence (Evidence.as_dict), for `prewarm explain` and `prewarm
    report`; None before evidence was stored. Evidence another version wrote that this one
    cannot read is said to be so, not raised: the callers still answer."""
    if not stored:
        return None
    try:
        return Evidence.from_dict(stored).text()
    except (TypeError, ValueError) as exc:
        return f"evidence not readable here ({exc})"


def _known(cls, d: dict) -> dict:
    """The items of `d` that are fields of the dataclass `cls`."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Judgement:
    """What a static-guard judgement decided for the next period (runner.static_guard): the
    static setting the plan may not go below (None: the plan alone), the smoothing the
    policy plans with (None: its own), and the evidence it decided on."""
    static: StaticSetting | None = None
    smoothing_s: float | None = None
    evidence: Evidence | None = None
