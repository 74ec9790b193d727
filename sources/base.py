"""The source interface: a thin adapter that reads per-minute request counts (and, where the
platform has them, cold starts) of an endpoint for a time range.

Modelled, like the providers, on KEDA's scalers: a typed config validated at construction,
errors that say whether a retry can help, one thin wrapper per vendor API. A source module
imports nothing of prewarm above `prewarm.sources` (and `prewarm.providers.aws_common`, the
one place AWS clients are made): sources sit at the bottom of the dependency graph.

Minutes are aware-UTC datetimes on whole minutes; the minute stamped `t` holds the requests
in [t, t + 60 s).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Literal, NamedTuple, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

MINUTE = timedelta(minutes=1)


def _duration(value: Any) -> Any:
    """'90s', '5m', '2h', '1d' or seconds (sources do not import prewarm.units)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for suffix in ("ms", "s", "m", "h", "d", "w"):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a duration such as '30s', '5m' or '2h', got {value!r}") from None


class SourceConfig(BaseModel):
    """Base of every source's `[endpoints.source]` schema (with what it inherits from the
    top-level `[source]`). Unknown keys are refused. Durations take '30s', '5m', '2h' or seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    delay_s: float = Field(60.0, ge=0, description="read a minute only this long after it ended "
                                                   "(the source's collection and publication delay)")
    revise_s: float = Field(600.0, ge=0, description="each sync reads this much before its watermark "
                                                     "again, so late data updates the minutes it changes")
    timeout_s: float = Field(10.0, gt=0, description="per request to the source")
    absent: Literal["missing", "zero"] = Field(
        "missing", description="a minute the source has no value for: missing (not zero traffic), "
                               "or zero (platforms that publish nothing in a minute without requests)")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, fld in cls.model_fields.items():
            if not name.endswith("_s"):
                continue
            short = name[:-2]
            if short in out:
                if name in out:
                    raise ValueError(f"give either {short} or {name}, not both")
                out[name] = out.pop(short)
            if name in out and isinstance(out[name], str):
                out[name] = _duration(out[name])
        return out


class Minute(NamedTuple):
    """What the source answered for one minute (a tuple: a backfill holds millions)."""

    requests: int
    cold_starts: int | None = None


@dataclass
class Answer:
    """A source's answer for one endpoint over [start, end): the minutes it has values for.
    Minutes of the range not in `minutes` are ones the source has no value for (see `absent`).
    `error` is set when the source could not answer at all; then `minutes` is empty."""

    endpoint: str
    start: datetime
    end: datetime
    minutes: dict[datetime, Minute] = field(default_factory=dict)
    error: "SourceError | None" = None


class SourceError(Exception):
    """Carries the source kind, the endpoint, and whether a retry can help."""

    def __init__(self, message: str, *, source: str, endpoint: str, retryable: bool,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.endpoint = endpoint
        self.retryable = retryable
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        kind = "retryable" if self.retryable else "not retryable"
        code = f" [{self.code}]" if self.code else ""
        return f"{self.source} / {self.endpoint}{code}: {self.args[0]} ({kind})"


@dataclass(frozen=True)
class Read:
    """One endpoint's read: its source and the minutes [start, end) wanted."""

    source: "Source"
    start: datetime
    end: datetime


class Source(ABC):
    """Subclasses set `kind`, `Config` (a SourceConfig subclass) and implement `read`.

    One instance per endpoint (its config holds the endpoint's query). `read_many` reads many
    endpoints of one kind at once; a source whose API batches (CloudWatch) overrides it.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]
    retention_s: ClassVar[Optional[float]] = None  # how far back 1-minute data is kept (None: unknown)

    def __init__(self, config: SourceConfig, endpoint: str) -> None:
        self.config = config
        self.endpoint = endpoint

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """Key -> short description with type/default, for `prewarm sources list`."""
        from prewarm.providers.base import describe_fields
        return describe_fields(cls.Config, duration_aliases=True)

    def retention(self) -> float | None:
        """Seconds of 1-minute data the source keeps (backfills start no earlier)."""
        return self.retention_s

    @abstractmethod
    def read(self, start: datetime, end: datetime) -> Answer:
        """The endpoint's minutes in [start, end) (whole minutes, aware UTC). Paging through
        the API's limits is the source's job. Raises SourceError."""

    @classmethod
    def read_many(cls, reads: Sequence[Read]) -> list[Answer]:
        """Answers in the order of `reads`; a failure is carried in its Answer, never raised."""
        out = []
        for r in reads:
            try:
                out.append(r.source.read(r.start, r.end))
            except SourceError as exc:
                out.append(Answer(r.source.endpoint, r.start, r.end, error=exc))
        return out

    def reports_cold_starts(self) -> bool:
        """Whether this endpoint's source is configured to read cold starts too."""
        return False

    def close(self) -> None:
        """Release clients."""

    def error(self, message: str, *, retryable: bool, code: str | None = None) -> SourceError:
        return SourceError(message, source=self.kind, endpoint=self.endpoint, retryable=retryable, code=code)


def whole_minutes(value: float) -> int | None:
    """A count as an integer: values are rounded to the nearest whole request (PromQL's
    increase() extrapolates to the window's edges, so it answers 7.12 for 7 requests); NaN
    and infinities are no value."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return max(0, int(math.floor(value + 0.5)))


def floor_minute(t: datetime) -> datetime:
    t = t.astimezone(timezone.utc)
    return t.replace(second=0, microsecond=0)


def minute_range(start: datetime, end: datetime, size: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into pages of at most `size` minutes."""
    pages = []
    at = start
    while at < end:
        stop = min(end, at + size * MINUTE)
        pages.append((at, stop))
        at = stop
    return pages
