"""`prewarm status`, `explain`, `hold` and `release`: what the daemon does and why, and a
manual floor. All read the stored plan and forecast (the database is the source of truth);
hold and release are recorded in the audit log like every action."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import click

from .common import DURATION, TIME, runtime, utcnow
from .output import echo, emit_json, json_option, table, when
from ..units import format_duration


def _read_provider(rt, ep) -> dict:
    try:
        s = rt.provider(ep).read()
        return {"desired": s.desired, "ready": s.ready, "error": None}
    except Exception as exc:  # noqa: BLE001 - status shows the error instead of failing
        return {"desired": None, "ready": None, "error": str(exc)}


def _target_at(rows: list[dict], hold, at: datetime, cap: int | None = None) -> tuple[int | None, dict | None]:
    """The target in force at `at`: the plan's due command, raised to an active hold, and a
    hold capped at `cap` (max_workers) as the provider is only ever asked for that much."""
    from ..apply import due_command
    cmd = due_command(rows, at)
    target = cmd["warm_workers"] if cmd else None
    if hold is not None and at < hold[1] and (target is None or hold[0] > target):
        held = hold[0] if cap is None else min(hold[0], cap)
        return (held if target is None else max(held, target)), cmd
    return target, cmd


def _why(hold, target: int | None, cmd: dict | None) -> str | None:
    """'hold' when the hold sets the target, else the plan's reason."""
    if hold and target is not None and (not cmd or cmd["warm_workers"] < target):
        return "hold"
    return cmd["reason"].get("why") if cmd else None


def _hold_text(hold, cap: int | None) -> str | None:
    if not hold:
        return None
    capped = f" (capped at max_workers {cap})" if cap is not None and hold[0] > cap else ""
    return f"{hold[0]} until {when(hold[1])}{capped}"


def _next_change(rows: list[dict], at: datetime, current: int | None) -> dict | None:
    for row in rows:
        if row["at"] > at and row["warm_workers"] != current:
            return {"at": row["at"], "warm_workers": row["warm_workers"], "why": row["reason"].get("why")}
    return None


@click.command()
@json_option
@click.pass_context
def status(ctx, as_json) -> None:
    """Per endpoint: the target now, the next planned change, and the provider's state; the
    static guard's last judgement (what it holds the plan at or above) and a failed last
    attempt; and audit records still waiting in the audit spool for the database, if any."""
    from ..apply import state

    rt = runtime(ctx)
    now = utcnow()
    doc = []
    try:
        # --- sources hook (prewarm/sync.py): how far behind each source-fed history is
        from ..sync import source_status
        synced = source_status(rt.settings, rt.store, now)
        # --- end of sources hook
        spool = state(rt).spool
        waiting = {"records": spool.count(), "spool": str(spool.path)} if spool else None
        eps = rt.endpoints()
        guards = rt.store.static_guards([ep.name for ep in eps])
        for ep in eps:
            rows = rt.store.current_plan(ep.name)
            hold = rt.store.active_hold(ep.name, now)
            target, cmd = _target_at(rows, hold, now, ep.capacity.max_workers)
            doc.append({
                "endpoint": ep.name, "provider": ep.provider["kind"], "target": target,
                "why": _why(hold, target, cmd),
                "plan_issued_at": rows[0]["issued_at"] if rows else None,
                "next_change": _next_change(rows, now, target),
                "hold": {"workers": hold[0], "until": hold[1], "capped_at": ep.capacity.max_workers
                         if hold[0] > ep.capacity.max_workers else None} if hold else None,
                "provider_state": _read_provider(rt, ep),
                "source": synced.get(ep.name),
                "static_guard": _guard_status(rt.settings.planner_for(ep).static_guard, guards.get(ep.name)),
            })
    finally:
        rt.close()
    if as_json:
        emit_json({"at": now, "endpoints": doc, "audit_waiting": waiting})
        return
    table([[d["endpoint"], d["provider"], d["target"], d["why"],
            d["next_change"]["at"] if d["next_change"] else None,
            d["next_change"]["warm_workers"] if d["next_change"] else None,
            d["provider_state"]["desired"], d["provider_state"]["ready"],
            _hold_text((d["hold"]["workers"], d["hold"]["until"]), d["hold"]["capped_at"]) if d["hold"] else None,
            d["provider_state"]["error"]] for d in doc],
          ["endpoint", "provider", "target", "why", "next change (UTC)", "to", "desired", "ready", "hold", "error"])
    for d in doc:  # sources hook: a source-fed endpoint's history, one line each
        if d["source"]:
            echo(f"{d['endpoint']}: {d['source']['summary']}")
    for d in doc:  # the static guard, one line each (why: prewarm explain)
        if d["static_guard"]:
            echo(f"{d['endpoint']}: {d['static_guard']['summary']}")
    if waiting:
        echo(f"{waiting['records']} audit records wait in {waiting['spool']} for the database "
                   "(the next apply writes them)")


