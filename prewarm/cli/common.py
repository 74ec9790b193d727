"""Helpers shared by commands: the runtime, time options."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from ..units import parse_duration, parse_timestamp


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


DURATION = DurationType()
TIME = TimeType()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def runtime(ctx: click.Context, metrics=None):
    from ..runtime import Runtime
    return Runtime(ctx.obj.settings, metrics=metrics)
