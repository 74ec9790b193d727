"""Apply: bring each provider to the target in force now. Level-triggered and idempotent.

Called by `prewarm once` and by every daemon job (reconcile, the date job of a planned
change). Fail warm, everywhere:

- database unreachable: the plan and hold last read are used (kept in memory per runtime),
  and as the plan may be out of date, only a raise is applied; audit records that cannot be
  written wait in the audit spool on local disk (prewarm.audit_spool; in memory if it is
  disabled or the disk refuses) and are written once the database answers again, by this
  process or the next one;
- plan stale (no successful plan for 3 cycles): a target below the current one is not applied;
- provider state unreadable: only a raise above what the provider was last told is sent;
- provider throttling: retried with jittered backoff until a deadline, then left for the next
  pass; as apply is declarative (a target, not a delta), a retry never sends a change twice.

A hold (`prewarm hold`) is a floor here too, so a reconcile never undoes it before the planner
has seen it. One apply at a time per endpoint: a date job and a reconcile pass never race.
"""
from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import sqlalchemy as sa

from .audit_spool import AuditSpool, default_path
from .errors import StoreError
from .outcomes import ActionOutcome
from .providers.base import Capabilities, EndpointRef, ProviderError, retry_call

log = logging.getLogger("prewarm.apply")
STORE_ERRORS = (StoreError, sa.exc.SQLAlchemyError)
MAX_PENDING_AUDIT = 10_000


class Mandate(enum.Enum):
    """What the caller may do to a provider (the daemon's answer to `may_act`; True and False
    mean ALL and NONE)."""
    NONE = "not leader"
    RAISES = "not leader: raises only"  # cut off from the database (prewarm.daemon, _cut_off)
    ALL = "leader"


def mandate(may_act: Callable[[], "bool | Mandate"] | None) -> Mandate:
    if may_act is None:
        return Mandate.ALL
    answer = may_act()
    if isinstance(answer, Mandate):
        return answer
    return Mandate.ALL if answer else Mandate.NONE


class Cancelled(Exception):
    """The daemon is stopping: no further retry is started (the call in flight finishes)."""


@dataclass
class ApplyState:
    """What apply keeps between passes, per runtime: last plan and hold read, audit records
    not yet written, last target told to each provider, one lock per endpoint."""

    plans: dict[str, list[dict]] = field(default_factory=dict)
    holds: dict[str, tuple | None] = field(default_factory=dict)
    told: dict[str, int] = field(default_factory=dict)
    # per endpoint: (target, idle timeout asked, idle timeout the provider answered) of the last apply
    carried: dict[str, tuple] = field(default_factory=dict)
    applied_at: dict[str, datetime] = field(default_factory=dict)  # latest `now` applied per endpoint
    pending_audit: deque = field(default_factory=lambda: deque(maxlen=MAX_PENDING_AUDIT))
    spool: AuditSpool | None = None  # where records wait first (None: [daemon] audit_spool = "")
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, name: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(name, threading.Lock())


def state(rt) -> ApplyState:
    # Kept on the runtime so `once` and the daemon share one code path without a global.
    with _STATE_GUARD:
        if not hasattr(rt, "apply_state"):
            rt.apply_state = ApplyState(spool=spool_for(rt.settings))
        return rt.apply_state


def spool_for(settings) -> AuditSpool | None:
    path = settings.daemon.audit_spool
    if path == "":
        return None
    return AuditSpool(path if path is not None else default_path())


_STATE_GUARD = threading.Lock()


def fields(endpoint: str, **more: Any) -> dict:
    """`extra=` for log calls: structured fields for --log-format json."""
    return {"fields": {"endpoint": endpoint, **more}}


def due_command(plan_rows: list[dict], now: datetime) -> dict | None:
    """The command in force at `now`: the last one at or before it."""
    current = None
    for row in plan_rows:
        if row["at"] <= now:
            current = row
        else:
            break
    return current


def carried_idle(caps: Capabilities, target: int, idle_timeout_s: float | None) -> float | None:
    """The idle timeout to ask a provider for with `target`: what the plan asks, as the provider
    can carry it out (Capabilities): none if it cannot set one (or not at this target), else
    rounded up to its step (a keep-alive at least as long as planned: fail warm) and kept
    within its range."""
    if idle_timeout_s is None or not caps.idle_timeout or (caps.idle_timeout_at_zero_only and target != 0):
        return None
    step = caps.idle_timeout_step_s
    idle = math.ceil(idle_timeout_s / step - 1e-9) * step if step > 0 else float(idle_timeout_s)
    idle = max(caps.idle_timeout_min_s, idle)
    return float(idle if caps.idle_timeout_max_s is None else min(caps.idle_timeout_max_s, idle))


