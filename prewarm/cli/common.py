"""Helpers shared by commands: the runtime, time options."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from ..units import parse_duration, parse_timestamp


class DurationType(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


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
    from ..cycle import Runtime
    return Runtime(ctx.obj.settings, metrics=metrics)
