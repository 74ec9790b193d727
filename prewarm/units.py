"""Durations and time stamps as people write them in config files and on the command line.

Kept free of pandas so that `prewarm --help` and config loading stay fast.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | int | float) -> float:
    """'30s', '5m', '1.5h', '2d', '1w', '250ms' or a bare number of seconds -> seconds."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as '30s' or '6h', got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return float(text)
    match = _DURATION_RE.match(str(text))
    if not match:
        raise ValueError(f"expected a duration such as '30s', '5m', '6h' or '2d', got {text!r}")
    value, unit = match.groups()
    return float(value) * _UNIT_SECONDS[unit or "s"]


def parse_durations(items) -> tuple[float, ...]:
    """Several durations (each as parse_duration), none twice -> seconds, ascending."""
    values = [parse_duration(v) for v in items]
    if len(set(values)) != len(values):
        raise ValueError("a duration is listed twice")
    return tuple(sorted(values))


def parse_duration_list(text: str) -> tuple[float, ...]:
    """Command-line form of parse_durations: "1h,2h,3h" (comma-separated) -> seconds,
    ascending; "none" (any case) -> () for an empty list."""
    if text.strip().lower() == "none":
        return ()
    return parse_durations(v.strip() for v in text.split(","))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 90 -> '90s', 3600 -> '1h', 5400 -> '90m'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_timestamp(text: str, default_tz: tzinfo = timezone.utc) -> datetime:
    """ISO-8601 with 'Z', an offset, or naive (read in default_tz); returned in UTC."""
    parsed = parse_iso(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed.astimezone(timezone.utc)


def parse_iso(text: str) -> datetime:
    """ISO-8601 as written: aware with 'Z' or an offset, naive without.

    Also takes a space instead of 'T' and fractional seconds of any length (the Azure trace
    has 100 ns resolution, which datetime.fromisoformat in 3.11 accepts only up to 6 digits).
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty time stamp")
    fixed = raw[:-1] + "+00:00" if raw[-1] in "Zz" else raw
    frac = re.search(r"\.(\d{7,})", fixed)
    if frac:
        fixed = fixed[: frac.start(1)] + frac.group(1)[:6] + fixed[frac.end(1):]
    try:
        parsed = datetime.fromisoformat(fixed)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time stamp: {raw!r}") from None
    return parsed


def to_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def floor_time(moment: datetime, step_s: float) -> datetime:
    epoch = to_utc(moment).timestamp()
    return datetime.fromtimestamp(epoch - (epoch % step_s), tz=timezone.utc)


def iso(moment: datetime) -> str:
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["parse_duration", "parse_durations", "parse_duration_list", "format_duration", "parse_timestamp", "parse_iso", "to_utc", "floor_time", "iso", "zone"]
