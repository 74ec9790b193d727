"""`prewarm backtest TRACE`: replay a trace against a policy and report what users would pay."""
from __future__ import annotations

import json
import math
import sys

import click

from ..units import parse_duration, parse_timestamp
from .output import echo


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
    return Progress(label, sys.stderr)


class Progress:
    """`label: 42.0% (ETA 1m05s)`. The first report is 0%: a replay that starts with a
    warm-up before the evaluation window reports negative progress through it, which counts
    as the start. The ETA is the rate so far, once a few percent are done."""

    def __init__(self, label: str, out, clock=None) -> None:
        import time

        self.label, self.out = label, out
        self.clock = clock or time.monotonic
        self.first: tuple[float, float] | None = None  # (done, at)

    def __call__(self, done: float, total: float) -> None:
        now = self.clock()
        if self.first is None:
            self.first = (done, now)
        base, t0 = self.first
        span = total - base
        frac = 1.0 if span <= 0 else min(1.0, max(0.0, (done - base) / span))
        eta = ""
        if 0.02 <= frac < 1.0 and now > t0:
            left = (now - t0) * (1.0 - frac) / frac
            eta = f" (ETA {_short(left)})"
        self.out.write(f"\r{self.label}: {100.0 * frac:5.1f}%{eta}\x1b[K")
        self.out.flush()


def _short(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@click.command("backtest")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--from-store", is_flag=True,
              help="Replay --endpoint's history from the store (no TRACE), with its configured capacity: "
                   "cold start, service time, concurrency, price and target cold rate (flags given override).")
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
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write the timeline PNG (one endpoint, or one file per endpoint); with --frontier also "
                   "PATH-frontier.png, worker-hours against cold-start rate.")
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
@click.option("--static-guard", type=click.Choice(["auto", "lift", "always", "off"]), default="auto", show_default=True,
              help="Predictive: the static guard, judged weekly on the trailing week (auto: after the plan "
                   "alone did worse than the best static setting there, that setting; lift: the least "
                   "floor and keep-alive under the plan that held there).")
@click.option("--smoothing-choices", metavar="DURATIONS", default="1h,2h,3h", show_default=True,
              help="Predictive, with the static guard on: the smoothings each judgement replays the plan alone "
                   "at on the trailing week, the best planning until the next ([planner] smoothing_choices); "
                   "'none': the policy's own smoothing always.")
@click.option("--forecaster", "forecaster_name", metavar="NAME",
              help="Predictive: the forecaster to replay (default: the daemon's default [forecast] model, select).")
