"""What a cycle reports per endpoint: a plan (or why none), and what apply did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .planner.model import EndpointPlan


@dataclass
class EndpointOutcome:
    endpoint: str
    plan: EndpointPlan | None = None
    model: str | None = None
    error: str | None = None
    stage: str | None = None
    no_history: bool = False  # nothing to forecast from yet: not planned, and not a failure

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.no_history


@dataclass
class ActionOutcome:
    endpoint: str
    target: int
    previous: int | None
    result: str  # ok, unchanged, error, skipped
    reason: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