def _guard_status(mode: str, row: dict | None) -> dict | None:
    """The static guard of an endpoint now (None: off): the last judgement, what it holds the
    plan at or above (setting None: the plan alone), and the last attempt if it failed, with a
    line of text."""
    if mode == "off":
        return None
    from ..static_guard import failed_attempt, holds, stored_static

    row = row or {}
    judged_at = row.get("judged_at")
    failed_at, error = failed_attempt(row) or (None, None)
    if judged_at is None:
        text = f"static guard ({mode}): not judged yet, the plan runs alone"
    else:
        text = f"static guard ({mode}), judged at {when(judged_at)}: {holds(stored_static(row))}"
    if failed_at is not None:
        text += f"; the last attempt, at {when(failed_at)}, failed: {error} (the judgement before it stays)"
    return {"mode": mode, "judged_at": judged_at, "setting": row.get("setting") if judged_at else None,
            "failed_at": failed_at, "error": error, "summary": text}


def _forecast_at(rows: list[dict], moment: datetime) -> dict | None:
    for row in rows:
        if row["ds"] <= moment < row["ds"] + timedelta(seconds=row["step_s"]):
            return row
    return None


def explanation(store, name: str, at: datetime, cap: int | None = None) -> dict:
    """Why the target at `at` is what it is, from the plan and forecast stored then; a hold
    above `cap` (max_workers) counts as the cap."""
    from ..units import parse_timestamp

    rows = store.plan_as_of(name, at)
    hold = store.active_hold(name, at)
    target, cmd = _target_at(rows, hold, at, cap)
    reason = dict(cmd["reason"]) if cmd else {}
    need_at = parse_timestamp(reason["need_at"]) if reason.get("need_at") else at
    forecast = store.latest_forecast(name, at)
    step = _forecast_at(forecast, need_at) or _forecast_at(forecast, at)
    history = store.history(name, at - timedelta(hours=1), at)
    recent = [r for r in history if r[0] >= at - timedelta(minutes=5)]
    actions = [a for a in store.actions(name, since=at - timedelta(days=1)) if a["ts"] <= at]
    guard = _guard_in_force(store.static_guard_judgements(name, at, at))
    return {
        "endpoint": name, "at": at, "target": target,
        "why": _why(hold, target, cmd),
        "commanded_from": cmd["at"] if cmd else None,
        "need_at": reason.get("need_at"), "lead_s": reason.get("lead_s"),
        "need": reason.get("need"), "quantile": reason.get("quantile"),
        "forecast_rpm": reason.get("forecast_rpm"), "planned_rpm": reason.get("planned_rpm"),
        "floor": reason.get("floor"), "cap": reason.get("cap", cap), "model": reason.get("model"),
        "smoothing_s": reason.get("smoothing_s"),
        "forecast": None if step is None else {
            "issued_at": step["issued_at"], "ds": step["ds"], "model": step["model"],
            **{k: step[k] for k in step if k == "mean" or k.startswith(("lo-", "hi-"))}},
        "hold": {"workers": hold[0], "until": hold[1],
                 "capped_at": cap if cap is not None and hold[0] > cap else None} if hold else None,
        "events": list(reason.get("events") or []),  # calendar overrides that changed the forecast
        # The static guard in force for this plan (prewarm.static_guard), when there was one.
        "static": None if reason.get("static_floor") is None else {
            "floor": reason["static_floor"], "keepalive_s": reason.get("static_keepalive_s"),
            "judged_at": reason.get("static_judged_at")},
        # The last static-guard judgement made by then, and why it decided what it did.
        "static_guard": guard,
        "last_traffic": None if not history else {"ts": history[-1][0], "requests": history[-1][1],
                                                  "max_last_5_min": max((r[1] for r in recent), default=None)},
        "next_change": _next_change(rows, at, target),
        "last_action": None if not actions else {k: actions[-1][k] for k in ("ts", "verb", "requested", "result",
                                                                            "error")},
        "reason": reason,
    }