@click.pass_context
def backtest(ctx, trace, from_store, policy_spec, frontier, start, end, cold_start, cold_start_dist, service_time,
             worker_concurrency, platform_idle_timeout, target_cold_rate, endpoints, emit_schedule,
             as_json, plot, ingest_delay, price, seed, advise, persistent_price, provider_kind, static_guard,
             smoothing_choices, forecaster_name):
    """Replay TRACE (ts,endpoint,requests per minute, the Alibaba requests.csv, or an Azure LLM
    trace) against a policy, and report cold-start rate, worker-hours and cost. With
    --from-store, replay each --endpoint's stored history with its configured capacity."""
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
    if from_store:
        if trace is not None:
            raise click.UsageError("give TRACE or --from-store, not both")
        stored = _from_store(ctx, list(endpoints), seed)
        given = {p: ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE
                 for p in ("cold_start", "cold_start_dist", "service_time", "worker_concurrency", "price",
                           "target_cold_rate")}
        if len(stored) > 1 and not all(given.values()):
            raise click.UsageError("--from-store replays one --endpoint at a time with its own capacity")
        (one,) = stored.values() if len(stored) == 1 else (next(iter(stored.values())),)
        if not (given["cold_start"] or given["cold_start_dist"]):
            cold_start, cold_start_dist = (None, one.cold_start_dist) if one.cold_start_dist else \
                (one.cold_start_s, None)
        service_time = service_time if given["service_time"] else one.service_time_s
        worker_concurrency = worker_concurrency if given["worker_concurrency"] else one.concurrency
        price = price if given["price"] else one.price_per_worker_hour
        target_cold_rate = target_cold_rate if given["target_cold_rate"] else one.target_cold_rate
        traces = {n: s.trace for n, s in stored.items()}
        trace = "the store"
    elif trace is None:
        raise click.UsageError("give a TRACE file, or --from-store --endpoint NAME")
    else:
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
    from ..backtest.replay import default_forecaster
    from ..forecasters import registry

    provider = provider_capabilities(provider_kind) if provider_kind else FULL
    predictive = replace(PredictiveSettings(), guard=static_guard,
                         smoothing_choices_s=_smoothing_choices(smoothing_choices))
    try:
        forecaster = default_forecaster(predictive.season_s, forecaster_name)
    except registry.UnknownForecaster as exc:
        raise click.BadParameter(str(exc), param_hint="--forecaster") from None
    cfg = BacktestConfig(start_s=start, end_s=end,
                         worker=WorkerModel(worker_concurrency, platform_idle_timeout),
                         cold_start=cs, service_time_s=service_time, target_cold_rate=target_cold_rate,
                         ingest_delay_s=ingest_delay, price_per_worker_hour=price, seed=seed,
                         provider=provider, predictive=predictive, forecaster=forecaster)

    if advise:
        from ..backtest import advisor

        prices = advisor.Prices(on_demand_per_hour=price,
                                persistent_per_hour=price if persistent_price is None else persistent_price)
        advice = {name: advisor.advise(tr, cfg, prices, target_cold_rate) for name, tr in traces.items()}
        if as_json:
            echo(json.dumps({"window": {"from": report._iso(start), "to": report._iso(end)},
                                   "prices": {"on_demand_per_hour": prices.on_demand_per_hour,
                                              "persistent_per_hour": prices.persistent_per_hour},
                                   "advice": {n: a.as_dict() for n, a in advice.items()}}, indent=2))
        else:
            for name, a in advice.items():
                echo(advisor.render(name, a))
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
            if plot:
                path = _suffixed(plot if len(traces) == 1 else _suffixed(plot, name), "frontier")
                report.plot_frontier(path, name, points, front, pred, frontiers[name][2], target_cold_rate)
                echo(f"wrote {path}", err=True)
        elif policy_spec == "predictive":
            schedule_results.append(result)
        if show:
            sys.stderr.write("\r" + " " * 60 + "\r")
        if plot:
            path = plot if len(traces) == 1 else _suffixed(plot, name)
            report.plot(path, result, tr.arrivals, start, end)
            echo(f"wrote {path}", err=True)

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
               "forecaster": forecaster.name,
               "results": [r.as_dict() for r in results]}
        if frontier:
            out["frontier"] = {n: {"predictive": p.as_dict(), **report.frontier_json(f, c)}
                               for n, (f, p, c) in frontiers.items()}
        echo(json.dumps(out, indent=2))
        return
    executes = "" if not provider_kind else (
        f"; as {provider.kind} executes it: " + ("count-only (the platform's idle timeout)" if provider.count_only
                                                 else f"idle timeout at most {provider.idle_timeout_max_s:g}s"
                                                 if provider.idle_timeout_max_s else "counts and idle timeout"))
    echo(f"window {report._iso(start)} .. {report._iso(end)}; cold start {cs.describe()}; "
               f"concurrency {worker_concurrency}; platform idle timeout {platform_idle_timeout:g}s{executes}")
    echo(report.table(results))
    for name, (front, pred, comp) in frontiers.items():
        echo("")
        echo(report.frontier_table(name, front, pred, comp))


def _from_store(ctx, endpoints: list[str], seed: int) -> dict:
    from ..backtest.from_store import stored_endpoint
    from ..store import Store

    settings = ctx.obj.settings
    if not endpoints:
        raise click.UsageError("--from-store needs --endpoint NAME")
    store = Store(settings.store.url)
    try:
        return {name: stored_endpoint(settings, store, name, seed=seed) for name in endpoints}
    finally:
        store.close()


def _suffixed(path: str, name: str) -> str:
    stem, dot, ext = path.rpartition(".")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    return f"{stem}-{safe}.{ext}" if dot else f"{path}-{safe}"


def _smoothing_choices(text: str) -> tuple[float, ...]:
    """--smoothing-choices "1h,2h,3h" (durations, none twice) or "none" -> seconds, sorted."""
    from ..units import parse_duration_list

    try:
        return parse_duration_list(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: {exc} (or 'none')", param_hint="--smoothing-choices") from None
