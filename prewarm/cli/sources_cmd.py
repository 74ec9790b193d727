"""`prewarm sources list` and `prewarm sync`."""
from __future__ import annotations

import click

from .common import TIME, utcnow
from .output import echo, emit_json, json_option, table


@click.group()
def sources() -> None:
    """Installed metrics sources."""


@sources.command("list")
@json_option
def list_sources(as_json: bool) -> None:
    """List installed metrics sources and their config keys."""
    from ..sources import registry
    from .plugin_list import list_plugins

    list_plugins(registry.available(), as_json, lambda name, cls: {"retention_s": cls.retention_s})


@click.command()
@click.argument("endpoint", required=False)
@click.option("--since", type=TIME, help="Read from this time instead of the watermark (a re-read or a "
                                          "longer backfill; within what the source keeps).")
@json_option
@click.pass_context
def sync(ctx, endpoint, since, as_json) -> None:
    """Read new minutes from each endpoint's metrics source ([endpoints.source]) into the store,
    once (for cron; the daemon does this every cycle). First sight backfills the [forecast]
    history; late data is revised. Exit 1 if a source failed (what is stored is kept), 2 if a
    source refused its query or credentials."""
    from ..store import Store
    from ..sync import Syncer

    settings = ctx.obj.settings
    store = Store(settings.store.url)
    syncer = Syncer(settings, store)
    now = utcnow()
    try:
        results = syncer.run(now, [endpoint] if endpoint else None, since=since)
    finally:
        syncer.close()
        store.close()
    doc = [{"endpoint": r.endpoint, "source": r.kind, "start": r.start, "end": r.end, "inserted": r.inserted,
            "updated": r.updated, "missing": r.missing, "watermark": r.watermark, "error": r.error,
            "busy": r.busy}
           for r in results.values()]
    if as_json:
        emit_json({"at": now, "endpoints": doc})
    elif doc:
        table([[d["endpoint"], d["source"], f"{d['start']:%m-%d %H:%M} - {d['end']:%m-%d %H:%M}", d["inserted"],
                d["updated"], d["missing"],
                d["error"] or ("held by an ingest: read again next sync" if d["busy"] else None)] for d in doc],
              ["endpoint", "source", "minutes", "new", "revised", "missing", "error"])
    else:
        echo("no endpoint has an [endpoints.source] table: nothing to sync")
    failed = [r for r in results.values() if r.error is not None]
    for r in failed:
        echo(f"error: endpoint {r.endpoint}: {r.kind}: {r.error}", err=True)
    if any(not r.retryable for r in failed):
        ctx.exit(2)
    if failed:
        ctx.exit(1)
