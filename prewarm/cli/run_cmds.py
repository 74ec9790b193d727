"""`prewarm once` (cron mode) and `prewarm run` (the daemon)."""
from __future__ import annotations

import click

from .common import ADDRESS, TIME, runtime, utcnow
from .output import echo, emit_json, json_option, model_name, table


@click.command()
@click.option("--endpoint", "endpoints", multiple=True, help="Only these endpoints (repeatable).")
@click.option("--at", "at", type=TIME, hidden=True, help="Pretend it is this time (tests, demos).")
@json_option
@click.pass_context
def once(ctx, endpoints, at, as_json) -> None:
    """Run one cycle: read history, forecast, plan, apply what is due; then exit (cron mode).

    Exit code 1 if any endpoint could not be planned or applied.
    """
    from ..cycle import run_once

    rt = runtime(ctx)
    try:
        outcomes, actions = run_once(rt, at or utcnow(), endpoints or None)
    finally:
        rt.close()
    failed = [o for o in outcomes.values() if o.error] + [a for a in actions if a.result == "error"]
    if as_json:
        emit_json({"planned": {k: {"model": v.model, "error": v.error,
                                   "commands": len(v.plan.commands) if v.plan else 0} for k, v in outcomes.items()},
                   "actions": [a.__dict__ for a in actions]})
    else:
        for name, out in outcomes.items():
            echo(f"{name}: " + (f"planned with {model_name(out.model)}" if not out.error else f"NOT planned: {out.error}"))
        if actions:
            table([[a.endpoint, a.previous, a.target, a.result, a.reason.get("why"), a.error] for a in actions],
                  ["endpoint", "was", "target", "result", "why", "error"])
    if failed:
        ctx.exit(1)


@click.command()
@click.option("--metrics-addr", type=ADDRESS, help="HOST:PORT for /metrics and /healthz (default [metrics] address).")
@click.pass_context
def run(ctx, metrics_addr) -> None:
    """Run the daemon, with Prometheus metrics and /healthz.

    SIGTERM stops gracefully, SIGHUP reloads the config (a bad one is refused).
    """
    from prometheus_client import CollectorRegistry

    from .. import config as config_mod
    from ..errors import PrewarmError
    from ..daemon import Daemon
    from ..leader import for_url
    from ..metrics import Metrics, MetricsServer

    settings = ctx.obj.settings
    _check_providers(ctx, settings)
    metrics = Metrics(CollectorRegistry())
    obj = ctx.obj
    daemon = Daemon(settings, metrics=metrics, lock=for_url(settings.store.url, settings.daemon.leader_takeover_s),
                    reload=lambda: config_mod.load(obj.config_path, db_url=obj.db_url))
    server = None
    if settings.metrics.enabled or metrics_addr:
        address = metrics_addr or settings.metrics.address
        try:
            server = MetricsServer(metrics, address, daemon.healthy).start()
        except OSError as exc:
            raise PrewarmError(f"cannot listen on {address}: {exc.strerror}") from None
        echo(f"metrics on http://{server.address}/metrics", err=True)
    try:
        ctx.exit(daemon.run())
    finally:
        if server:
            server.stop()


def _check_providers(ctx, settings) -> None:
    """Setups a provider can tell will not work (providers/checks.py) stop the start, exit 2."""
    from ..providers.base import EndpointRef
    from ..providers.checks import check_endpoints

    report = check_endpoints((ep.provider, EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers))
                             for ep in settings.endpoints)
    for line in report.warnings:
        echo(f"warning: {line}", err=True)
    for line in report.errors:
        echo(f"error: {line}", err=True)
    if not report.ok:
        ctx.exit(2)
