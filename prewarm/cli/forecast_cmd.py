"""`prewarm forecast`: show, change nothing."""
from __future__ import annotations

import click

from ..units import format_duration
from .common import DURATION, TIME, no_history_message, runtime, utcnow, with_endpoints
from .output import echo, emit_json, json_option, table


@click.command()
@click.argument("endpoint")
@click.option("--horizon", type=DURATION, help="How far ahead (default [forecast] horizon, 6h).")
@click.option("--at", "at", type=TIME, help="Forecast as if it were this time, from history before it only.")
@click.option("--every", type=DURATION,
              help="One row per this span (values averaged over it). Default: the model's step, "
                   "coarsened so the table fits on a screen (about 24 rows).")
@click.option("--accuracy", is_flag=True,
              help="Show how past forecasts scored against what happened (MASE, pinball, coverage).")
@json_option
@click.pass_context
def forecast(ctx, endpoint, horizon, at, every, accuracy, as_json) -> None:
    """Show the demand forecast for ENDPOINT, in requests per minute, with its bands.

    The table starts with a one-line summary (mean, peak and when, expected requests) and
    shows one row per --every; --json gives every step of the model. An endpoint with
    history in the store but not in the config is forecast with the defaults (said on
    stderr). With --accuracy, show instead the scores of past forecasts, stored by the
    daemon (or `prewarm once`) once what they predicted has happened.
    """
    if accuracy:
        return _accuracy(ctx, endpoint, as_json)
    from datetime import timedelta

    from ..errors import PrewarmError
    from ..history import read_history
    from ..refresh import forecast_rows
    from ..snapshots import demand_records

    rt = runtime(ctx)
    try:
        with_endpoints(ctx, rt, [endpoint])
        ep = rt.settings.endpoint(endpoint)
        now = at or utcnow()
        f = rt.settings.forecast_for(ep)
        horizon = horizon or f.horizon_s
        cutoff = now - timedelta(seconds=rt.settings.daemon.ingest_delay_s)
        rows = read_history(rt, ep, now - timedelta(seconds=f.history_s), cutoff)
        if not rows:
            # Exit 1, as `once` and `plan` for an endpoint with no history: nothing to forecast from.
            raise PrewarmError(no_history_message(rt, endpoint, now, f.history_s))
        fc = forecast_rows(rt, {ep.name: rows}, f, cutoff, horizon + (now - cutoff).total_seconds(), save=False)
        demand = fc[ep.name].demand
    finally:
        rt.close()
    records = [r for r in demand_records(demand) if now - timedelta(seconds=demand.step_s) < r["ds"] < now + timedelta(seconds=horizon)]
    if as_json:
        emit_json(records)
        return
    cols = ["mean", *[b for b in demand.bands]]
    span = every or _screenful(demand.step_s, horizon)
    echo(summary_line(endpoint, demand.model, fc[ep.name].step_s, records, horizon))
    echo(f"requests per minute, one row per {format_duration(span)}"
               + (" (values averaged over the row)" if span > demand.step_s else ""))
    table([[r["ds"], *[r[c] for c in cols]] for r in coarsen(records, cols, span)],
          ["from (UTC)", *cols])


def _screenful(step_s: float, horizon_s: float, rows: int = 24) -> float:
    """The model's step, or the shortest of 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d
    that shows the horizon in about `rows` rows."""
    if horizon_s / step_s <= rows:
        return step_s
    for minutes in (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440):
        if minutes * 60 >= step_s and horizon_s / (minutes * 60) <= rows:
            return minutes * 60.0
    return 1440 * 60.0


def coarsen(records: list[dict], cols: list[str], span_s: float) -> list[dict]:
    """Records grouped into rows of `span_s` on the clock's grid (a 15m row starts at :00,
    :15, ...), each column averaged (None when a value is missing in the row)."""
    from datetime import datetime, timezone

    out: list[dict] = []
    for r in records:
        k = int(r["ds"].timestamp() // span_s)
        if not out or out[-1]["_k"] != k:
            start = datetime.fromtimestamp(k * span_s, tz=timezone.utc)
            out.append({"_k": k, "ds": max(start, r["ds"]), "_n": 0, **{c: 0.0 for c in cols}})
        row = out[-1]
        row["_n"] += 1
        for c in cols:
            row[c] = None if row[c] is None or r.get(c) is None else row[c] + r[c]
    return [{"ds": row["ds"], **{c: None if row[c] is None else row[c] / row["_n"] for c in cols}} for row in out]


def summary_line(endpoint: str, model: str, step_s: float, records: list[dict], horizon_s: float) -> str:
    from ..units import format_duration as fd

    if not records:
        return f"{endpoint}: {model}, nothing forecast in the next {fd(horizon_s)}"
    peak = max(records, key=lambda r: r["mean"])
    step_min = (records[1]["ds"] - records[0]["ds"]).total_seconds() / 60 if len(records) > 1 else step_s / 60
    total = sum(r["mean"] for r in records) * step_min
    hi = max((k for k in peak if k.startswith("hi-")), key=lambda k: float(k[3:]), default=None)
    band = f" (upper {hi[3:]}% band {peak[hi]:.1f})" if hi and peak.get(hi) is not None else ""
    model = model.split("(")[0]
    return (f"{endpoint}: {model} (step {fd(step_s)}), next {fd(horizon_s)}: mean "
            f"{sum(r['mean'] for r in records) / len(records):.1f} req/min, peak {peak['mean']:.1f} at "
            f"{peak['ds']:%Y-%m-%d %H:%M} UTC{band}, about {total:,.0f} requests")


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
        echo(f"{endpoint}: no forecast scored yet (a stored forecast is scored once its horizon has passed)")
        return
    table([[r["issued_at"], r["model"], r["steps"], r["mase"], r["pinball"], r["coverage_80"], r["coverage_95"]]
           for r in rows], ["issued", "model", "steps", "MASE", "pinball", "cover 80", "cover 95"])
