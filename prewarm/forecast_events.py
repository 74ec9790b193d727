"""Calendar overrides: a launch, a holiday, a migration. Declared in the config, applied to
the forecast frame after the model, and reported so `explain` can say why a plan moved.

    [[forecast.events]]
    name = "launch"
    start = "2025-03-01T09:00:00+01:00"
    end = "2025-03-01T18:00:00+01:00"
    scale = 3.0                    # or: value = 120 (requests per minute, replaces the forecast)
    endpoints = ["chat"]           # optional; empty = every endpoint using this [forecast]

Per endpoint, `[endpoints.forecast] events = [...]` replaces the global list for it.
This module imports pydantic only (config loading must stay fast); pandas is imported by
`apply_events` when it runs.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .units import parse_timestamp, to_utc

if TYPE_CHECKING:
    import pandas as pd


class ForecastEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="shown in explain")
    start: datetime = Field(description="first moment of the window (ISO-8601; naive = UTC)")
    end: datetime = Field(description="end of the window, exclusive")
    scale: Optional[float] = Field(None, gt=0, description="multiply the forecast and its bands")
    value: Optional[float] = Field(None, ge=0, description="replace it: requests per minute")
    endpoints: tuple[str, ...] = Field((), description="endpoints it applies to; empty = all")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _moment(cls, v: Any) -> datetime:
        if isinstance(v, str):
            return parse_timestamp(v)
        if isinstance(v, datetime):
            return to_utc(v)
        raise ValueError(f"expected an ISO-8601 time stamp, got {v!r}")

    @model_validator(mode="after")
    def _one_effect(self) -> "ForecastEvent":
        if (self.scale is None) == (self.value is None):
            raise ValueError(f"event {self.name!r}: give exactly one of scale or value")
        if self.end <= self.start:
            raise ValueError(f"event {self.name!r}: end ({self.end.isoformat()}) is not after start")
        return self

    def applies_to(self, endpoint: str) -> bool:
        return not self.endpoints or endpoint in self.endpoints


def apply_events(frame: "pd.DataFrame", events: Iterable[ForecastEvent], step_s: int
                 ) -> tuple["pd.DataFrame", dict[str, list[str]]]:
    """Scale or replace the steps of `frame` (unique_id, ds naive UTC, mean, bands; values
    per step) whose start lies in an event's window. Returns the new frame and, per
    unique_id, the names of the events that changed it (in the order applied)."""
    out = frame.copy()
    value_cols = [c for c in out.columns if c == "mean" or c.startswith(("lo-", "hi-"))]
    applied: dict[str, list[str]] = {}
    for event in events:
        start = event.start.replace(tzinfo=None)
        end = event.end.replace(tzinfo=None)
        ids = out["unique_id"].astype(str)
        mask = (out["ds"] >= start) & (out["ds"] < end) & ids.map(event.applies_to)
        if not mask.any():
            continue
        if event.scale is not None:
            out.loc[mask, value_cols] = out.loc[mask, value_cols] * event.scale
        else:
            out.loc[mask, value_cols] = event.value * step_s / 60.0
        for uid in ids[mask].unique():
            applied.setdefault(uid, []).append(event.name)
    return out, applied
