"""Printing data: a plain table for people, --json for programs."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, Sequence

import click

from ..redact import redact


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        from ..units import iso
        return iso(value)
    return str(value)


def echo(message: Any = "", err: bool = False, nl: bool = True) -> None:
    """Every line the CLI prints goes through here: secrets masked (prewarm.redact), whatever
    the text carries (a provider's or a source's error, a URL). tests/test_secrets.py keeps
    the commands off click.echo."""
    click.echo(redact(str(message)), err=err, nl=nl)


def emit_json(doc: Any) -> None:
    echo(json.dumps(doc, default=_default, indent=2))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in cells:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # every table and line a person reads; UTC, labelled


def when(v: Any) -> str:
    """A time for a person: one format everywhere, with its zone. Takes a datetime or an
    ISO-8601 string (as stored in plan reasons); None gives '-'."""
    if v is None:
        return "-"
    if isinstance(v, str):
        from ..units import parse_timestamp
        v = parse_timestamp(v)
    from ..units import to_utc
    return to_utc(v).strftime(TIME_FORMAT) + " UTC"


def model_name(model: str | None) -> str | None:
    """`seasonal-mean(backend=local, days=7, ...)` -> `seasonal-mean`: the name, for tables."""
    return None if model is None else model.split("(")[0]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, datetime):
        return v.strftime(TIME_FORMAT)
    return redact(str(v))  # a provider's error, a URL: secrets masked


def interactive() -> bool:
    """Progress goes to a terminal only; piped output stays quiet."""
    return sys.stderr.isatty()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
