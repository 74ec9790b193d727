"""`prewarm backtest TRACE`: replay a trace against a policy and report what users would pay."""
from __future__ import annotations

import json
import math
import sys

import click

from ..units import parse_duration, parse_timestamp


def _duration(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _time(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_timestamp(value).timestamp()
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _progress(label: str):
    """A one-line progress on a terminal; nothing when stderr is piped."""
    if not sys.stderr.isatty():
        return None

    def show(done: float, total: float) -> None:
        pct = 100.0 * done / total if total else 100.0
        sys.stderr.write(f"\r{label}: {pct:5.1f}%")
        sys.stderr.flush()
    return show


@click.command("backtest")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_spec", default="predictive", show_default=True,
              help="predictive, keepalive:SECONDS, static:F:K, reactive, hybrid-histogram, always-on, clairvoyant.")
@click.option("--frontier", is_flag=True, help="Sweep static (floor, keep-alive) settings; compare the predictive policy.")
@click.option("--from", "start", callback=_time, help="Evaluation start, ISO-8601 (default: 7 days before --to).")
@click.option("--to", "end", callback=_time, help="Evaluation end, ISO-8601 (default: end of the trace).")
@click.option("--cold-start", callback=_duration, help="Fixed cold start, e.g. 30s (default 30s).")
@click.option("--cold-start-dist", type=click.Path(exists=True, dir_okay=False),
              help="CSV of measured cold starts: column `seconds`, or `value` in ms.")
@click.option("--service-time", callback=_duration, help="Service time per request (default: the trace's own).")
@click.option("--worker-concurrency", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--platform-idle-timeout", callback=_duration, default="60s", show_default=True)
@click.option("--target-cold-rate", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.02,
              show_default=True)
@click.option("--endpoint", "endpoints", multiple=True, help="Endpoint to replay (repeatable; default all).")
@click.option("--emit-schedule", type=click.Path(dir_okay=False), help="Write the predictive commands as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG (one endpoint, or one file per endpoint).")
@click.option("--ingest-delay", callback=_duration, default="60s", show_default=True)
@click.option("--price", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Price per worker-hour.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sub-minute spreading and cold-start draws.")
@click.option("--advise", is_flag=True,
              help="Break-even advice: is persistent, hybrid or on-demand cheapest at --target-cold-rate?")
@click.option("--persistent-price", type=click.FloatRange(min=0),
              help="Price per always-on worker-hour for --advise (default: --price).")
@click.option("--provider-kind", metavar="KIND",
              help="Replay what this provider can carry out (its capabilities): e.g. aws-lambda is "
                   "count-only (the platform's own idle timeout), modal caps it at 1 h.")
@click.option("--static-guard", type=click.Choice(["auto", "always", "off"]), default="auto", show_default=True,
              help="Predictive: never below the best static setting of the trailing week (auto: after "
                   "the plan alone did worse than it there).")
def backtest(trace, policy_spec, frontier, start, end, cold_start, cold_start_dist, service_time,
             worker_concurrency, platform_idle_timeout, target_cold_rate, endpoints, emit_schedule,
             as_json, plot, ingest_delay, price, seed, advise, persistent_price, provider_kind, static_guard):
    """Replay TRACE (ts,endpoint,requests per minute, the Alibaba requests.csv, or an Azure LLM
    trace) against a policy, and report cold-start rate, worker-hours and cost."""
    from ..backtest import frontier as fr
    from ..backtest import report
    from ..backtest.runner import BacktestConfig, parse_policy, run
    from ..backtest.simulator import ColdStart, WorkerModel
    from ..backtest.traces import load_cold_starts, load_trace
    from ..errors import InputError

    if cold_start is not None and cold_start_dist is not None:
        raise click.UsageError("give --cold-start or --cold-start-dist, not both")
    try:
        parse_policy(policy_spec)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None
    traces = load_trace(trace, list(endpoints) or None, seed=seed)
    traces = {k: v for k, v in traces.items() if len(v)}
    if not traces:
        raise InputError(f"{trace}: no requests")
    last = max(float(t.arrivals[-1]) for t in traces.values())
    first = min(float(t.arrivals[0]) for t in traces.values())
    end = end if end is not None else math.floor(last / 60.0) * 60.0 + 60.0
    start = start if start is not None else max(first, end - 7 * 86400.0)
    if start >= end:
        raise click.BadParameter("must be before --to", param_hint="--from")
    cs = ColdStart(samples_s=load_cold_starts(cold_start_dist), seed=seed) if cold_start_dist \
        else ColdStart(fixed_s=30.0 if cold_start is None else cold_start)
    from dataclasses import replace

    from ..backtest.executable import FULL, provider_capabilities
    from ..backtest.predictive import PredictiveSettings

    provider = provider_capabilities(provider_kind) if provider_kind else FULL
    cfg = BacktestConfig(start_s=start, end_s=end,
                         worker=WorkerModel(worker_concurrency, platform_idle_timeout),
                         cold_start=cs, service_time_s=service_time, target_cold_rate=target_cold_rate,
                         ingest_delay_s=ingest_delay, price_per_worker_hour=price, seed=seed,
                         provider=provider, predictive=replace(PredictiveSettings(), guard=static_guard))

    if advise:
        from ..backtest import advisor

        prices = advisor.Prices(on_demand_per_hour=price,
                                persistent_per_hour=price if persistent_price is None else persistent_price)
        advice = {name: advisor.advise(tr, cfg, prices, target_cold_rate) for name, tr in traces.items()}
        if as_json:
            click.echo(json.dumps({"window": {"from": report._iso(start), "to": report._iso(end)},
                                   "prices": {"on_demand_per_hour": prices.on_demand_per_hour,
                                              "persistent_per_hour": prices.persistent_per_hour},
                                   "advice": {n: a.as_dict() for n, a in advice.items()}}, indent=2))
        else:
            for name, a in advice.items():
                click.echo(advisor.render(name, a))
        return

    results, frontiers, schedule_results = [], {}, []
    for name, tr in traces.items():
        show = _progress(f"{name} {policy_spec}")
        prog = (lambda t, s=show: s(t - start, end - start)) if show else None
        result = run(tr, policy_spec, cfg, progress=prog)
        results.append(result)
        if frontier:
            show_f = _progress(f"{name} static sweep")
            points = fr.sweep(tr, cfg, progress=show_f)
            front = fr.envelope(points)
            pred = result if policy_spec == "predictive" else run(tr, "predictive", cfg)
            frontiers[name] = (front, pred, fr.compare(front, pred))
            schedule_results.append(pred)
        elif policy_spec == "predictive":
            schedule_results.append(result)
        if show:
            sys.stderr.write("\r" + " " * 60 + "\r")
        if plot:
            path = plot if len(traces) == 1 else _suffixed(plot, name)
            report.plot(path, result, tr.arrivals, start, end)

    if emit_schedule:
        if not schedule_results:
            schedule_results = [run(tr, "predictive", cfg) for tr in traces.values()]
        report.write_schedule(emit_schedule, schedule_results)

    if as_json:
        out = {"window": {"from": report._iso(start), "to": report._iso(end)},
               "worker_model": {"concurrency": worker_concurrency, "cold_start": cs.describe(),
                                "platform_idle_timeout_s": platform_idle_timeout,
                                "service_time_s": service_time, "cold_threshold_s": 2.0},
               "provider": {"kind": provider.kind, "idle_timeout": provider.idle_timeout,
                            "idle_timeout_max_s": provider.idle_timeout_max_s},
               "results": [r.as_dict() for r in results]}
        if frontier:
            out["frontier"] = {n: {"predictive": p.as_dict(), **report.frontier_json(f, c)}
                               for n, (f, p, c) in frontiers.items()}
        click.echo(json.dumps(out, indent=2))
        return
    executes = "" if not provider_kind else (
        f"; as {provider.kind} executes it: " + ("count-only (the platform's idle timeout)" if provider.count_only
                                                 else f"idle timeout at most {provider.idle_timeout_max_s:g}s"
                                                 if provider.idle_timeout_max_s else "counts and idle timeout"))
    click.echo(f"window {report._iso(start)} .. {report._iso(end)}; cold start {cs.describe()}; "
               f"concurrency {worker_concurrency}; platform idle timeout {platform_idle_timeout:g}s{executes}")
    click.echo(report.table(results))
    for name, (front, pred, comp) in frontiers.items():
        click.echo("")
        click.echo(report.frontier_table(name, front, pred, comp))


def _suffixed(path: str, name: str) -> str:
    stem, dot, ext = path.rpartition(".")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return f"{stem}-{safe}.{ext}" if dot else f"{path}-{safe}"
