"""`prewarm ingest`."""
from __future__ import annotations

import click

from .output import echo, emit_json, interactive, json_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint", help="Only this endpoint; or the endpoint of a file without an endpoint column.")
@click.option("--skip-bad", is_flag=True, help="Write the good rows and report the bad ones.")
@click.option("--timezone", "tz", help="Zone of naive time stamps (default: [daemon] timezone, UTC).")
@click.option("--ts-column", help="Time column of a per-request log.")
@click.option("--endpoint-column", help="Endpoint column of a per-request log.")
@json_option
@click.pass_context
def ingest(ctx, files, endpoint, skip_bad, tz, ts_column, endpoint_column, as_json) -> None:
    """Load request counts from CSV files.

    Per-minute counts: ts,endpoint,requests with optional cold_starts, p50_ms, p99_ms;
    any other column is refused.
    Per-request logs (one row per request) are counted per minute. Time stamps may carry
    'Z', an offset, or nothing (read in --timezone). Bad rows are refused with their line
    numbers and nothing is written, of any of the files, unless --skip-bad. Ingesting the
    same rows again changes nothing.

    \b
    Naive times across clock changes (--timezone):
      a skipped local time (spring forward) is refused;
      a repeated one (fall back) is read as its first occurrence, and as the second from
      the row on where, for that endpoint, a time of the repeated hour goes back by a
      minute or more (01:59 then 01:00), until a time outside that hour.
    """
    from ..ingest import ingest_files
    from ..store import Store
    from ..units import zone

    settings = ctx.obj.settings
    try:
        default_tz = zone(tz or settings.daemon.timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone")
    store = Store(settings.store.url)
    options = dict(endpoint=endpoint, skip_bad=skip_bad, default_tz=default_tz, ts_column=ts_column,
                   endpoint_column=endpoint_column)
    try:
        if interactive() and not as_json:
            total = sum(_lines(path) for path in files)
            with click.progressbar(length=total, label="ingest", file=click.get_text_stream("stderr")) as bar:
                reports = ingest_files(store, files, progress=bar.update, **options)
        else:
            reports = ingest_files(store, files, **options)
    finally:
        store.close()
    if as_json:
        emit_json([r.as_dict() for r in reports])
        return
    for r in reports:
        eps = ", ".join(f"{k} {v}" for k, v in sorted(r.endpoints.items()))
        echo(f"{r.file}: {r.rows_read} rows ({r.format}), {r.inserted} new, {r.unchanged} already stored"
                   + (f", {r.bad_count} bad skipped" if r.bad_count else "") + (f" [{eps}]" if eps else ""))
        for b in r.bad[:20]:
            echo(f"  skipped {b}", err=True)


def _lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
