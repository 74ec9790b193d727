"""What `prewarm sync` reads and writes in the store: the synced minutes (request_counts, the
table every other path reads), the minutes a source could not answer (source_missing), and
each endpoint's watermark and last error (source_sync).

Kept beside store.py, on its Store (engine, endpoint ids); imports nothing above the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa

from . import schema as t
from .store import Store, _chunks

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class SyncState:
    kind: str
    watermark: datetime | None
    first_minute: datetime | None
    synced_at: datetime | None
    attempted_at: datetime
    error: str | None
    failures: int


@dataclass(frozen=True)
class Answered:
    """One endpoint's answer to write: values by minute for [start, end), or an error."""
    endpoint: str
    kind: str
    start: datetime
    end: datetime
    values: Mapping[datetime, tuple[int, int | None]]  # minute -> (requests, cold_starts)
    error: str | None = None


@dataclass(frozen=True)
class Written:
    inserted: int = 0
    updated: int = 0
    missing: int = 0  # minutes of the window recorded as missing
    watermark: datetime | None = None
    busy: bool = False  # another writer held the endpoint: nothing written, read again next sync


def sync_states(store: Store, names: Iterable[str]) -> dict[str, SyncState]:
    ids = store.endpoint_ids(names)
    by_id = {eid: name for name, eid in ids.items()}
    s = t.source_sync.c
    out: dict[str, SyncState] = {}
    with store.begin() as c:
        for chunk in _chunks(list(by_id)):
            for row in c.execute(sa.select(s.endpoint_id, s.kind, s.watermark, s.first_minute, s.synced_at,
                                           s.attempted_at, s.error, s.failures).where(s.endpoint_id.in_(chunk))):
                out[by_id[row[0]]] = SyncState(*row[1:])
    return out


def missing_minutes(store: Store, endpoint: str, start: datetime, end: datetime) -> list[datetime]:
    eid = store.endpoint_id(endpoint, create=False)
    if eid is None:
        return []
    m = t.source_missing.c
    with store.begin() as c:
        return [r[0] for r in c.execute(sa.select(m.ts).where(m.endpoint_id == eid, m.ts >= start, m.ts < end)
                                        .order_by(m.ts))]


