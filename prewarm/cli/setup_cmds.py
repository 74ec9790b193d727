"""`prewarm init` and `prewarm db ...`."""
from __future__ import annotations

from pathlib import Path

import click

from .. import redact
from .output import echo, emit_json, json_option

STARTER = '''# prewarm configuration. Every key is documented in README.md ("Configuration").
# Durations take s, m, h, d suffixes. ${VAR} in a string is read from the environment.

[store]
url = "sqlite:///prewarm.db"          # or postgresql://user@host/db, mysql+pymysql://user@host/db

[metrics]
address = "127.0.0.1:9464"            # /metrics and /healthz of `prewarm run`

[daemon]
cycle_interval = "60s"                # forecast + plan every minute
timezone = "UTC"                      # zone of naive time stamps in ingested files

[forecast]
model = "select"                      # per endpoint by rolling-origin CV; or seasonal-mean, seasonal-naive, mstl, ..., auto
history = "14d"
horizon = "6h"

[planner]                             # the defaults are the policy the backtester measures
target_cold_rate = 0.02               # a ceiling; the tuner works toward it from observed cold starts
speculative = true                    # hold one warm worker through lulls when it pays for itself
scale_in_delay = "30m"                # hysteresis before lowering a target

[[endpoints]]
name = "chat"

[endpoints.capacity]
concurrency = 4                       # requests one worker serves at once
service_time = "2s"
cold_start = "30s"                    # or cold_start_dist = "cold_starts.csv" (+ cold_start_percentile = 90)
min_workers = 0
max_workers = 8
price_per_worker_hour = 2.5

[endpoints.provider]
kind = "dry-run"                      # `prewarm providers list` shows the others and their keys
'''


@click.command()
@click.option("--path", "path", default="prewarm.toml", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the config.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--sample-traffic", "sample", type=click.Path(dir_okay=False), is_flag=False, flag_value="traffic.csv",
              default=None, help="Also write a week of generated per-minute traffic for the starter endpoint "
                                 "`chat`, ending now, to this file (default traffic.csv) for `prewarm ingest`.")
@click.pass_context
def init(ctx: click.Context, path: str, force: bool, sample: str | None) -> None:
    """Write a commented starter config and create the embedded database; with
    --sample-traffic, also a week of traffic to ingest (the quick start)."""
    target = Path(path)
    if target.exists() and not force:
        raise click.UsageError(f"{path} exists; use --force to overwrite")
    if sample and Path(sample).exists() and not force:
        raise click.UsageError(f"{sample} exists; use --force to overwrite")
    # The config may come to hold a store URL with a password or a provider token: the
    # owner's alone, whatever the umask (an existing file, with --force, keeps its own mode).
    import os
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(STARTER)
    ctx.obj.config_path = str(target)
    settings = ctx.obj.settings
    from ..store import Store
    Store(settings.store.url).close()
    echo(f"wrote {path}; database ready at {redact.url(settings.store.url)}")
    if sample:
        from datetime import timedelta

        from ..demo import generate
        from ..units import floor_time
        from .common import utcnow

        end = floor_time(utcnow(), 60)
        rows = generate(Path(sample), end - timedelta(days=7), 7, endpoint="chat")
        echo(f"wrote {sample}: {rows} minutes of generated traffic for 'chat', ending {end:%Y-%m-%d %H:%M} UTC")


@click.group()
def db() -> None:
    """Database schema: upgrade, current revision."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Create or upgrade the schema of the configured store."""
    from ..store import make_engine, migrate
    from ..errors import StoreError
    import sqlalchemy as sa

    url = ctx.obj.settings.store.url
    engine = make_engine(url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        after = migrate.current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot reach the database: {exc.orig}") from None
    finally:
        engine.dispose()
    echo(f"schema {before or 'empty'} -> {after}")


@db.command()
@json_option
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Show the schema revision of the store and the one this prewarm needs."""
    from ..store import make_engine, migrate
    import sqlalchemy as sa
    from ..errors import StoreError

    engine = make_engine(ctx.obj.settings.store.url)
    try:
        doc = {"current": migrate.current_revision(engine), "head": migrate.head_revision()}
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot reach the database: {exc.orig}") from None
    finally:
        engine.dispose()
    if as_json:
        emit_json(doc)
    else:
        echo(f"current {doc['current'] or 'empty'}, needed {doc['head']}")
