"""`prewarm plan`: show, change nothing."""
from __future__ import annotations

import click

from .common import DURATION, TIME, runtime, utcnow, with_endpoints
from .output import echo, emit_json, json_option, model_name, table, when


@click.command()
@click.argument("endpoint", required=False)
@click.option("--horizon", type=DURATION, default="6h", show_default=True, help="How far ahead.")
@click.option("--at", "at", type=TIME, help="Plan as if it were this time.")
@json_option
@click.pass_context
def plan(ctx, endpoint, horizon, at, as_json) -> None:
    """Show the capacity plan for ENDPOINT (default: every configured endpoint). Nothing is
    stored or applied. An endpoint with history in the store but not in the config is planned
    with the defaults (said on stderr). Times are UTC."""
    from ..cycle import plan_cycle

    rt = runtime(ctx)
    try:
        now = at or utcnow()
        if endpoint:
            with_endpoints(ctx, rt, [endpoint])
        outcomes = plan_cycle(rt, now, [endpoint] if endpoint else None, save=False, horizon_s=horizon)
    finally:
        rt.close()
    doc = []
    for name, out in outcomes.items():
        cmds = [] if out.plan is None else [
            {"at": c.at, "warm_workers": c.warm_workers, "idle_timeout_s": c.idle_timeout_s, "reason": dict(c.reason)}
            for c in out.plan.commands]
        doc.append({"endpoint": name, "model": out.model, "error": out.error, "commands": cmds})
    if as_json:
        emit_json(doc)
    else:
        _print_plans(doc)
    if any(item["error"] for item in doc):
        ctx.exit(1)


def _print_plans(doc: list[dict]) -> None:
    for item in doc:
        if item["error"]:
            echo(f"{item['endpoint']}: not planned ({item['error']})")
            continue
        echo(f"{item['endpoint']}: {model_name(item['model'])}")
        table([[c["at"], c["warm_workers"], c["reason"].get("why"), c["reason"].get("forecast_rpm"),
                when(c["reason"].get("need_at"))[:-4] if c["reason"].get("need_at") else None]
               for c in item["commands"]],
              ["from (UTC)", "warm", "why", "forecast/min", "needed by (UTC)"])
