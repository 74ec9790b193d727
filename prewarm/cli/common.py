"""Helpers shared by commands: the runtime, time options."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click

from ..units import parse_duration, parse_timestamp
from .output import echo


class DurationType(click.ParamType):
    """A positive duration (every option taking one is a span ahead: a horizon, a hold)."""
    name = "duration"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value) if isinstance(value, (int, float)) else parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f"expected a positive duration such as '30m' or '6h', got {value!r}", param, ctx)
        return seconds


class TimeType(click.ParamType):
    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            self.fail(f"{exc} (expected ISO-8601, e.g. 2024-11-28T09:00:00Z)", param, ctx)


class AddressType(click.ParamType):
    """HOST:PORT, checked as [metrics] address is in the config."""
    name = "host:port"

    def convert(self, value, param, ctx):
        from ..config import check_address
        try:
            return check_address(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()
TIME = TimeType()
ADDRESS = AddressType()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def runtime(ctx: click.Context, metrics=None):
    from ..runtime import Runtime
    return Runtime(ctx.obj.settings, metrics=metrics)


def with_endpoints(ctx: click.Context, rt, names) -> list[str]:
    """The show commands (`forecast`, `plan`, `backtest --from-store`) work on any endpoint
    with history in the store, configured or not. A name that is not configured but has
    history is added to this run's settings with the defaults (the config's [planner] and
    [forecast], default capacity, the dry-run provider), and said so on stderr; a name with
    neither is refused as before. Returns the names."""
    names = list(names)
    configured = {ep.name for ep in rt.settings.endpoints}
    added = []
    for name in names:
        if name in configured:
            continue
        if rt.store.last_count_time(name) is None:
            rt.settings.endpoint(name)  # raises: unknown, with the configured names
        added.append(rt.settings.endpoint_or_default(name))
        echo(f"note: {name!r} is not configured; using the defaults ([planner], [forecast], "
                   "default capacity, dry-run provider)", err=True)
    if added:
        rt.settings = rt.settings.model_copy(update={"endpoints": (*rt.settings.endpoints, *added)})
    return names


def no_history_message(rt, name: str, now: datetime, window_s: float) -> str:
    """'no history' that says which window was read and, when the store has history outside
    it, where it is and how to look there (--at)."""
    from ..units import format_duration, iso

    start = now - timedelta(seconds=window_s)
    msg = (f"no history for {name!r} in [forecast] history = {format_duration(window_s)} before "
           f"{iso(now)} (from {iso(start)})")
    last = rt.store.last_count_time(name)
    if last is None:
        return msg + "; ingest some with `prewarm ingest` (or `prewarm sync`)"
    last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
    if last < start:
        return msg + f"; its history ends at {iso(last)}: try --at {iso(last + timedelta(minutes=1))}"
    first = rt.store.count_span(name)[0]
    first = first if first.tzinfo else first.replace(tzinfo=timezone.utc)
    return (msg + f"; its history runs from {iso(first)} to {iso(last)}: try --at "
            f"{iso(min(last, first + timedelta(days=1)) + timedelta(minutes=1))}")