@click.command()
@click.argument("endpoint")
@click.option("--at", "at", type=TIME, help="Explain the target at this time (default: now).")
@json_option
@click.pass_context
def explain(ctx, endpoint, at, as_json) -> None:
    """Why ENDPOINT's target is what it is: forecast value and quantile, lead, floor, caps,
    last actual traffic, from the plan and forecast stored at that time; and the static guard's
    judgement in force then, with what it decided on."""
    rt = runtime(ctx)
    try:
        ep = rt.settings.endpoint(endpoint)
        doc = explanation(rt.store, endpoint, at or utcnow(), ep.capacity.max_workers)
        if at is None:  # sources hook (prewarm/sync.py): the history's lag now, and why
            from ..sync import source_status
            doc["source"] = source_status(rt.settings, rt.store, doc["at"]).get(endpoint)
    finally:
        rt.close()
    if as_json:
        emit_json(doc)
    else:
        _print_explanation(doc)
    if doc["target"] is None:
        ctx.exit(1)


def _guard_in_force(rows: list[dict]) -> dict | None:
    """The static-guard judgement in force at an instant (Store.static_guard_judgements(e, at,
    at): the last made by then; None before the first kept), with its evidence as a line of text."""
    if not rows:
        return None
    from ..backtest.judgement import summary

    row = rows[-1]
    return {"mode": row["mode"], "judged_at": row["judged_at"], "span_s": row["span_s"], "setting": row["setting"],
            "smoothing_s": row["smoothing_s"], "evidence": row.get("evidence"), "summary": summary(row.get("evidence"))}


