"""`prewarm forecast`: show, change nothing."""
from __future__ import annotations

import click

from .common import DURATION, TIME, runtime, utcnow
from .output import emit_json, json_option, table


@click.command()
@click.argument("endpoint")
@click.option("--horizon", type=DURATION, default="24h", show_default=True, help="How far ahead.")
@click.option("--at", "at", type=TIME, help="Forecast as if it were this time, from history before it only.")
@json_option
@click.pass_context
def forecast(ctx, endpoint, horizon, at, as_json) -> None:
    """Show the demand forecast for ENDPOINT, in requests per minute per step."""
    from ..demand import demand_records, forecast_demand
    from datetime import timedelta
    from ..cycle import read_history

    rt = runtime(ctx)
    try:
        ep = rt.settings.endpoint(endpoint)
        now = at or utcnow()
        f = rt.settings.forecast_for(ep)
        cutoff = now - timedelta(seconds=rt.settings.daemon.ingest_delay_s)
        rows = read_history(rt, ep, now - timedelta(seconds=f.history_s), cutoff)
        if not rows:
            raise click.ClickException(f"no history for {endpoint!r} before {now:%Y-%m-%dT%H:%M}Z; "
                                       f"ingest some with `prewarm ingest`")
        demand = forecast_demand({ep.name: rows}, now=cutoff, model=f.model, step_s=f.step_s,
                                 horizon_s=horizon, history_s=f.history_s, season_s=f.season_s,
                                 levels=f.levels)[ep.name]
    finally:
        rt.close()
    records = [r for r in demand_records(demand) if r["ds"] >= now - timedelta(seconds=f.step_s)]
    if as_json:
        emit_json(records)
        return
    click.echo(f"{endpoint}: {demand.model}, step {f.step_s}s, requests per minute")
    cols = ["mean", *[b for b in demand.bands]]
    table([[r["ds"], *[r[c] for c in cols]] for r in records], ["ds", *cols])