def write_answers(store: Store, answers: Sequence[Answered], now: datetime,
                  keep_missing_after: Mapping[str, datetime] | None = None) -> dict[str, Written]:
    """Write many endpoints' answers in one transaction: new minutes inserted, minutes whose
    value changed updated (never duplicated), minutes without a value after the first the
    source ever answered recorded as missing (unless a value is stored for them), and the
    watermark moved to the end of the window. An answer with an error only records the error:
    the watermark stays, so the next sync reads the minutes again."""
    out: dict[str, Written] = {}
    if not answers:
        return out
    rc, m, s = t.request_counts.c, t.source_missing.c, t.source_sync.c
    # Endpoint rows first, each in its own transaction: creating one can wait on an ingest
    # creating the same, and the sync must hold no lock while it waits.
    eids = {a.endpoint: store.endpoint_id(a.endpoint) for a in answers}
    with store.begin_write() as c:  # SQLite: the write lock from the start, before the reads
        # An ingest of the same endpoints takes turns with the sync (PostgreSQL, MariaDB): an
        # endpoint an ingest holds is left for the next sync (watermark kept, nothing written),
        # so the sync never waits on it and the two cannot deadlock; an ingest that comes
        # second waits and reads what the sync stored (Store.committed).
        held = store.lock_endpoints(c, eids.values(), skip_locked=True)
        states: dict[int, tuple] = {}
        for row in c.execute(sa.select(s.endpoint_id, s.first_minute, s.watermark)
                             .where(s.endpoint_id.in_(list(set(eids.values()))))):
            states[row[0]] = (row[1], row[2])
        for a in answers:
            if eids[a.endpoint] not in held:
                out[a.endpoint] = Written(watermark=states.get(eids[a.endpoint], (None, None))[1], busy=True)
        answers = [a for a in answers if eids[a.endpoint] in held]
        eids = {a.endpoint: eids[a.endpoint] for a in answers}
        if not answers:
            return out
        lo = min(a.start for a in answers)
        hi = max(a.end for a in answers)
        good = [a for a in answers if a.error is None and a.start < a.end]
        existing: dict[int, dict[datetime, tuple]] = {}
        missing: dict[int, set[datetime]] = {}
        good_ids = list({eids[a.endpoint] for a in good})
        for chunk in _chunks(good_ids, 100):
            for eid, ts, req, cold in c.execute(store.committed(
                    sa.select(rc.endpoint_id, rc.ts, rc.requests, rc.cold_starts)
                    .where(rc.endpoint_id.in_(chunk), rc.ts >= lo, rc.ts < hi))):
                existing.setdefault(eid, {})[ts] = (req, cold)
            for eid, ts in c.execute(sa.select(m.endpoint_id, m.ts)
                                     .where(m.endpoint_id.in_(chunk), m.ts >= lo, m.ts < hi)):
                missing.setdefault(eid, set()).add(ts)
        inserts, updates, unmiss, miss, state_rows = [], [], [], [], []
        for a in answers:
            eid = eids[a.endpoint]
            first, watermark = states.get(eid, (None, None))
            if a.error is not None:
                state_rows.append({"eid": eid, "kind": a.kind, "watermark": watermark, "first_minute": first,
                                   "synced_at": None, "attempted_at": now, "error": a.error, "ok": False})
                out[a.endpoint] = Written(watermark=watermark)
                continue
            have = existing.get(eid, {})
            gaps = missing.get(eid, set())
            if a.values:
                earliest = min(a.values)
                first = earliest if first is None or earliest < first else first
            n_ins = n_upd = n_miss = 0
            if not have and not gaps:  # nothing stored in the window (a backfill): walk only to find missing
                lo, hi = a.start, a.end
                fresh = [(eid, ts, v[0], v[1]) for ts, v in a.values.items() if lo <= ts < hi]
                inserts.extend(fresh)
                n_ins = len(fresh)
                after = max(a.start, first + MINUTE) if first is not None else a.end
                expected = max(0, int((a.end - after).total_seconds() // 60))
                # Rows before `after` can only be the first minute itself (first <= every value).
                answered = n_ins - (1 if first is not None and lo <= first < after and first in a.values else 0)
                ts = after if answered < expected else a.end
                while ts < a.end:
                    if ts not in a.values:
                        n_miss += 1
                        miss.append({"endpoint_id": eid, "ts": ts})
                    ts += MINUTE
            else:
                ts = a.start
            while ts < a.end and (have or gaps):
                value = a.values.get(ts)
                if value is not None:
                    old = have.get(ts)
                    if old is None:
                        inserts.append((eid, ts, value[0], value[1]))
                        n_ins += 1
                    elif (old[0], old[1]) != value:
                        updates.append({"eid": eid, "t": ts, "req": value[0], "cold": value[1]})
                        n_upd += 1
                    if ts in gaps:
                        unmiss.append({"eid": eid, "t": ts})
                elif first is not None and ts > first and ts not in have:
                    n_miss += 1
                    if ts not in gaps:
                        miss.append({"endpoint_id": eid, "ts": ts})
                ts += MINUTE
            new_mark = a.end if watermark is None or a.end > watermark else watermark
            state_rows.append({"eid": eid, "kind": a.kind, "watermark": new_mark, "first_minute": first,
                               "synced_at": now, "attempted_at": now, "error": None, "ok": True})
            out[a.endpoint] = Written(n_ins, n_upd, n_miss, new_mark)
        if inserts:
            _insert_counts(c, inserts)
        if updates:
            c.execute(t.request_counts.update()
                      .where(rc.endpoint_id == sa.bindparam("eid"), rc.ts == sa.bindparam("t"))
                      .values(requests=sa.bindparam("req"), cold_starts=sa.bindparam("cold")), updates)
        if unmiss:
            c.execute(t.source_missing.delete()
                      .where(m.endpoint_id == sa.bindparam("eid"), m.ts == sa.bindparam("t")), unmiss)
        if miss:
            c.execute(t.source_missing.insert(), miss)
        if keep_missing_after:
            old = [{"eid": eids[n], "t": at} for n, at in keep_missing_after.items() if n in eids]
            if old:
                c.execute(t.source_missing.delete()
                          .where(m.endpoint_id == sa.bindparam("eid"), m.ts < sa.bindparam("t")), old)
        _save_states(c, states, state_rows)
    return out


def _save_states(c: sa.Connection, known: Mapping[int, tuple], rows: list[dict]) -> None:
    s = t.source_sync.c
    new = [r for r in rows if r["eid"] not in known]
    if new:
        c.execute(t.source_sync.insert(), [
            {"endpoint_id": r["eid"], "kind": r["kind"], "watermark": r["watermark"],
             "first_minute": r["first_minute"], "synced_at": r["synced_at"], "attempted_at": r["attempted_at"],
             "error": r["error"], "failures": 0 if r["ok"] else 1} for r in new])
    ok = [r for r in rows if r["eid"] in known and r["ok"]]
    if ok:
        c.execute(t.source_sync.update().where(s.endpoint_id == sa.bindparam("eid"))
                  .values(kind=sa.bindparam("b_kind"), watermark=sa.bindparam("b_watermark"),
                          first_minute=sa.bindparam("b_first_minute"), synced_at=sa.bindparam("b_synced_at"),
                          attempted_at=sa.bindparam("b_attempted_at"), error=None, failures=0),
                  [{"eid" if k == "eid" else f"b_{k}": r[k]
                    for k in ("eid", "kind", "watermark", "first_minute", "synced_at", "attempted_at")} for r in ok])
    failed = [r for r in rows if r["eid"] in known and not r["ok"]]
    if failed:
        c.execute(t.source_sync.update().where(s.endpoint_id == sa.bindparam("eid"))
                  .values(kind=sa.bindparam("b_kind"), attempted_at=sa.bindparam("b_attempted_at"),
                          error=sa.bindparam("b_error"), failures=s.failures + 1),
                  [{"eid" if k == "eid" else f"b_{k}": r[k] for k in ("eid", "kind", "attempted_at", "error")}
                   for r in failed])


_stored: dict[str, dict[datetime, Any]] = {}  # dialect -> minute -> as the driver takes it


def _insert_counts(c: sa.Connection, rows: list[tuple]) -> None:
    """(endpoint_id, ts, requests, cold_starts) rows in one executemany at the driver: a 14-day
    backfill writes 20,160 rows an endpoint, and SQLAlchemy's per-row parameter processing
    was three quarters of its CPU (bench/sources_bench.py). Times go in as the UTCDateTime
    column stores them: naive UTC, as text on SQLite (SQLAlchemy's DATETIME format there)."""
    # Endpoints share their minutes, and syncs share most of theirs: convert each minute once.
    stored = _stored.setdefault(c.dialect.name, {})
    if len(stored) > 100_000:
        stored.clear()
    for ts in {row[1] for row in rows} - stored.keys():
        value = ts.astimezone(timezone.utc).replace(tzinfo=None)
        stored[ts] = value.strftime("%Y-%m-%d %H:%M:%S.%f") if c.dialect.name == "sqlite" else value
    params = [(eid, stored[ts], 60, req, cold) for eid, ts, req, cold in rows]
    mark = "?" if c.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {t.request_counts.name} (endpoint_id, ts, bucket_s, requests, cold_starts) "
           f"VALUES ({', '.join([mark] * 5)})")
    for chunk in _chunks(params, 50_000):
        c.exec_driver_sql(sql, chunk)