def apply_all(rt, now: datetime, names: Iterable[str] | None = None, *, retry_deadline_s: float = 30.0,
              cancel: threading.Event | None = None, may_act: Callable[[], "bool | Mandate"] | None = None) -> list:
    """Converge every endpoint (or `names`) to its target in force at `now`.

    `cancel` stops between endpoints and between retries; `may_act` is asked before each
    provider write (the daemon answers whether it still leads)."""
    flush_audit(rt)
    out = []
    for ep in rt.endpoints(names):
        if cancel is not None and cancel.is_set():
            break
        with state(rt).lock(ep.name):
            try:
                outcome = apply_endpoint(rt, ep, now, retry_deadline_s=retry_deadline_s, cancel=cancel,
                                         may_act=may_act)
            except Exception as exc:  # noqa: BLE001 - one endpoint's fault must not stop the others
                rt._error("apply", ep.name)
                log.exception("applying %s failed: %s", ep.name, exc, extra=fields(ep.name))
                outcome = ActionOutcome(ep.name, -1, None, "error", error=f"{type(exc).__name__}: {exc}")
        if outcome is not None:
            out.append(outcome)
    return out


def apply_endpoint(rt, ep, now: datetime, *, retry_deadline_s: float = 30.0,
                   cancel: threading.Event | None = None, may_act: Callable[[], "bool | Mandate"] | None = None):
    st = state(rt)
    # Never converge to an earlier instant than one already applied: a reconcile pass that
    # took `now` before a change job ran must not undo that change (and send it again).
    now = max(now, st.applied_at.get(ep.name, now))
    st.applied_at[ep.name] = now
    rows, hold, db_ok = _read_plan(rt, ep, now)
    if rows is None:
        return ActionOutcome(ep.name, -1, None, "skipped", error="plan unreadable and none cached")
    cmd = due_command(rows, now)
    if cmd is None and hold is None:
        return None
    ref = EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers)
    cmd = dict(cmd) if cmd is not None else {"id": None, "warm_workers": 0, "idle_timeout_s": None,
                                            "reason": {}, "status": "applied", "issued_at": now}
    cmd["reason"] = dict(cmd.get("reason") or {})
    target = ref.clamp(cmd["warm_workers"])
    if hold is not None and ref.clamp(hold[0]) > target:
        target = ref.clamp(hold[0])
        cmd["reason"] = {**cmd["reason"], "why": "hold", "hold_until": hold[1].isoformat()}
    if rt.metrics is not None:
        rt.metrics.planned.labels(ep.name).set(target)
        rt.metrics.plan_age.labels(ep.name).set((now - cmd["issued_at"]).total_seconds())
    stale_after = timedelta(seconds=3 * rt.settings.daemon.cycle_interval_s)
    stale = not db_ok or now - cmd["issued_at"] > stale_after
    st_reason = "database unreachable, using the last plan read" if not db_ok else "plan is stale"
    return _converge(rt, ep, cmd, target, now, stale=stale, stale_reason=st_reason,
                     retry_deadline_s=retry_deadline_s, cancel=cancel, may_act=may_act)


def _read_plan(rt, ep, now: datetime) -> tuple[list[dict] | None, tuple | None, bool]:
    """(plan rows, active hold, read from the database?). Falls back to the last read."""
    st = state(rt)
    try:
        rows = rt.store.current_plan(ep.name)
        hold = rt.store.active_hold(ep.name, now)
    except STORE_ERRORS as exc:
        rt._error("store", ep.name)
        cached = st.plans.get(ep.name)
        hold = st.holds.get(ep.name)
        hold = hold if hold is not None and hold[1] > now else None
        log.error("cannot read the plan of %s (%s); %s", ep.name, _short(exc),
                  "using the last plan read, raises only" if cached is not None else "leaving capacity as it is",
                  extra=fields(ep.name, stage="store"))
        return cached, hold, False
    st.plans[ep.name] = rows
    st.holds[ep.name] = hold
    return rows, hold, True