def _num(v, digits: int = 1) -> str:
    """A number for a person: rounded, no trailing zeros, '-' for nothing."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{v:.0f}"
    return str(v)


BAND_NAMES = {"mean": "the mean"}


def _band_name(column: str | None) -> str:
    if not column:
        return "the forecast"
    if column.startswith(("hi-", "lo-")):
        side = "upper" if column.startswith("hi-") else "lower"
        return f"the {side} {column[3:]}% band ({column})"
    return BAND_NAMES.get(column, column)


def _parse_ts(text: str) -> datetime:
    from ..units import parse_timestamp
    return parse_timestamp(text)


def _workers(n) -> str:
    return "- workers" if n is None else f"{n} worker" + ("" if n == 1 else "s")


def _print_explanation(d: dict) -> None:
    if d["target"] is None:
        echo(f"{d['endpoint']}: no plan in force at {when(d['at'])}")
        if d.get("source"):
            echo(f"  {d['source']['summary']}")
        return
    echo(f"{d['endpoint']} at {when(d['at'])}: {_workers(d['target'])} warm ({d['why']})")
    if d["commanded_from"]:
        lead = f", started {_num(d['lead_s'], 0)} s ahead (the cold start)" if d["lead_s"] is not None else ""
        echo(f"  commanded from {when(d['commanded_from'])}, needed by {when(d['need_at'])}{lead}")
    if d["forecast_rpm"] is not None:
        mean = d["forecast"].get("mean") if d["forecast"] else None
        echo(f"  forecast {_num(d['forecast_rpm'])} req/min on {_band_name(d['quantile'])}"
                   + (f"; the mean is {_num(mean)}" if mean is not None and d["quantile"] != "mean" else "")
                   + f"; model {d['model'].split('(')[0] if d['model'] else '-'}")
        planned, band = d["planned_rpm"], d["forecast_rpm"]
        if planned is not None and abs(planned - band) > 0.05:
            over = "" if d.get("smoothing_s") is None else f" over +-{format_duration(float(d['smoothing_s']))}"
            knob = "([planner] smoothing, or the smoothing_choices value the static guard chose on last week)"
            because = (f"raised to recent actual traffic, or smoothed{over} with the busier steps beside it {knob}"
                       if planned > band else f"smoothed{over} with the quieter steps beside it {knob}")
            echo(f"  planned on {_num(planned)} req/min, not {_num(band)}: {because}")
        echo(f"  -> {_workers(d['need'])} needed at that rate")
    if d["forecast"]:
        bands = ", ".join(f"{k} {_num(v)}" for k, v in d["forecast"].items()
                          if (k == "mean" or k.startswith(("lo-", "hi-"))) and v is not None)
        echo(f"  forecast issued {when(d['forecast']['issued_at'])} for {when(d['forecast']['ds'])}: "
                   f"{bands} req/min")
    if d["events"]:
        echo(f"  calendar events in the forecast: {', '.join(d['events'])}")
    if d.get("static"):
        from ..planner.model import StaticSetting

        g = d["static"]
        setting = StaticSetting(int(g["floor"]), None if g["keepalive_s"] is None else float(g["keepalive_s"]))
        judged = f", judged at {when(_parse_ts(g['judged_at']))}" if g.get("judged_at") else ""
        echo(f"  static floor (the static guard, judged on the trailing week): {setting.text()}{judged}")
    if d.get("static_guard") and d["static_guard"]["summary"]:
        g = d["static_guard"]
        echo(f"  static guard ({g['mode']}), judged at {when(g['judged_at'])}: {g['summary']}")
    limits = ([f"floor {_num(d['floor'])}"] if d["floor"] is not None else []) + \
        ([f"max_workers {_num(d['cap'])}"] if d["cap"] is not None else [])
    if d["hold"]:
        limits.append("hold " + _hold_text((d["hold"]["workers"], d["hold"]["until"]), d["hold"].get("capped_at")))
    if limits:
        echo("  " + ", ".join(limits))
    if d.get("source"):
        echo(f"  {d['source']['summary']}")
    if d["last_traffic"]:
        t = d["last_traffic"]
        echo(f"  last actual traffic: {t['requests']} requests in the minute of {when(t['ts'])} "
                   f"(max {_num(t['max_last_5_min'])} a minute over the last 5 min)")
    if d["next_change"]:
        n = d["next_change"]
        echo(f"  next change: {n['warm_workers']} at {when(n['at'])} ({n['why']})")
    if d["last_action"]:
        a = d["last_action"]
        target = a["requested"].get("target") if a["requested"] else None
        echo(f"  last action: {a['verb']}" + (f" to {target}" if target is not None else "")
                   + f" at {when(a['ts'])}: {a['result']}" + (f" ({a['error']})" if a["error"] else ""))


@click.command()
@click.argument("endpoint")
@click.argument("workers", type=click.IntRange(min=0))
@click.option("--for", "duration", type=DURATION, default="1h", show_default=True,
              help="How long the floor holds (the planner keeps it until then).")
@click.option("--note", help="Why, for the audit log.")
@json_option
@click.pass_context
def hold(ctx, endpoint, workers, duration, note, as_json) -> None:
    """Hold at least WORKERS warm on ENDPOINT: applied at once, kept as a floor until it expires."""
    from ..apply import pending_audit_count, record
    from ..providers.base import EndpointRef, retry_call

    rt = runtime(ctx)
    now = utcnow()
    try:
        ep = rt.settings.endpoint(endpoint)
        until = now + timedelta(seconds=duration)
        ref = EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers)
        rt.store.set_hold(ep.name, workers, until, now, note)
        planned, _ = _target_at(rt.store.current_plan(ep.name), None, now)
        target = ref.clamp(max(workers, planned or 0))
        provider = rt.provider(ep)
        current = _read_provider(rt, ep)["desired"]
        requested = {"target": target, "hold": workers, "until": until.isoformat(), "previous": current}
        cmd = {"reason": {"why": "hold", "note": note, "by": "prewarm hold"}}
        started = time.monotonic()
        if current is not None and current >= target:
            requested["target"] = current  # already at or above the floor: a floor never lowers
            result, error = "unchanged", None
        else:
            try:
                result = "ok" if retry_call(lambda: provider.apply(target), deadline_s=30).changed else "unchanged"
                error = None
            except Exception as exc:  # noqa: BLE001 - recorded, and the hold stays for the daemon
                result, error = "error", str(exc)
        record(rt, ep.name, provider.kind, requested, cmd, result, now, started, error=error, verb="hold")
        pending = pending_audit_count(rt)
    finally:
        rt.close()
    doc = {"endpoint": endpoint, "hold": workers, "until": until, "target": requested["target"],
           "capped_at": ep.capacity.max_workers if workers > ep.capacity.max_workers else None,
           "previous": current, "result": result, "error": error}
    if as_json:
        emit_json(doc)
    else:
        capped = (f" (capped at max_workers {ep.capacity.max_workers}: the provider is never asked for more)"
                  if workers > ep.capacity.max_workers else "")
        echo(f"{endpoint}: holding at least {workers} warm until {when(until)}{capped}; "
                   f"provider target {requested['target']} ({result}{': ' + error if error else ''})")
    if result == "error" or pending:
        ctx.exit(1)


@click.command()
@click.argument("endpoint")
@json_option
@click.pass_context
def release(ctx, endpoint, as_json) -> None:
    """Remove ENDPOINT's hold and apply at once what the planner now plans without it, as
    `hold` applies at once: one plan-and-apply pass for this endpoint (as `prewarm once
    ENDPOINT`), so a lower target follows the plan's usual scale-in delay. When it cannot
    plan now (no history, a failing forecast), capacity is left as it is and the next cycle
    re-plans; the exit code is then 1."""
    from ..apply import record
    from ..cycle import run_once

    rt = runtime(ctx)
    now = utcnow()
    try:
        ep = rt.settings.endpoint(endpoint)
        held = rt.store.active_hold(ep.name, now)
        removed = rt.store.clear_hold(ep.name)
        current = _read_provider(rt, ep)["desired"]
        if current is None:
            current = rt.store.last_applied_target(ep.name)
        requested = {"target": current, "released": {"workers": held[0], "until": held[1].isoformat()}
                     if held else None}
        # "ok"/"unchanged" records count as what the provider was last told: only with a target.
        result = ("ok" if removed else "unchanged") if current is not None else "recorded"
        record(rt, ep.name, ep.provider["kind"], requested, {"reason": {"why": "release", "by": "prewarm release"}},
               result, now, time.monotonic(), verb="release")
        outcomes, actions = run_once(rt, now, [ep.name])
    finally:
        rt.close()
    planned = outcomes.get(ep.name)
    action = next((a for a in actions if a.endpoint == ep.name), None)
    applied = None if action is None else {"target": action.target, "previous": action.previous,
                                           "result": action.result, "error": action.error}
    problem = (planned.error if planned is not None and planned.error else None) or \
        (action.error if action is not None and action.result == "error" else None)
    if as_json:
        emit_json({"endpoint": endpoint, "released": bool(removed), "hold": requested["released"],
                   "applied": applied, "error": problem})
    else:
        head = f"{endpoint}: " + ("hold released" if removed else "no hold to release")
        if problem:
            echo(f"{head}; not re-planned now ({problem}): capacity left at "
                       f"{'-' if current is None else current}, the next cycle re-plans")
        elif applied is not None:
            echo(f"{head}; planned target {applied['target']} applied "
                       f"(was {'-' if applied['previous'] is None else applied['previous']}: {applied['result']})")
        else:
            echo(f"{head}; no planned change due now")
    if problem:
        ctx.exit(1)
