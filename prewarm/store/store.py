"""The SQL store: every read and write prewarm makes, in one place, the same on SQLite,
PostgreSQL and MariaDB. Values are always bound parameters, never formatted into SQL.

Imports nothing of prewarm above the store: plans and forecasts come in as plain rows.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..errors import StoreError
from . import schema as t

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("prewarm.store")


@dataclass(frozen=True)
class NewPlan:
    """A plan to write in place of the endpoint's current one (`old`: plan ids it supersedes)."""
    eid: int
    horizon_end: datetime
    model: str | None
    commands: Sequence[Mapping[str, Any]]
    need_now: int | None
    old: list[int]


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


READY_KEPT = 50  # measured times to ready an endpoint's learned lead is taken from
DEADLOCK_TRIES = 5  # a plan write or an ingest the database chose as a deadlock's victim is run again


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _create_private(path: Path) -> None:
    """A new SQLite file is the owner's alone (0600 whatever the umask; SQLite gives its -wal
    and -shm files the same mode). An existing file is left as it is."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except (FileExistsError, FileNotFoundError):  # there already, or a path SQLite cannot open either
        pass


def make_engine(url: str, echo: bool = False) -> sa.Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(parsed.database))  # the path SQLite opens
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

    @contextmanager
    def begin_write(self) -> Iterator[sa.Connection]:
        """A transaction that holds the write lock from its start on SQLite (BEGIN IMMEDIATE):
        what it reads is not changed under it by another writer, and a savepoint in it cannot
        commit on its own (pysqlite starts a transaction only at the first INSERT, UPDATE or
        DELETE; a SAVEPOINT before one was a transaction of its own, committed at RELEASE).
        Servers need no more here; per-endpoint serialisation there is lock_endpoints."""
        with self.begin() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def committed(self, query: sa.Select) -> sa.Select:
        """`query` reading what other writers committed, for use after lock_endpoints: on
        MariaDB/MySQL a locking read (a plain one sees the transaction's first snapshot, from
        before the lock was granted); PostgreSQL reads committed rows at every statement, and
        SQLite's write lock already excludes other writers."""
        return query.with_for_update(read=True) if self.dialect in ("mysql", "mariadb") else query

    def lock_endpoints(self, conn: sa.Connection, eids: Iterable[int], *, skip_locked: bool = False) -> set[int]:
        """Serialise writers per endpoint until `conn`'s transaction ends: the endpoint rows
        locked, in id order (two writers of several endpoints never wait on each other in a
        circle). PostgreSQL: FOR NO KEY UPDATE, which inserts referencing the endpoint do not
        wait for. MariaDB: call it first in the transaction, so the snapshot of its later
        reads is taken after the lock is granted (REPEATABLE READ takes it at the first plain
        read). SQLite: begin_write's lock already serialises every writer.

        `skip_locked`: never wait; the rows another transaction holds are left out. A writer
        that takes its locks so can never be one of two that wait on each other (an ingest
        locks endpoints as it meets them in its file, in no order a sync could share).
        Returns the ids locked (on SQLite: all of them)."""
        wanted = sorted(set(eids))
        if self.dialect == "sqlite":
            return set(wanted)
        e = t.endpoints.c
        got: set[int] = set()
        for chunk in _chunks(wanted):
            got.update(r[0] for r in conn.execute(
                sa.select(e.id).where(e.id.in_(chunk)).order_by(e.id)
                .with_for_update(key_share=True, skip_locked=skip_locked)))
        return got

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
                # A locking read sees what that writer committed (MariaDB's plain reads keep
                # the transaction's first snapshot).
                row = c.execute(sa.select(t.endpoints.c.id).where(t.endpoints.c.name == name)
                                .with_for_update(read=True, key_share=True)).first()
        # An id created inside the caller's transaction is not cached: that transaction may
        # still roll back.
        if not (created and conn is not None):
            self._endpoint_ids[name] = row[0]
        return row[0]

    def endpoint_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of the endpoints among `names` that exist, in one query (cached like endpoint_id)."""
        names = list(names)
        todo = [n for n in names if n not in self._endpoint_ids]
        if todo:
            e = t.endpoints.c
            with self.begin() as c:
                for chunk in _chunks(todo):
                    for name, eid in c.execute(sa.select(e.name, e.id).where(e.name.in_(chunk))):
                        self._endpoint_ids[name] = eid
        return {n: self._endpoint_ids[n] for n in names if n in self._endpoint_ids}

    @contextmanager
    def _conn(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.begin() as c:
                yield c

    # -- request counts --------------------------------------------------------------------
    def stored_counts(self, conn: sa.Connection, endpoint_id: int,
                      stamps: Sequence[datetime]) -> dict[datetime, tuple]:
        """Stored (requests, cold_starts, p50_ms, p99_ms) at those of `stamps` (minute bucket
        starts) that have a row. Dense stamps (a sorted file's chunk) are read as one range,
        scattered ones by value, so what is read stays about as large as `stamps`."""
        if not stamps:
            return {}
        rc = t.request_counts.c
        cols = (rc.ts, rc.requests, rc.cold_starts, rc.p50_ms, rc.p99_ms)

        def select(*where):
            return self.committed(sa.select(*cols).where(rc.endpoint_id == endpoint_id, *where))

        start, end = min(stamps), max(stamps)
        if (end - start).total_seconds() / 60 < 2 * len(stamps):
            wanted = set(stamps)
            rows = conn.execute(select(rc.ts >= start, rc.ts <= end))
            return {r[0]: tuple(r[1:]) for r in rows if r[0] in wanted}
        out = {}
        for chunk in _chunks(list(stamps)):
            for r in conn.execute(select(rc.ts.in_(chunk))):
                out[r[0]] = tuple(r[1:])
        return out

    def insert_counts(self, conn: sa.Connection, endpoint_id: int, rows: Sequence[CountRow]) -> int:
        if not rows:
            return 0
        conn.execute(t.request_counts.insert(), [
            {"endpoint_id": endpoint_id, "ts": r.ts, "bucket_s": r.bucket_s, "requests": r.requests,
             "cold_starts": r.cold_starts, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms} for r in rows])
        return len(rows)

    def history(self, endpoint: str, start: datetime, end: datetime) -> list[tuple[datetime, int, int | None]]:
        """(ts, requests, cold_starts) with start <= ts < end, in time order."""
        return self.histories([endpoint], start, end).get(endpoint, [])

    def histories(self, endpoints: Iterable[str], start: datetime,
                  end: datetime) -> dict[str, list[tuple[datetime, int, int | None]]]:
        """`history` of many endpoints in one query per chunk: name -> rows in time order."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        out: dict[str, list[tuple]] = {name: [] for name in ids}
        rc = t.request_counts.c
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                rows = c.execute(sa.select(rc.endpoint_id, rc.ts, rc.requests, rc.cold_starts)
                                 .where(rc.endpoint_id.in_(chunk), rc.ts >= start, rc.ts < end)
                                 .order_by(rc.endpoint_id, rc.ts))
                for eid, ts, requests, cold in rows:
                    out[names[eid]].append((ts, requests, cold))
        return out

    def history_frame(self, endpoints: Iterable[str], start: datetime, end: datetime) -> "pd.DataFrame":
        """History of many endpoints as one frame for the forecasters: unique_id, ds (naive
        UTC), y (requests), bucket_s; start <= ds < end. Built column-wise, without a Python
        datetime per row (~5x faster than `histories` at fleet scale)."""
        import pandas as pd

        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        rc = t.request_counts.c
        raw_ts = sa.type_coerce(rc.ts, sa.types.NullType())  # the driver's value, no per-row processing
        parts = []
        with self.begin() as c:
            # 100 endpoints a query: 14 days of 5-minute rows is 400,000 rows in flight.
            for chunk in _chunks(list(names), 100):
                rows = c.execute(sa.select(rc.endpoint_id, raw_ts, rc.requests, rc.bucket_s)
                                 .where(rc.endpoint_id.in_(chunk), rc.ts >= start, rc.ts < end)
                                 .order_by(rc.endpoint_id, rc.ts)).all()
                if rows:
                    eid, ts, y, bucket = zip(*rows)
                    parts.append(pd.DataFrame({"unique_id": [names[e] for e in eid],
                                               "ds": _naive_utc(ts, self.dialect), "y": pd.Series(y, dtype=float),
                                               "bucket_s": pd.Series(bucket, dtype="int64")}))
        if not parts:
            return pd.DataFrame({"unique_id": pd.Series([], dtype=object), "ds": pd.to_datetime([]),
                                 "y": pd.Series([], dtype=float), "bucket_s": pd.Series([], dtype="int64")})
        return pd.concat(parts, ignore_index=True)

    def activity(self, endpoints: Iterable[str], since: datetime, recent_since: datetime,
                 end: datetime) -> dict[str, dict[str, float]]:
        """Per endpoint, in one query: `count_summary` over [since, end) plus `recent_max`,
        the largest count in [recent_since, end). Endpoints without rows are left out."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        rc = t.request_counts.c
        out: dict[str, dict[str, float]] = {}
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                rows = c.execute(sa.select(
                    rc.endpoint_id, sa.func.sum(rc.requests), sa.func.coalesce(sa.func.sum(rc.cold_starts), 0),
                    sa.func.sum(sa.case((rc.cold_starts.is_not(None), rc.requests), else_=0)), sa.func.count(),
                    sa.func.max(sa.case((rc.ts >= recent_since, rc.requests), else_=0)))
                    .where(rc.endpoint_id.in_(chunk), rc.ts >= since, rc.ts < end).group_by(rc.endpoint_id))
                for eid, requests, cold, reported, count, recent in rows:
                    out[names[eid]] = {"requests": float(requests or 0), "cold_starts": float(cold or 0),
                                       "reported": float(reported or 0), "rows": int(count),
                                       "recent_max": float(recent or 0)}
        return out

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
        return self.count_span(endpoint)[1]

    def count_span(self, endpoint: str) -> tuple[datetime | None, datetime | None]:
        """The first and last minute stored for the endpoint (None, None without any)."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return None, None
        rc = t.request_counts.c
        with self.begin() as c:
            first, last = c.execute(sa.select(sa.func.min(rc.ts), sa.func.max(rc.ts))
                                    .where(rc.endpoint_id == eid)).one()
        return first, last

    def save_forecast(self, endpoint: str, issued_at: datetime, model: str, step_s: int,
                      rows: Iterable[Mapping[str, Any]]) -> int:
        """rows: ds, mean, lo-80, hi-80, lo-95, hi-95 (+ other bands kept as JSON)."""
        return self.save_forecasts([(endpoint, issued_at, model, step_s, rows)])

    def save_forecasts(self, forecasts: Iterable[tuple[str, datetime, str, int, Iterable[Mapping[str, Any]]]]) -> int:
        """Many `save_forecast`s, (endpoint, issued_at, model, step_s, rows) each, in one transaction."""
        known = {"ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"}
        with self.begin() as c:
            payload = []
            for endpoint, issued_at, model, step_s, rows in forecasts:
                eid = self.endpoint_id(endpoint, conn=c)
                payload.extend({
                    "endpoint_id": eid, "issued_at": issued_at, "ds": r["ds"], "step_s": step_s, "model": model,
                    "mean": float(r["mean"]), "lo_80": _f(r.get("lo-80")), "hi_80": _f(r.get("hi-80")),
                    "lo_95": _f(r.get("lo-95")), "hi_95": _f(r.get("hi-95")),
                    "extra": json.dumps({k: float(v) for k, v in r.items() if k not in known}) or None,
                } for r in rows)
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
        eid = self.endpoint_id(endpoint)

        def write(c: sa.Connection) -> int:
            plan_id = self._replace_plan(c, eid, issued_at, horizon_end, model, commands, need_now)
            if need_now is not None:
                self._record_needs(c, issued_at, [(eid, need_now)])
            return plan_id
        return self._write_plans([eid], write)

    def _write_plans(self, eids: Iterable[int], write: Callable[[sa.Connection], Any]) -> Any:
        """Run `write` in the transaction plans are replaced in: the endpoints locked first,
        so writers of one endpoint (the daemon and a cron `once`, two `once`s) run one after
        the other and each sees the plan the previous one made current; the unique index on
        plans.current_endpoint refuses a second current plan whatever happens. A deadlock
        (MariaDB's unique-index locks can cross two writers of different endpoints) rolls
        the transaction back; it is run again, up to DEADLOCK_TRIES times."""
        eids = list(eids)

        def attempt() -> Any:
            with self.begin_write() as c:
                self.lock_endpoints(c, eids)
                return write(c)
        return run_again_on_deadlock(attempt, "plan write", "trying again")

    def save_plans(self, plans: Sequence[Mapping[str, Any]], issued_at: datetime,
                   rewrite_after: timedelta = timedelta(hours=1)) -> dict[str, str]:
        """Many plans issued at one time, in one transaction. Each: endpoint, horizon_end,
        model, commands, need_now. A plan whose commands from `issued_at` on are those of the
        endpoint's current plan is not written again: the current plan is confirmed
        (confirmed_at, horizon_end), so its commands keep their status and its age restarts;
        but a current plan first issued more than `rewrite_after` ago is rewritten (so its
        reasons stay recent and old plans can be pruned). The need is recorded either way.
        Returns endpoint -> 'new' or 'confirmed'."""
        # Ids first, in their own transactions: the plan transaction starts with its locks.
        eids = {plan["endpoint"]: self.endpoint_id(plan["endpoint"]) for plan in plans}
        return self._write_plans(eids.values(), lambda c: self._save_plans(c, plans, eids, issued_at, rewrite_after))

    def _save_plans(self, c: sa.Connection, plans: Sequence[Mapping[str, Any]], eids: Mapping[str, int],
                    issued_at: datetime, rewrite_after: timedelta) -> dict[str, str]:
        p = t.plans.c
        out: dict[str, str] = {}
        current = self._current_schedules(c, list(eids.values()))
        confirm, replace = [], []
        for plan in plans:
            eid = eids[plan["endpoint"]]
            cur = current.get(eid)
            if (cur is not None and issued_at - cur[2] <= rewrite_after
                    and same_schedule(cur[1], plan["commands"], issued_at)):
                confirm.append({"pid": cur[0], "hend": plan["horizon_end"]})
                out[plan["endpoint"]] = "confirmed"
            else:
                replace.append(NewPlan(eid, plan["horizon_end"], plan.get("model"), plan["commands"],
                                       plan.get("need_now"), [cur[0]] if cur else []))
                out[plan["endpoint"]] = "new"
        self._replace_plans(c, issued_at, replace)
        if confirm:
            c.execute(t.plans.update().where(p.id == sa.bindparam("pid"))
                      .values(confirmed_at=issued_at, horizon_end=sa.bindparam("hend")), confirm)
        self._record_needs(c, issued_at, [(eids[plan["endpoint"]], plan["need_now"]) for plan in plans
                                          if plan.get("need_now") is not None])
        return out

    def _replace_plan(self, c: sa.Connection, eid: int, issued_at: datetime, horizon_end: datetime,
                      model: str | None, commands: Sequence[Mapping[str, Any]], need_now: int | None,
                      old: list[int] | None = None) -> int:
        p = t.plans.c
        if old is None:
            old = [r[0] for r in c.execute(sa.select(p.id).where(p.endpoint_id == eid, p.current.is_(True)))]
        return self._replace_plans(c, issued_at, [NewPlan(eid, horizon_end, model, commands, need_now, old)])[0]

    def _replace_plans(self, c: sa.Connection, issued_at: datetime, new: Sequence["NewPlan"]) -> list[int]:
        """Supersede the old plans' pending commands, and insert the new plans and their
        commands: a few statements for any number of plans (a fleet's cycle changes hundreds
        a minute; one plan at a time was four round trips each). Returns the new plan ids."""
        p, pc = t.plans.c, t.plan_commands.c
        if not new:
            return []
        old = [pid for plan in new for pid in plan.old]
        for chunk in _chunks(old):
            c.execute(t.plan_commands.update().where(pc.plan_id.in_(chunk), pc.status == "pending")
                      .values(status="superseded"))
            c.execute(t.plans.update().where(p.id.in_(chunk)).values(current=False))
        values = [{"endpoint_id": plan.eid, "issued_at": issued_at, "horizon_end": plan.horizon_end,
                   "model": plan.model, "current": True, "need_now": plan.need_now} for plan in new]
        if c.dialect.insert_executemany_returning_sort_by_parameter_order:
            rows = c.execute(t.plans.insert().returning(p.id, sort_by_parameter_order=True), values).all()
            ids = [row[0] for row in rows]
        else:  # a server without RETURNING (MySQL, MariaDB before 10.5): one insert a plan
            ids = [c.execute(t.plans.insert().values(**v)).inserted_primary_key[0] for v in values]
        commands = [{
            "plan_id": plan_id, "endpoint_id": plan.eid, "at": cmd["at"],
            "warm_workers": int(cmd["warm_workers"]), "idle_timeout_s": cmd.get("idle_timeout_s"),
            "reason": json.dumps(cmd.get("reason") or {}, default=str), "status": "pending",
        } for plan_id, plan in zip(ids, new) for cmd in plan.commands]
        if commands:
            c.execute(t.plan_commands.insert(), commands)
        return ids

    def _current_schedules(self, c: sa.Connection, eids: list[int]) -> dict[int, tuple[int, list[tuple], datetime]]:
        """endpoint id -> (current plan id, [(at, warm_workers, idle_timeout_s)] in time
        order, issued_at)."""
        p, pc = t.plans.c, t.plan_commands.c
        out: dict[int, tuple[int, list[tuple], datetime]] = {}
        for chunk in _chunks(eids):
            for eid, pid, issued in c.execute(sa.select(p.endpoint_id, p.id, p.issued_at).where(
                    p.endpoint_id.in_(chunk), p.current.is_(True))):
                out[eid] = (pid, [], issued)
            rows = c.execute(sa.select(pc.endpoint_id, pc.at, pc.warm_workers, pc.idle_timeout_s)
                             .join(t.plans, p.id == pc.plan_id)
                             .where(p.endpoint_id.in_(chunk), p.current.is_(True)).order_by(pc.at, pc.id))
            for eid, at, workers, idle in rows:
                out[eid][1].append((at, workers, idle))
        return out

    def _record_needs(self, c: sa.Connection, at: datetime, needs: list[tuple[int, int]]) -> None:
        if not needs:
            return
        n = t.plan_needs.c
        for chunk in _chunks([eid for eid, _ in needs]):
            c.execute(t.plan_needs.delete().where(n.endpoint_id.in_(chunk), n.at == at))
        c.execute(t.plan_needs.insert(), [{"endpoint_id": eid, "at": at, "need": int(need)} for eid, need in needs])

    def current_plan(self, endpoint: str) -> list[dict[str, Any]]:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        p, pc = t.plans.c, t.plan_commands.c
        with self.begin() as c:
            # issued_at here is when the plan was last planned (issued or confirmed): its age.
            planned = sa.func.coalesce(p.confirmed_at, p.issued_at, type_=t.UTCDateTime).label("issued_at")
            rows = c.execute(sa.select(pc.id, pc.at, pc.warm_workers, pc.idle_timeout_s, pc.reason, pc.status,
                                       pc.applied_at, planned)
                             .join(t.plans, p.id == pc.plan_id)
                             .where(pc.endpoint_id == eid, p.current.is_(True)).order_by(pc.at, pc.id))
            return [{"id": r.id, "at": r.at, "warm_workers": r.warm_workers, "idle_timeout_s": r.idle_timeout_s,
                     "reason": json.loads(r.reason), "status": r.status, "applied_at": r.applied_at,
                     "issued_at": r.issued_at} for r in rows]

    def recent_needs(self, endpoint: str, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """(time, need) recorded by the cycles in [since, until), oldest first."""
        return self.needs([endpoint], since, until).get(endpoint, [])

    def needs(self, endpoints: Iterable[str], since: datetime, until: datetime) -> dict[str, list[tuple[datetime, int]]]:
        """`recent_needs` of many endpoints in one query per chunk (endpoints with none left out)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        n = t.plan_needs.c
        out: dict[str, list[tuple[datetime, int]]] = {}
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                for eid, at, need in c.execute(sa.select(n.endpoint_id, n.at, n.need).where(
                        n.endpoint_id.in_(chunk), n.at >= since, n.at < until).order_by(n.endpoint_id, n.at)):
                    out.setdefault(names[eid], []).append((at, int(need)))
        return out

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

    # -- reads for `prewarm report` ----------------------------------------------------------
    def endpoints_with_history(self) -> list[str]:
        """Names of the endpoints that have request counts, sorted."""
        e, rc = t.endpoints.c, t.request_counts.c
        with self.begin() as c:
            return sorted(c.execute(sa.select(e.name).where(
                sa.exists().where(rc.endpoint_id == e.id))).scalars())

    def forecast_rows(self, endpoint: str, issued_since: datetime, start: datetime,
                      end: datetime) -> list[tuple[datetime, datetime, float, float | None, float | None]]:
        """(issued_at, ds, mean, lo-80, hi-80) of the snapshots issued in [issued_since, end)
        for steps ds in [start, end), ordered by ds then issued_at."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        f = t.forecasts.c
        with self.begin() as c:
            return [tuple(r) for r in c.execute(
                sa.select(f.issued_at, f.ds, f.mean, f.lo_80, f.hi_80)
                .where(f.endpoint_id == eid, f.issued_at >= issued_since, f.issued_at < end,
                       f.ds >= start, f.ds < end).order_by(f.ds, f.issued_at))]

    def plan_steps(self, endpoint: str, issued_since: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
        """(plan issued_at, command at, warm_workers) of the plans issued in [issued_since, end),
        ordered by issue time then command time."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        p, pc = t.plans.c, t.plan_commands.c
        with self.begin() as c:
            return [tuple(r) for r in c.execute(
                sa.select(p.issued_at, pc.at, pc.warm_workers).join(t.plans, p.id == pc.plan_id)
                .where(p.endpoint_id == eid, p.issued_at >= issued_since, p.issued_at < end)
                .order_by(p.issued_at, p.id, pc.at, pc.id))]

    def applied_targets(self, endpoint: str, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
        """What the provider was told and accepted (apply, hold, release; ok or unchanged) in
        [start, end), as (ts, target), led by the last one before `start` if any."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        a = t.actions.c
        accepted = (a.endpoint_id == eid, a.verb.in_(("apply", "hold", "release")), a.result.in_(("ok", "unchanged")))
        with self.begin() as c:
            before = c.execute(sa.select(a.ts, a.requested).where(*accepted, a.ts < start)
                               .order_by(a.ts.desc(), a.id.desc()).limit(1)).first()
            rows = c.execute(sa.select(a.ts, a.requested).where(*accepted, a.ts >= start, a.ts < end)
                             .order_by(a.ts, a.id)).all()
        return [(ts, int(json.loads(req)["target"])) for ts, req in ([before] if before else []) + rows]

    def record_readiness(self, endpoint: str, *, started_at: datetime, target: int, seconds: float,
                         ready: bool) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.readiness.insert().values(endpoint_id=eid, started_at=started_at, target=target,
                                                  seconds=seconds, ready=ready))

    def ready_durations(self, endpoint: str, limit: int = READY_KEPT) -> list[float]:
        """Measured seconds from a scale-out to ready capacity, most recent first."""
        return self.ready_durations_of([endpoint], limit).get(endpoint, [])

    def ready_durations_of(self, endpoints: Iterable[str], limit: int = READY_KEPT) -> dict[str, list[float]]:
        """`ready_durations` of many endpoints in one query per chunk (the database ranks and
        trims them: an endpoint's whole measurement history is not read for its last 50)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        out: dict[str, list[float]] = {}
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                ranked = _ranked_readiness(t.readiness.c.endpoint_id.in_(chunk))
                for eid, seconds in c.execute(sa.select(ranked.c.endpoint_id, ranked.c.seconds)
                                              .where(ranked.c.rank <= limit)
                                              .order_by(ranked.c.endpoint_id, ranked.c.rank)):
                    out.setdefault(names[eid], []).append(seconds)
        return out

    def tuned_policies(self, endpoints: Iterable[str]) -> dict[str, tuple[datetime, dict[str, Any]]]:
        """`tuned_policy` of many endpoints in one query per chunk (untuned ones left out)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        tp = t.tuned_policies.c
        with self.begin() as c:
            return {names[eid]: (updated, json.loads(knobs)) for chunk in _chunks(list(names))
                    for eid, updated, knobs in c.execute(sa.select(tp.endpoint_id, tp.updated_at, tp.knobs)
                                                         .where(tp.endpoint_id.in_(chunk)))}

    def tuned_policy(self, endpoint: str) -> tuple[datetime, dict[str, Any]] | None:
        return self.tuned_policies([endpoint]).get(endpoint)

    def save_tuned_policy(self, endpoint: str, updated_at: datetime, knobs: Mapping[str, Any]) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.tuned_policies.delete().where(t.tuned_policies.c.endpoint_id == eid))
            c.execute(t.tuned_policies.insert().values(endpoint_id=eid, updated_at=updated_at,
                                                       knobs=json.dumps(dict(knobs))))

    # -- the static guard (prewarm.static_guard) --------------------------------------------
    def static_guards(self, endpoints: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored static-guard judgements of many endpoints (never judged ones left out):
        name -> {mode, judged_at, span_s, setting (dict or None: the plan alone), smoothing_s (None:
        none chosen), evidence (dict: what it decided on, backtest.judgement.Evidence; None before
        it was stored), attempted_at, error}."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        g = t.static_guards.c
        out: dict[str, dict[str, Any]] = {}
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                for r in c.execute(sa.select(g.endpoint_id, g.mode, g.judged_at, g.span_s, g.setting, g.smoothing_s,
                                             g.evidence, g.attempted_at, g.error).where(g.endpoint_id.in_(chunk))):
                    out[names[r.endpoint_id]] = {"mode": r.mode, "judged_at": r.judged_at, "span_s": r.span_s,
                                                 "setting": json.loads(r.setting) if r.setting else None,
                                                 "smoothing_s": r.smoothing_s,
                                                 "evidence": json.loads(r.evidence) if r.evidence else None,
                                                 "attempted_at": r.attempted_at, "error": r.error}
        return out

    def save_static_guard(self, endpoint: str, *, mode: str, attempted_at: datetime,
                          setting: Mapping[str, Any] | None = None, span_s: float | None = None,
                          smoothing_s: float | None = None, evidence: Mapping[str, Any] | None = None,
                          error: str | None = None) -> None:
        """Store a judgement (error None: `setting`, `smoothing_s`, `evidence` and `span_s`
        judged at `attempted_at`), or a failed attempt (error set: the last judgement, its
        setting, smoothing and evidence are kept, fail warm)."""
        g = t.static_guards
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            old = c.execute(sa.select(g.c.endpoint_id).where(g.c.endpoint_id == eid)).first()
            if error is None:
                values = {"mode": mode, "judged_at": attempted_at, "span_s": span_s,
                          "setting": json.dumps(dict(setting)) if setting is not None else None,
                          "smoothing_s": smoothing_s,
                          "evidence": json.dumps(dict(evidence)) if evidence is not None else None,
                          "attempted_at": attempted_at, "error": None}
            else:
                values = {"attempted_at": attempted_at, "error": error[:2000]}
                if old is None:
                    values.update(mode=mode)
            if old is None:
                c.execute(g.insert().values(endpoint_id=eid, **values))
            else:
                c.execute(g.update().where(g.c.endpoint_id == eid).values(**values))
            if error is None:  # and in the history, in the same transaction
                c.execute(t.static_guard_judgements.insert().values(
                    endpoint_id=eid, judged_at=attempted_at, mode=mode, span_s=span_s, setting=values["setting"],
                    smoothing_s=smoothing_s, evidence=values["evidence"]))

    def static_guard_judgements(self, endpoint: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The static-guard judgements in force over [start, end], oldest first: the last one
        made by `start` (if any is kept), then those made after it up to `end`. Each: {mode,
        judged_at, span_s, setting (dict or None: the plan alone), smoothing_s, evidence (dict
        or None)}. `static_guard_judgements(e, at, at)`: the one in force at `at`, if any."""
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        j = t.static_guard_judgements.c
        cols = (j.mode, j.judged_at, j.span_s, j.setting, j.smoothing_s, j.evidence)
        with self.begin() as c:
            first = c.execute(sa.select(*cols).where(j.endpoint_id == eid, j.judged_at <= start)
                              .order_by(j.judged_at.desc(), j.id.desc()).limit(1)).all()
            later = c.execute(sa.select(*cols).where(j.endpoint_id == eid, j.judged_at > start, j.judged_at <= end)
                              .order_by(j.judged_at, j.id)).all()
        return [{"mode": r.mode, "judged_at": r.judged_at, "span_s": r.span_s,
                 "setting": json.loads(r.setting) if r.setting else None, "smoothing_s": r.smoothing_s,
                 "evidence": json.loads(r.evidence) if r.evidence else None} for r in [*first, *later]]

    # -- holds -----------------------------------------------------------------------------
    def set_hold(self, endpoint: str, workers: int, until: datetime, now: datetime, note: str | None = None) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.holds.delete().where(t.holds.c.endpoint_id == eid))
            c.execute(t.holds.insert().values(endpoint_id=eid, workers=workers, until=until,
                                              created_at=now, note=note))

    def active_holds(self, endpoints: Iterable[str], now: datetime) -> dict[str, tuple[int, datetime]]:
        """`active_hold` of many endpoints in one query per chunk (those without one left out)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        h = t.holds.c
        with self.begin() as c:
            return {names[eid]: (workers, until) for chunk in _chunks(list(names))
                    for eid, workers, until in c.execute(sa.select(h.endpoint_id, h.workers, h.until)
                                                         .where(h.endpoint_id.in_(chunk), h.until > now))}

    def clear_hold(self, endpoint: str) -> bool:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return False
        with self.begin() as c:
            return c.execute(t.holds.delete().where(t.holds.c.endpoint_id == eid)).rowcount > 0

    def active_hold(self, endpoint: str, now: datetime) -> tuple[int, datetime] | None:
        return self.active_holds([endpoint], now).get(endpoint)

    # -- forecasting bookkeeping -----------------------------------------------------------
    def save_model_choice(self, endpoint: str, chosen_at: datetime, model: str, step_s: int,
                          scores: Mapping[str, Any]) -> None:
        with self.begin() as c:
            eid = self.endpoint_id(endpoint, conn=c)
            c.execute(t.model_choices.insert().values(endpoint_id=eid, chosen_at=chosen_at, model=model,
                                                      step_s=step_s, scores=json.dumps(dict(scores), default=str)))

    def latest_model_choice(self, endpoint: str) -> dict[str, Any] | None:
        return self.latest_model_choices([endpoint]).get(endpoint)

    def latest_model_choices(self, endpoints: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`latest_model_choice` of many endpoints (those without one left out)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        m = t.model_choices.c
        out: dict[str, dict[str, Any]] = {}
        with self.begin() as c:
            for chunk in _chunks(list(names)):
                latest = (sa.select(m.endpoint_id, sa.func.max(m.chosen_at).label("chosen_at"))
                          .where(m.endpoint_id.in_(chunk)).group_by(m.endpoint_id).subquery())
                rows = c.execute(sa.select(m.endpoint_id, m.chosen_at, m.model, m.step_s, m.scores)
                                 .join(latest, sa.and_(latest.c.endpoint_id == m.endpoint_id,
                                                       latest.c.chosen_at == m.chosen_at)).order_by(m.id))
                for r in rows:  # ties at one time: the last written wins, as in latest_model_choice
                    out[names[r.endpoint_id]] = {"chosen_at": r.chosen_at, "model": r.model, "step_s": r.step_s,
                                                 "scores": json.loads(r.scores)}
        return out

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
        return self.last_forecast_times([endpoint]).get(endpoint)

    def last_forecast_times(self, endpoints: Iterable[str]) -> dict[str, datetime]:
        """`last_forecast_time` of many endpoints (those without a stored forecast left out)."""
        ids = self.endpoint_ids(endpoints)
        names = {eid: name for name, eid in ids.items()}
        f = t.forecasts.c
        with self.begin() as c:
            return {names[eid]: last for chunk in _chunks(list(names))
                    for eid, last in c.execute(sa.select(f.endpoint_id, sa.func.max(f.issued_at))
                                               .where(f.endpoint_id.in_(chunk)).group_by(f.endpoint_id))}

    def prune(self, before: datetime) -> dict[str, int]:
        """Drop forecasts, superseded plans, recorded needs, accuracy rows, times to ready and
        static-guard judgements older than `before` (but each endpoint's last READY_KEPT times
        to ready, and its judgement in force at `before`). The audit log is kept: it is the
        record of what was done."""
        p = t.plans.c
        with self.begin() as c:
            out = {"forecasts": c.execute(t.forecasts.delete().where(t.forecasts.c.issued_at < before)).rowcount}
            old = sa.select(p.id).where(p.issued_at < before, p.current.is_(False))
            out["plan_commands"] = c.execute(t.plan_commands.delete().where(t.plan_commands.c.plan_id.in_(old))).rowcount
            out["plans"] = c.execute(t.plans.delete().where(p.issued_at < before, p.current.is_(False))).rowcount
            out["plan_needs"] = c.execute(t.plan_needs.delete().where(t.plan_needs.c.at < before)).rowcount
            out["forecast_accuracy"] = c.execute(t.forecast_accuracy.delete().where(
                t.forecast_accuracy.c.issued_at < before)).rowcount
            # Times to ready: old ones go, but never an endpoint's last READY_KEPT (the learned
            # lead of an endpoint that rarely scales out must not fall back for want of them).
            kept = _ranked_readiness(sa.true())
            keep = sa.select(kept.c.id).where(kept.c.rank <= READY_KEPT)
            if self.dialect in ("mysql", "mariadb"):  # it cannot read the table it deletes from
                keep = sa.select(sa.literal_column("kept_ids.id")).select_from(keep.subquery("kept_ids"))
            out["readiness"] = c.execute(t.readiness.delete().where(
                t.readiness.c.started_at < before, t.readiness.c.id.not_in(keep))).rowcount
            # Static-guard judgements: old ones go, but each endpoint's last before the cut is
            # still in force at it (explain --at within retention shows it). A few rows an
            # endpoint a week: chosen here, deleted by id.
            j = t.static_guard_judgements.c
            last: dict[int, int] = {}
            old_ids = []
            for jid, eid in c.execute(sa.select(j.id, j.endpoint_id).where(j.judged_at < before)
                                      .order_by(j.judged_at, j.id)):
                if eid in last:
                    old_ids.append(last[eid])
                last[eid] = jid
            out["static_guard_judgements"] = sum(
                c.execute(t.static_guard_judgements.delete().where(j.id.in_(chunk))).rowcount
                for chunk in _chunks(old_ids))
        return out

    def forecast_issues(self, endpoint: str, before: datetime, limit: int = 50) -> list[datetime]:
        eid = self.endpoint_id(endpoint, create=False)
        if eid is None:
            return []
        f = t.forecasts.c
        with self.begin() as c:
            return [r[0] for r in c.execute(sa.select(f.issued_at).where(f.endpoint_id == eid, f.issued_at < before)
                                            .group_by(f.issued_at).order_by(f.issued_at.desc()).limit(limit))]


def same_schedule(current: Sequence[tuple], commands: Sequence[Mapping[str, Any]], now: datetime) -> bool:
    """Whether `commands` (a new plan issued at `now`) ask for what `current` ((at,
    warm_workers, idle_timeout_s) in time order) asks from `now` on: the same target and
    idle timeout in force now, then the same changes at the same times (to a millisecond;
    reasons are not compared)."""
    if not commands or commands[0]["at"] > now:
        return False
    in_force, future = None, []
    for at, workers, idle in current:
        if at <= now:
            in_force = (workers, idle)
        else:
            future.append((at, workers, idle))
    first = commands[0]
    if in_force is None or not _same_step(in_force, (first["warm_workers"], first.get("idle_timeout_s"))):
        return False
    if len(future) != len(commands) - 1:
        return False
    return all(abs((at - cmd["at"]).total_seconds()) < 1e-3
               and _same_step((workers, idle), (cmd["warm_workers"], cmd.get("idle_timeout_s")))
               for (at, workers, idle), cmd in zip(future, commands[1:]))


def _same_step(a: tuple, b: tuple) -> bool:
    if int(a[0]) != int(b[0]) or (a[1] is None) != (b[1] is None):
        return False
    return a[1] is None or abs(float(a[1]) - float(b[1])) < 1e-6


def _naive_utc(values: Sequence[Any], dialect: str):
    """Stored times as the driver returns them (SQLite: text; others: naive datetimes, UTC)."""
    import pandas as pd

    if dialect == "sqlite":
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
    return pd.to_datetime(pd.Series(values, dtype=object))


def _ranked_readiness(where) -> sa.Subquery:
    """Successful readiness measurements with their rank per endpoint, newest first (1)."""
    r = t.readiness.c
    rank = sa.func.row_number().over(partition_by=r.endpoint_id, order_by=(r.started_at.desc(), r.id.desc()))
    return sa.select(r.id, r.endpoint_id, r.seconds, rank.label("rank")).where(r.ready.is_(True), where).subquery()


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    """IN lists of at most `size` values (bound parameters have per-statement limits)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_again_on_deadlock(work: Callable[[], Any], what: str, again: str, logger: logging.Logger = log) -> Any:
    """`work()` (one transaction), run again when the database broke a deadlock by rolling it
    back (nothing of it was written), up to DEADLOCK_TRIES times in all, after a short random
    pause; any other error, or the last deadlock, is raised."""
    for attempt in range(1, DEADLOCK_TRIES + 1):
        try:
            return work()
        except StoreError as exc:
            if attempt == DEADLOCK_TRIES or not _deadlock(exc.__cause__):
                raise
            logger.info("%s deadlocked with another writer and was rolled back; %s (%d)", what, again, attempt)
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def _deadlock(exc: BaseException | None) -> bool:
    """Whether a driver error is a deadlock the database broke (MySQL/MariaDB 1213,
    PostgreSQL 40P01): the transaction was rolled back and may simply be run again."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "40P01":
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] == 1213


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given, minus nothing
        return url