def _converge(rt, ep, cmd: dict, target: int, now: datetime, *, stale: bool, stale_reason: str,
              retry_deadline_s: float, cancel: threading.Event | None, may_act: Callable[[], "bool | Mandate"] | None):
    st = state(rt)
    provider, state_now, current = None, None, None
    try:
        provider = rt.provider(ep)
        state_now = _timed(rt, provider, "read", provider.read)
        current = state_now.desired
        if rt.metrics is not None:
            rt.metrics.actual.labels(ep.name).set(state_now.ready)
            rt.metrics.desired.labels(ep.name).set(state_now.desired)
    except ProviderError as exc:
        rt._error("provider", ep.name)
        log.warning("reading %s failed (%s); only a raise would be applied", ep.name, exc,
                    extra=fields(ep.name, stage="provider"))
    # Asked only for what the provider can do; and a provider that reports an idle timeout
    # other than the one it answered to the same request last time is not asked again (it
    # did what it could: asking every pass would change nothing and log an "unchanged" apply).
    idle = carried_idle(provider.capabilities(), target, cmd.get("idle_timeout_s")) if provider is not None else None
    if current == target and (idle is None or state_now.idle_timeout_s == idle
                              or st.carried.get(ep.name) == (target, idle, state_now.idle_timeout_s)):
        st.told[ep.name] = target
        if cmd.get("status") == "pending" and cmd.get("id") is not None:
            _mark(rt, ep, cmd, now)
        return ActionOutcome(ep.name, target, current, "unchanged", cmd["reason"])
    if current is None:
        # Unknown state: only a raise above what the provider was last told is safe.
        last = _last_told(rt, ep)
        if last is None or target <= last:
            log.warning("not applying %d to %s: provider state unknown (fail warm)", target, ep.name,
                        extra=fields(ep.name, target=target, last_told=last))
            return ActionOutcome(ep.name, target, None, "skipped", cmd["reason"], error="provider state unknown")
    elif target < current and stale:
        log.warning("not lowering %s from %d to %d: %s (fail warm)", ep.name, current, target, stale_reason,
                    extra=fields(ep.name, target=target, current=current))
        return ActionOutcome(ep.name, target, current, "skipped", cmd["reason"], error=stale_reason)
    allowed = mandate(may_act)
    if allowed is Mandate.NONE:
        log.error("not applying %d to %s: leadership not confirmed", target, ep.name, extra=fields(ep.name))
        return ActionOutcome(ep.name, target, current, "skipped", cmd["reason"], error="not leader")
    if allowed is Mandate.RAISES and current is not None and target <= current:
        # Not leading, cut off from the database: another daemon may lead and know better;
        # a raise to an absolute target is safe beside it, a lowering (or a new idle timeout) is not.
        log.warning("not applying %d to %s (now %d): %s", target, ep.name, current, allowed.value,
                    extra=fields(ep.name, target=target, current=current))
        return ActionOutcome(ep.name, target, current, "skipped", cmd["reason"], error=allowed.value)
    kind = provider.kind if provider is not None else ep.provider["kind"]
    if provider is None:
        return ActionOutcome(ep.name, target, current, "skipped", cmd["reason"], error="no provider")
    requested = {"target": target, "idle_timeout_s": idle, "previous": current}
    started = time.monotonic()

    def sleep(delay: float) -> None:
        if cancel is not None and cancel.wait(delay):
            raise Cancelled()
        if cancel is None:
            time.sleep(delay)

    try:
        result = retry_call(lambda: _timed(rt, provider, "apply", lambda: provider.apply(target, idle)),
                            deadline_s=retry_deadline_s, sleep=sleep,
                            on_retry=lambda e, n, d: log.warning("%s: retry %d in %.1fs: %s", ep.name, n, d, e,
                                                                 extra=fields(ep.name, attempt=n)))
    except Cancelled:
        record(rt, ep.name, kind, requested, cmd, "cancelled", now, started, error="stopping: not retried")
        return ActionOutcome(ep.name, target, current, "cancelled", cmd["reason"], error="stopping")
    except ProviderError as exc:
        rt._error("provider", ep.name)
        record(rt, ep.name, kind, requested, cmd, "error", now, started, error=str(exc), retryable=exc.retryable)
        log.error("applying %d to %s failed: %s", target, ep.name, exc,
                  extra=fields(ep.name, target=target, error=str(exc)))
        return ActionOutcome(ep.name, target, current, "error", cmd["reason"], error=str(exc))
    st.told[ep.name] = target
    st.carried[ep.name] = (target, idle, result.idle_timeout_s)
    res = "ok" if result.changed else "unchanged"
    record(rt, ep.name, kind, requested, cmd, res, now, started)
    if cmd.get("id") is not None:
        _mark(rt, ep, cmd, now)
    log.info("%s: warm workers %s -> %d (%s)", ep.name, result.previous, target, cmd["reason"].get("why"),
             extra=fields(ep.name, previous=result.previous, target=target, why=cmd["reason"].get("why"),
                          result=res))
    if result.changed and target > (result.previous or 0) and getattr(rt, "watch_readiness", False):
        # Learn this endpoint's real time to ready (readiness.py): the lead of later plans.
        from .readiness import watch
        watch(rt, ep, provider, target, now, timeout_s=max(600.0, 3 * ep.capacity.cold_start_s))
    return ActionOutcome(ep.name, target, result.previous, res, cmd["reason"])


