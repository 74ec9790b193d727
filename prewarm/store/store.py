"""The SQL store: every read and write prewarm makes, in one place, the same on SQLite,
PostgreSQL and MariaDB. Values are always bound parameters, never formatted into SQL.

Imports nothing of prewarm above the store: plans and forecasts come in as plain rows.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..errors import StoreError
from . import schema as t

log = logging.getLogger("prewarm.store")


@dataclass(frozen=True)
class CountRow:
    endpoint: str
    ts: datetime  # aware UTC, start of the bucket
    requests: int
    cold_starts: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    bucket_s: int = 60

    def values(self) -> tuple:
        return (self.requests, self.cold_starts, self.p50_ms, self.p99_ms)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def make_engine(url: str, echo: bool = False) -> sa.Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = 1800
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the one we ship
    if parsed.get_backend_name() in ("mysql", "mariadb") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+pymysql")
    engine = sa.create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    return engine


class Store:
    def __init__(self, url: str, *, echo: bool = False, auto_upgrade: bool | None = None) -> None:
        self.url = url
        try:
            self.engine = make_engine(url, echo)
        except (sa.exc.ArgumentError, ImportError) as exc:
            from ..errors import ConfigError
            raise ConfigError(f"store url {_redact(url)!r}: {exc}") from None
        self._endpoint_ids: dict[str, int] = {}
        embedded = self.engine.dialect.name == "sqlite"
        if auto_upgrade is None:
            auto_upgrade = embedded  # the embedded default upgrades itself on first use
        self._check_schema(auto_upgrade)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _check_schema(self, auto_upgrade: bool) -> None:
        from . import migrate
        try:
            current = migrate.current_revision(self.engine)
            head = migrate.head_revision()
            if current != head:
                if not auto_upgrade:
                    raise StoreError(f"database {_redact(self.url)} is at schema revision {current or 'none'}, "
                                     f"this prewarm needs {head}: run `prewarm db upgrade`")
                log.info("upgrading %s from %s to %s", _redact(self.url), current, head)
                migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot reach the database {_redact(self.url)}: {exc.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error on {_redact(self.url)}: {exc.orig}") from exc

    # -- endpoints -------------------------------------------------------------------------
    def endpoint_id(self, name: str, provider_kind: str | None = None, *, conn: sa.Connection | None = None,
                    create: bool = True) -> int | None:
        if name in self._endpoint_ids:
            return self._endpoint_ids[name]
        created = False
        with self._conn(conn) as c:
            row = c.execute(sa.select(t.endpoints.c.id).where(t.endpoints.c.name == name)).first()
            if row is None:
                if not create:
                    return None
                try:
                    with c.begin_nested():
                        c.execute(t.endpoints.insert().values(name=name, provider_kind=provider_kind,
                                                              created_at=_now()))
                    created = True
                except sa.exc.IntegrityError:
                    pass  # another writer created it between our select and insert
                row = c.execute(sa.select(t.endpoints.c.id).where(t.endpoints.c.name == name)).first()
        # An id created inside the caller's transaction is not cached: that transaction may
        # still roll back.
        if not (created and conn is not None):
            self._endpoint_ids[name] = row[0]
        return row[0]

    def endpoint_names(self) -> list[str]:
        with self.begin() as c:
            return [r[0] for r in c.execute(sa.select(t.endpoints.c.name).order_by(t.endpoints.c.name))]

    @contextmanager
    def _conn(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.begin() as c:
                yield c

    # -- request counts --------------------------------------------------------------------
    def existing_counts(self, conn: sa.Connection, endpoint_id: int, start: datetime,
                        end: datetime) -> dict[datetime, tuple]:
        rc = t.request_counts.c
        rows = conn.execute(sa.select(rc.ts, rc.requests, rc.cold_starts, rc.p50_ms, rc.p99_ms)
                            .where(rc.endpoint_id == endpoint_id, rc.ts >= start, rc.ts <= end))
        return {r[0]: tuple(r[1:]) for r in rows}

    def insert_counts(self, conn: sa.Connection, endpoint_id: int, rows: Sequence[CountRow]) -> int:
        if not rows:
            return 0
        conn.execute(t.request_counts.insert(), [
            {"endpoint_id": endpoint_id, "ts": r.ts, "bucket_s": r.bucket_s, "requests": r.requests,
             "cold_starts": r.cold_starts, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms} for r in rows])
        return len(rows)

    def history(self, endpoint: str, start: datetime, end: datetime) -> list[tuple[datetime, int, int | None]]:
        """(ts, requests, cold_starts) with start <= ts < end, in time order."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        rc = t.request_counts.c
        with self.begin() as c:
            rows = c.execute(sa.select(rc.ts, rc.requests, rc.cold_starts)
                             .where(rc.endpoint_id == eid, rc.ts >= start, rc.ts < end).order_by(rc.ts))
            return [tuple(r) for r in rows]

    def count_summary(self, endpoint: str, start: datetime, end: datetime) -> dict[str, float]:
        """Totals over a window: requests, cold starts (where reported), and rows seen."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return {"requests": 0, "cold_starts": 0, "reported": 0, "rows": 0}
        rc = t.request_counts.c
        with self.begin() as c:
            row = c.execute(sa.select(
                sa.func.coalesce(sa.func.sum(rc.requests), 0),
                sa.func.coalesce(sa.func.sum(rc.cold_starts), 0),
                sa.func.coalesce(sa.func.sum(sa.case((rc.cold_starts.is_not(None), rc.requests), else_=0)), 0),
                sa.func.count()).where(rc.endpoint_id == eid, rc.ts >= start, rc.ts < end)).one()
        return {"requests": float(row[0]), "cold_starts": float(row[1]), "reported": float(row[2]),
                "rows": int(row[3])}

    def last_count_time(self, endpoint: str) -> datetime | None:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        rc = t.request_counts.c
        with self.begin() as c:
            return c.execute(sa.select(sa.func.max(rc.ts)).where(rc.endpoint_id == eid)).scalar()

    # -- forecasts -------------------------------------------------------------------------
    def save_forecast(self, endpoint: str, issued_at: datetime, model: str, step_s: int,
                      rows: Iterable[Mapping[str, Any]]) -> int:
        """rows: ds, mean, lo-80, hi-80, lo-95, hi-95 (+ other bands kept as JSON)."""
        known = {"ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"}
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            payload = [{
                "endpoint_id": eid, "issued_at": issued_at, "ds": r["ds"], "step_s": step_s, "model": model,
                "mean": float(r["mean"]), "lo_80": _f(r.get("lo-80")), "hi_80": _f(r.get("hi-80")),
                "lo_95": _f(r.get("lo-95")), "hi_95": _f(r.get("hi-95")),
                "extra": json.dumps({k: float(v) for k, v in r.items() if k not in known}) or None,
            } for r in rows]
            if payload:
                c.execute(t.forecasts.insert(), payload)
            return len(payload)

    def latest_forecast(self, endpoint: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """The most recent forecast issued at or before `at` (default: the latest)."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        f = t.forecasts.c
        with self.begin() as c:
            q = sa.select(sa.func.max(f.issued_at)).where(f.endpoint_id == eid)
            if at is not None:
                q = q.where(f.issued_at <= at)
            issued = c.execute(q).scalar()
            if issued is None:
                return []
            rows = c.execute(sa.select(f.issued_at, f.ds, f.step_s, f.model, f.mean, f.lo_80, f.hi_80,
                                       f.lo_95, f.hi_95, f.extra)
                             .where(f.endpoint_id == eid, f.issued_at == issued).order_by(f.ds))
            out = []
            for r in rows:
                rec = {"issued_at": r.issued_at, "ds": r.ds, "step_s": r.step_s, "model": r.model,
                       "mean": r.mean, "lo-80": r.lo_80, "hi-80": r.hi_80, "lo-95": r.lo_95, "hi-95": r.hi_95}
                rec.update(json.loads(r.extra) if r.extra else {})
                out.append(rec)
            return out

    # -- plans -----------------------------------------------------------------------------
    def save_plan(self, endpoint: str, issued_at: datetime, horizon_end: datetime, model: str | None,
                  commands: Sequence[Mapping[str, Any]], need_now: int | None = None) -> int:
        """Replace the endpoint's current plan in one transaction: pending commands of the old
        plan become 'superseded', the new plan becomes current. A crash leaves either the old
        plan or the new one, never half of each."""
        p, pc = t.plans.c, t.plan_commands.c
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            old = [r[0] for r in c.execute(sa.select(p.id).where(p.endpoint_id == eid, p.current.is_(True)))]
            if old:
                c.execute(t.plan_commands.update().where(pc.plan_id.in_(old), pc.status == "pending")
                          .values(status="superseded"))
                c.execute(t.plans.update().where(p.id.in_(old)).values(current=False))
            plan_id = c.execute(t.plans.insert().values(endpoint_id=eid, issued_at=issued_at,
                                                        horizon_end=horizon_end, model=model, current=True,
                                                        need_now=need_now)
                                ).inserted_primary_key[0]
            if commands:
                c.execute(t.plan_commands.insert(), [{
                    "plan_id": plan_id, "endpoint_id": eid, "at": cmd["at"],
                    "warm_workers": int(cmd["warm_workers"]), "idle_timeout_s": cmd.get("idle_timeout_s"),
                    "reason": json.dumps(cmd.get("reason") or {}, default=str), "status": "pending",
                } for cmd in commands])
            return plan_id

    def current_plan(self, endpoint: str) -> list[dict[str, Any]]:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        p, pc = t.plans.c, t.plan_commands.c
        with self.begin() as c:
            rows = c.execute(sa.select(pc.id, pc.at, pc.warm_workers, pc.idle_timeout_s, pc.reason, pc.status,
                                       pc.applied_at, p.issued_at)
                             .join(t.plans, p.id == pc.plan_id)
                             .where(pc.endpoint_id == eid, p.current.is_(True)).order_by(pc.at, pc.id))
            return [{"id": r.id, "at": r.at, "warm_workers": r.warm_workers, "idle_timeout_s": r.idle_timeout_s,
                     "reason": json.loads(r.reason), "status": r.status, "applied_at": r.applied_at,
                     "issued_at": r.issued_at} for r in rows]

    def recent_needs(self, endpoint: str, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """(issued_at, need_now) of the plans issued in [since, until), oldest first."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        p = t.plans.c
        with self.begin() as c:
            rows = c.execute(sa.select(p.issued_at, p.need_now).where(
                p.endpoint_id == eid, p.issued_at >= since, p.issued_at < until, p.need_now.is_not(None))
                .order_by(p.issued_at))
            return [(r[0], int(r[1])) for r in rows]

    def plan_as_of(self, endpoint: str, at: datetime) -> list[dict[str, Any]]:
        """The plan that was current at `at` (the latest issued at or before it)."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        p, pc = t.plans.c, t.plan_commands.c
        with self.begin() as c:
            plan_id = c.execute(sa.select(p.id).where(p.endpoint_id == eid, p.issued_at <= at)
                                .order_by(p.issued_at.desc(), p.id.desc()).limit(1)).scalar()
            if plan_id is None:
                return []
            rows = c.execute(sa.select(pc.id, pc.at, pc.warm_workers, pc.idle_timeout_s, pc.reason, pc.status)
                             .where(pc.plan_id == plan_id).order_by(pc.at, pc.id))
            return [{"id": r.id, "at": r.at, "warm_workers": r.warm_workers, "idle_timeout_s": r.idle_timeout_s,
                     "reason": json.loads(r.reason), "status": r.status} for r in rows]

    def mark_command(self, command_id: int, status: str, at: datetime) -> None:
        with self.begin() as c:
            c.execute(t.plan_commands.update().where(t.plan_commands.c.id == command_id)
                      .values(status=status, applied_at=at))

    # -- audit log -------------------------------------------------------------------------
    def record_action(self, endpoint: str, *, ts: datetime, provider: str, verb: str,
                      requested: Mapping[str, Any], result: str, reason: Mapping[str, Any] | None = None,
                      error: str | None = None, retryable: bool | None = None,
                      duration_ms: float | None = None, command_id: int | None = None) -> int:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            return c.execute(t.actions.insert().values(
                ts=ts, endpoint_id=eid, provider=provider, verb=verb,
                requested=json.dumps(dict(requested), default=str),
                reason=json.dumps(dict(reason), default=str) if reason is not None else None,
                result=result, error=error, retryable=retryable, duration_ms=duration_ms,
                command_id=command_id)).inserted_primary_key[0]

    def actions(self, endpoint: str | None = None, since: datetime | None = None,
                limit: int = 1000) -> list[dict[str, Any]]:
        a, e = t.actions.c, t.endpoints.c
        q = sa.select(a.id, a.ts, e.name, a.provider, a.verb, a.requested, a.reason, a.result, a.error,
                      a.retryable, a.duration_ms, a.command_id).join(t.endpoints, e.id == a.endpoint_id)
        if endpoint is not None:
            q = q.where(e.name == endpoint)
        if since is not None:
            q = q.where(a.ts >= since)
        with self.begin() as c:
            rows = c.execute(q.order_by(a.ts, a.id).limit(limit))
            return [{"id": r.id, "ts": r.ts, "endpoint": r.name, "provider": r.provider, "verb": r.verb,
                     "requested": json.loads(r.requested), "reason": json.loads(r.reason) if r.reason else None,
                     "result": r.result, "error": r.error, "retryable": r.retryable,
                     "duration_ms": r.duration_ms, "command_id": r.command_id} for r in rows]

    def last_applied_target(self, endpoint: str) -> int | None:
        """The target of the last successful apply or hold: what the provider was last told."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        a = t.actions.c
        with self.begin() as c:
            row = c.execute(sa.select(a.requested).where(
                a.endpoint_id == eid, a.verb.in_(("apply", "hold", "release")), a.result.in_(("ok", "unchanged")))
                .order_by(a.ts.desc(), a.id.desc()).limit(1)).first()
        return None if row is None else int(json.loads(row[0])["target"])

    def record_readiness(self, endpoint: str, *, started_at: datetime, target: int, seconds: float,
                         ready: bool) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.readiness.insert().values(endpoint_id=eid, started_at=started_at, target=target,
                                                  seconds=seconds, ready=ready))

    def ready_durations(self, endpoint: str, limit: int = 50) -> list[float]:
        """Measured seconds from a scale-out to ready capacity, most recent first."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        r = t.readiness.c
        with self.begin() as c:
            rows = c.execute(sa.select(r.seconds).where(r.endpoint_id == eid, r.ready.is_(True))
                             .order_by(r.started_at.desc(), r.id.desc()).limit(limit))
            return [row[0] for row in rows]

    def tuned_policy(self, endpoint: str) -> tuple[datetime, dict[str, Any]] | None:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        tp = t.tuned_policies.c
        with self.begin() as c:
            row = c.execute(sa.select(tp.updated_at, tp.knobs).where(tp.endpoint_id == eid)).first()
        return None if row is None else (row[0], json.loads(row[1]))

    def save_tuned_policy(self, endpoint: str, updated_at: datetime, knobs: Mapping[str, Any]) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.tuned_policies.delete().where(t.tuned_policies.c.endpoint_id == eid))
            c.execute(t.tuned_policies.insert().values(endpoint_id=eid, updated_at=updated_at,
                                                       knobs=json.dumps(dict(knobs))))

    # -- holds -----------------------------------------------------------------------------
    def set_hold(self, endpoint: str, workers: int, until: datetime, now: datetime, note: str | None = None) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.holds.delete().where(t.holds.c.endpoint_id == eid))
            c.execute(t.holds.insert().values(endpoint_id=eid, workers=workers, until=until,
                                              created_at=now, note=note))

    def clear_hold(self, endpoint: str) -> bool:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return False
        with self.begin() as c:
            return c.execute(t.holds.delete().where(t.holds.c.endpoint_id == eid)).rowcount > 0

    def active_hold(self, endpoint: str, now: datetime) -> tuple[int, datetime] | None:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        h = t.holds.c
        with self.begin() as c:
            row = c.execute(sa.select(h.workers, h.until).where(h.endpoint_id == eid, h.until > now)).first()
            return (row.workers, row.until) if row else None

    # -- forecasting bookkeeping -----------------------------------------------------------
    def save_model_choice(self, endpoint: str, chosen_at: datetime, model: str, step_s: int,
                          scores: Mapping[str, Any]) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.model_choices.insert().values(endpoint_id=eid, chosen_at=chosen_at, model=model,
                                                      step_s=step_s, scores=json.dumps(dict(scores), default=str)))

    def latest_model_choice(self, endpoint: str) -> dict[str, Any] | None:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        m = t.model_choices.c
        with self.begin() as c:
            r = c.execute(sa.select(m.chosen_at, m.model, m.step_s, m.scores).where(m.endpoint_id == eid)
                          .order_by(m.chosen_at.desc(), m.id.desc()).limit(1)).first()
            return None if r is None else {"chosen_at": r.chosen_at, "model": r.model, "step_s": r.step_s,
                                           "scores": json.loads(r.scores)}

    def save_accuracy(self, endpoint: str, *, issued_at: datetime, scored_at: datetime, model: str,
                      steps: int, scores: Mapping[str, float | None]) -> bool:
        """Store one forecast's score; a forecast already scored is left as it is (False)."""
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            fa = t.forecast_accuracy.c
            if c.execute(sa.select(fa.id).where(fa.endpoint_id == eid, fa.issued_at == issued_at)).first():
                return False
            c.execute(t.forecast_accuracy.insert().values(
                endpoint_id=eid, issued_at=issued_at, scored_at=scored_at, model=model, steps=steps,
                mase=scores.get("mase"), pinball=scores.get("pinball"),
                coverage_80=scores.get("coverage_80"), coverage_95=scores.get("coverage_95")))
            return True

    def accuracy(self, endpoint: str, limit: int = 100) -> list[dict[str, Any]]:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        fa = t.forecast_accuracy.c
        with self.begin() as c:
            rows = c.execute(sa.select(fa.issued_at, fa.scored_at, fa.model, fa.steps, fa.mase, fa.pinball,
                                       fa.coverage_80, fa.coverage_95).where(fa.endpoint_id == eid)
                             .order_by(fa.issued_at.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def unscored_forecasts(self, endpoint: str, issued_before: datetime, limit: int = 3) -> list[datetime]:
        """Issue times of stored forecasts not scored yet, oldest first."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        f, fa = t.forecasts.c, t.forecast_accuracy.c
        scored = sa.select(fa.issued_at).where(fa.endpoint_id == eid)
        with self.begin() as c:
            return [r[0] for r in c.execute(
                sa.select(f.issued_at).where(f.endpoint_id == eid, f.issued_at < issued_before,
                                             f.issued_at.not_in(scored))
                .group_by(f.issued_at).order_by(f.issued_at).limit(limit))]

    def last_forecast_time(self, endpoint: str) -> datetime | None:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None
        with self.begin() as c:
            return c.execute(sa.select(sa.func.max(t.forecasts.c.issued_at))
                             .where(t.forecasts.c.endpoint_id == eid)).scalar()

    def prune(self, before: datetime) -> dict[str, int]:
        """Drop forecasts, superseded plans and accuracy rows older than `before`. The audit
        log is kept: it is the record of what was done."""
        p = t.plans.c
        with self.begin() as c:
            out = {"forecasts": c.execute(t.forecasts.delete().where(t.forecasts.c.issued_at < before)).rowcount}
            old = sa.select(p.id).where(p.issued_at < before, p.current.is_(False))
            out["plan_commands"] = c.execute(t.plan_commands.delete().where(t.plan_commands.c.plan_id.in_(old))).rowcount
            out["plans"] = c.execute(t.plans.delete().where(p.issued_at < before, p.current.is_(False))).rowcount
            out["forecast_accuracy"] = c.execute(t.forecast_accuracy.delete().where(
                t.forecast_accuracy.c.issued_at < before)).rowcount
        return out

    def forecast_issues(self, endpoint: str, before: datetime, limit: int = 50) -> list[datetime]:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        f = t.forecasts.c
        with self.begin() as c:
            return [r[0] for r in c.execute(sa.select(f.issued_at).where(f.endpoint_id == eid, f.issued_at < before)
                                            .group_by(f.issued_at).order_by(f.issued_at.desc()).limit(limit))]


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given, minus nothing
        return url
