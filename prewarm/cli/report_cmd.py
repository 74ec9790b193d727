"""`prewarm report`: one self-contained HTML page from the store (reads only)."""
from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import click

from .common import utcnow
from .output import echo


def _since(ctx, param, value):
    from ..units import parse_duration, parse_timestamp

    now = utcnow()
    try:
        start = now - timedelta(seconds=parse_duration(value))
    except ValueError:
        try:
            start = parse_timestamp(value)
        except ValueError:
            raise click.BadParameter(f"{value!r}: expected a duration back from now (7d, 36h) or a time "
                                     "(ISO-8601, e.g. 2026-11-28T09:00:00Z)", ctx=ctx, param=param) from None
    if start >= now:
        raise click.BadParameter(f"{value!r} is not in the past", ctx=ctx, param=param)
    return start.replace(second=0, microsecond=0)


def _until(ctx, param, value):
    from ..units import parse_timestamp

    if value is None:
        return None
    try:
        return parse_timestamp(value).replace(second=0, microsecond=0)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (expected ISO-8601, e.g. 2026-11-28T09:00:00Z)", ctx=ctx, param=param) from None


@click.command()
@click.argument("endpoints", nargs=-1)
@click.option("--since", "start", default="7d", show_default=True, callback=_since,
              help="Window start: a duration back from now (7d, 36h) or a time (ISO-8601).")
@click.option("--until", "end", callback=_until, help="Window end, a time (default: now).")
@click.option("--static/--no-static", default=True, show_default=True,
              help="Replay static settings on the window's counts for the cost comparison (the slow part: "
                   "minutes for a week of a busy endpoint).")
@click.option("--out", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="HTML file to write (replaced whole, never half-written).")
@click.pass_context
def report(ctx, endpoints, start, end, static, out) -> None:
    """Write an HTML report of ENDPOINTs (default: every endpoint with history in the store).

    Per endpoint over the window: the forecast band against actual traffic, the warm target
    planned and the target the provider accepted, cold starts, worker-hours and cost against
    the best static setting replayed on the same days (the advisor's sweep), forecast accuracy,
    and the last actions with their reasons. One file, no network: inline SVG and script.
    Endpoints with history that are not in the config are reported with the defaults.
    """
    from ..errors import InputError
    from ..report import data, html
    from ..store import Store
    from .backtest_cmd import _progress

    settings = ctx.obj.settings
    configured = {ep.name for ep in settings.endpoints}
    now = utcnow()
    end = end or now.replace(second=0, microsecond=0)
    if start >= end:
        raise click.BadParameter("must be before --until", param_hint="--since")
    store = Store(settings.store.url)
    try:
        known = store.endpoints_with_history()
        names = list(dict.fromkeys(endpoints)) or known
        if not names:
            raise InputError("the store has no request history yet; load some with `prewarm ingest`")
        missing = [n for n in names if n not in known]
        if missing:
            raise InputError(f"no history in the store for {', '.join(map(repr, missing))} "
                             f"(endpoints with history: {', '.join(known) or 'none'})")
        reports = []
        for name in names:
            if name not in configured:
                echo(f"note: {name!r} is not configured; reported with the capacity and planner defaults",
                           err=True)
            show = _progress(f"{name}: static settings") if static else None
            reports.append(data.endpoint_report(store, settings, settings.endpoint_or_default(name), name in configured,
                                                start, end, progress=show, static=static))
            if show:
                sys.stderr.write("\r" + " " * 60 + "\r")
    finally:
        store.close()
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    _write_atomically(Path(out), html.render(reports, now, window))
    echo(f"wrote {out}: {len(reports)} endpoint{'s' if len(reports) != 1 else ''}, {window}")


def _write_atomically(path: Path, text: str) -> None:
    from ..errors import InputError

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"--out {path}: no such directory {directory}")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # an ordinary file, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