def _last_told(rt, ep) -> int | None:
    told = state(rt).told.get(ep.name)
    if told is not None:
        return told
    try:
        return rt.store.last_applied_target(ep.name)
    except STORE_ERRORS:
        return None


def _mark(rt, ep, cmd: dict, now: datetime) -> None:
    try:
        rt.store.mark_command(cmd["id"], "applied", now)
    except STORE_ERRORS as exc:  # the next pass finds the target in place and marks it
        log.error("cannot mark the command of %s applied: %s", ep.name, _short(exc), extra=fields(ep.name))


def _timed(rt, provider, verb: str, fn):
    started = time.monotonic()
    try:
        return fn()
    finally:
        if rt.metrics is not None:
            rt.metrics.provider_latency.labels(provider.kind, verb).observe(time.monotonic() - started)


def record(rt, endpoint: str, kind: str, requested: dict, cmd: dict, result: str, now: datetime,
           started: float, error: str | None = None, retryable: bool | None = None, verb: str = "apply") -> None:
    """Write one audit record; if the database is down, keep it and write it later."""
    if rt.metrics is not None:
        rt.metrics.actions.labels(kind, result).inc()
    entry = dict(ts=now, provider=kind, verb=verb, requested=requested, reason=cmd.get("reason"), result=result,
                 error=error, retryable=retryable, duration_ms=(time.monotonic() - started) * 1000,
                 command_id=cmd.get("id"))
    st = state(rt)
    if _waiting(st):
        flush_audit(rt)
    if _waiting(st) or not _write_audit(rt.store, endpoint, entry):
        _keep(st, endpoint, entry)


def _waiting(st: ApplyState) -> bool:
    return bool(st.pending_audit) or bool(st.spool)


def _keep(st: ApplyState, endpoint: str, entry: dict) -> None:
    if st.spool is not None:
        try:
            st.spool.append(endpoint, entry)
            return
        except OSError as exc:
            log.error("audit spool %s not writable (%s): the record waits in memory only",
                      st.spool.path, exc, extra=fields(endpoint, stage="store"))
    st.pending_audit.append((endpoint, entry))


def pending_audit_count(rt) -> int:
    """Audit records not yet in the database: in memory, and in the spool (any process's)."""
    st = state(rt)
    return len(st.pending_audit) + (st.spool.count() if st.spool else 0)


def flush_audit(rt) -> int:
    """Write audit records kept while the database was down, oldest first: the spool's (which
    may hold a previous process's), then those kept in memory."""
    st = state(rt)
    written = 0
    if st.spool:
        written += flush_spool(rt.store, st.spool)
    while st.pending_audit and not st.spool:
        endpoint, entry = st.pending_audit[0]
        if not _write_audit(rt.store, endpoint, entry, quiet=True):
            break
        st.pending_audit.popleft()
        written += 1
    if written:
        log.info("wrote %d audit records kept while the database was unreachable", written)
    return written


def flush_spool(store, spool: AuditSpool) -> int:
    """Write the spool's records with `store`, oldest first, until the database refuses one.
    Also what a standby daemon does (it writes audit records, and never acts), so the records
    of a leader that died during an outage reach the database even if it never leads again."""
    try:
        return spool.flush(lambda endpoint, entry: _write_audit(store, endpoint, entry, quiet=True))
    except OSError as exc:
        log.error("audit spool %s unreadable (%s): its records wait", spool.path, exc)
        return 0


def _write_audit(store, endpoint: str, entry: dict, quiet: bool = False) -> bool:
    try:
        store.record_action(endpoint, **entry)
        return True
    except STORE_ERRORS as exc:
        if not quiet:
            log.error("audit log write for %s failed, kept to write later: %s", endpoint, _short(exc),
                      extra=fields(endpoint, stage="store"))
        return False


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300]
