"""`prewarm forecast`: show, change nothing."""
from __future__ import annotations

import click

from .common import DURATION, TIME, runtime, utcnow
from .output import emit_json, json_option, table


@click.command()
@click.argument("endpoint")
@click.option("--horizon", type=DURATION, default="24h", show_default=True, help="How far ahead.")
@click.option("--at", "at", type=TIME, help="Forecast as if it were this time, from history before it only.")
@click.option("--accuracy", is_flag=True,
              help="Show how past forecasts scored against what happened (MASE, pinball, coverage).")
@json_option
@click.pass_context
def forecast(ctx, endpoint, horizon, at, accuracy, as_json) -> None:
    """Show the demand forecast for ENDPOINT, in requests per minute per step.

    With --accuracy, show instead the scores of past forecasts, stored by the daemon (or
    `prewarm once`) once what they predicted has happened.
    """
    if accuracy:
        return _accuracy(ctx, endpoint, as_json)
    from datetime import timedelta

    from ..history import read_history
    from ..refresh import forecast_rows
    from ..snapshots import demand_records

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
        fc = forecast_rows(rt, {ep.name: rows}, f, cutoff, horizon + (now - cutoff).total_seconds(), save=False)
        demand = fc[ep.name].demand
    finally:
        rt.close()
    records = [r for r in demand_records(demand) if now - timedelta(seconds=demand.step_s) < r["ds"] < now + timedelta(seconds=horizon)]
    if as_json:
        emit_json(records)
        return
    click.echo(f"{endpoint}: {demand.model}, model step {fc[ep.name].step_s}s, requests per minute")
    cols = ["mean", *[b for b in demand.bands]]
    table([[r["ds"], *[r[c] for c in cols]] for r in records], ["ds", *cols])


def _accuracy(ctx, endpoint: str, as_json: bool) -> None:
    from ..store import Store

    settings = ctx.obj.settings
    settings.endpoint(endpoint)
    store = Store(settings.store.url)
    try:
        rows = store.accuracy(endpoint)
    finally:
        store.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"{endpoint}: no forecast scored yet (a stored forecast is scored once its horizon has passed)")
        return
    table([[r["issued_at"], r["model"], r["steps"], r["mase"], r["pinball"], r["coverage_80"], r["coverage_95"]]
           for r in rows], ["issued", "model", "steps", "MASE", "pinball", "cover 80", "cover 95"])
