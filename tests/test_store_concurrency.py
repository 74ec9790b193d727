"""One current plan per endpoint under concurrent writers (issue 12, item 2): the database
enforces it (a unique index on plans.current_endpoint) and the writers are serialised per
endpoint (the endpoint row locked in the transaction that flips `current`)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from prewarm.store import Store
from prewarm.store import schema as t
from waiting import wait_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
WRITERS = 6
ROUNDS = 4


def _plan(endpoint: str, at: datetime, workers: int) -> dict:
    return {"endpoint": endpoint, "horizon_end": at + timedelta(hours=6), "model": "m", "need_now": workers,
            "commands": [{"at": at, "warm_workers": workers, "reason": {"writer": workers}}]}


def test_concurrent_writers_leave_one_current_plan(store, db_url):
    """WRITERS processes' worth of stores (own engines) write plans for the same endpoints at
    the same instant, ROUNDS times (`prewarm once --at T` started together). Every write
    succeeds, and each endpoint ends with exactly one current plan, whose commands are the
    ones current_plan returns."""
    names = ["chat", "code"]
    stores = [Store(db_url) for _ in range(WRITERS)]
    errors: list[BaseException] = []
    try:
        for rnd in range(ROUNDS):
            at = T0 + timedelta(minutes=rnd)
            barrier = threading.Barrier(WRITERS)

            def write(i: int, s: Store = None) -> None:
                try:
                    barrier.wait()
                    if i % 2:
                        s.save_plans([_plan(n, at, 10 * rnd + i + 1) for n in names], at)
                    else:
                        for n in names:
                            s.save_plan(n, at, at + timedelta(hours=6), "m",
                                        _plan(n, at, 10 * rnd + i + 1)["commands"], need_now=1)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(i, stores[i])) for i in range(WRITERS)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert errors == []
            with store.begin() as c:
                per_ep = dict(c.execute(sa.select(t.plans.c.endpoint_id, sa.func.count())
                                        .where(t.plans.c.current.is_(True)).group_by(t.plans.c.endpoint_id)).all())
            assert sorted(per_ep.values()) == [1, 1], f"round {rnd}: current plans per endpoint {per_ep}"
            for n in names:
                assert len(store.current_plan(n)) == 1
    finally:
        for s in stores:
            s.close()


def test_upgrade_repairs_two_current_plans_keeping_the_newest(db_url):
    """Migration 0006 on a database the race left with two current plans for an endpoint:
    the newest stays current, the other's pending commands are superseded, and the new
    unique index then holds."""
    from prewarm.store import migrate

    engine = sa.create_engine(db_url)
    migrate.upgrade(engine, "0005")
    p, pc = t.plans.c, t.plan_commands.c
    with engine.begin() as c:
        c.execute(t.endpoints.insert().values(id=1, name="chat", created_at=T0))
        c.execute(t.endpoints.insert().values(id=2, name="code", created_at=T0))
        for pid, eid, minutes in ((1, 1, 0), (2, 1, 1), (3, 2, 0)):
            c.execute(sa.insert(t.plans).values(id=pid, endpoint_id=eid, issued_at=T0 + timedelta(minutes=minutes),
                                                horizon_end=T0 + timedelta(hours=6), current=True))
            c.execute(t.plan_commands.insert().values(plan_id=pid, endpoint_id=eid, at=T0, warm_workers=pid,
                                                      reason="{}", status="pending"))
    migrate.upgrade(engine)
    with engine.begin() as c:
        assert c.execute(sa.select(p.id).where(p.current.is_(True)).order_by(p.id)).scalars().all() == [2, 3]
        assert dict(c.execute(sa.select(pc.plan_id, pc.status)).all()) == {1: "superseded", 2: "pending", 3: "pending"}
        with pytest.raises(sa.exc.IntegrityError):
            with c.begin_nested():
                c.execute(t.plans.update().where(p.id == 1).values(current=True))
    engine.dispose()


def test_concurrent_ingests_of_the_same_endpoint_take_turns(store, db_url, tmp_path):
    """Two `prewarm ingest`s of the same file started together (own stores, as two processes
    would): both succeed, the minutes are stored once, and the later one finds them all
    unchanged (before: the second inserted the minutes the first had not committed yet, and
    PostgreSQL or MariaDB refused it with a duplicate key)."""
    from prewarm.ingest import ingest_file

    path = tmp_path / "counts.csv"
    minutes = 3000
    path.write_text("ts,endpoint,requests\n" + "".join(
        f"{(T0 + timedelta(minutes=m)).strftime('%Y-%m-%dT%H:%M:%SZ')},shared,{m % 7}\n" for m in range(minutes)))
    stores = [Store(db_url) for _ in range(2)]
    results, errors = together(stores, *[lambda s=s: ingest_file(s, path) for s in stores])
    assert errors == []
    reports = list(results)
    assert sorted((r.inserted, r.unchanged) for r in reports) == [(0, minutes), (minutes, 0)]
    assert len(store.history("shared", T0, T0 + timedelta(minutes=minutes))) == minutes


def test_a_sync_and_an_ingest_of_the_same_endpoint_take_turns(store, db_url, tmp_path):
    """`prewarm sync` writing a source's answer and `prewarm ingest` writing a file of the same
    minutes, started together: both succeed and each minute is stored once (before: the one
    that came second inserted minutes the first had not committed, a duplicate key)."""
    from prewarm.ingest import ingest_file
    from prewarm.store.source_store import Answered, write_answers

    minutes = 3000
    stamps = [T0 + timedelta(minutes=k) for k in range(minutes)]
    path = tmp_path / "counts.csv"
    path.write_text("ts,endpoint,requests\n" + "".join(f"{ts.strftime('%Y-%m-%dT%H:%M:%SZ')},shared,{k % 7}\n"
                                                       for k, ts in enumerate(stamps)))
    answer = Answered("shared", "prometheus", stamps[0], stamps[-1] + timedelta(minutes=1),
                      {ts: (k % 7, None) for k, ts in enumerate(stamps)})
    stores = [Store(db_url) for _ in range(2)]
    _, errors = together(stores, lambda: ingest_file(stores[0], path),
                         lambda: write_answers(stores[1], [answer], T0 + timedelta(days=3)))
    assert errors == []
    rows = store.history("shared", stamps[0], stamps[-1] + timedelta(minutes=1))
    assert [r[:2] for r in rows] == [(ts, k % 7) for k, ts in enumerate(stamps)]


def together(stores, *works):
    """Run `works` in threads started together (a barrier), as separate processes would;
    close `stores` after. Returns (results, errors)."""
    barrier = threading.Barrier(len(works))
    results, errors = [], []

    def run(work) -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for s in stores:
            s.close()
    return results, errors


def test_a_sync_never_waits_on_an_endpoint_an_ingest_holds(store, db_url):
    """An ingest holds endpoint B (it locks endpoints as it meets them in its file) and will
    want A next; a sync of A and B runs meanwhile. Before, the sync locked A, then waited on
    B: the two waited on each other until the database broke the deadlock by failing one.
    Now the sync writes A, leaves B for the next sync (its watermark kept, nothing written,
    reported busy) and never waits, so the ingest gets A; once B is free a sync writes it."""
    from prewarm.store.source_store import Answered, sync_states, write_answers

    stamps = [T0 + timedelta(minutes=k) for k in range(30)]
    answers = [Answered(name, "prometheus", stamps[0], stamps[-1] + timedelta(minutes=1),
                        {ts: (k % 5, None) for k, ts in enumerate(stamps)}) for name in ("a", "b")]
    ids = {name: store.endpoint_id(name) for name in ("a", "b")}
    if store.dialect == "sqlite":
        pytest.skip("SQLite serialises every writer with its database lock: no row locks to skip")
    ingest = sa.create_engine(db_url)
    try:
        with ingest.connect() as c, c.begin():
            store.lock_endpoints(c, [ids["b"]])  # the ingest holds B
            done: list = []
            sync = threading.Thread(target=lambda: done.append(write_answers(store, answers, T0 + timedelta(days=1))))
            sync.start()
            # the sync either finishes or is seen waiting on a lock (the failure before)
            state = wait_for(lambda: "done" if done else ("waits" if _lock_waits(ingest) else None), 120,
                             what="the sync to finish or wait on a lock")
            assert state == "done", "the sync waits on the endpoint the ingest holds"
            sync.join()
            written = done[0]
            assert written["b"].busy and written["b"].inserted == 0 and written["b"].watermark is None
            assert not written["a"].busy and written["a"].inserted == 30
            assert store.lock_endpoints(c, [ids["a"]]) == {ids["a"]}  # the ingest gets A: no deadlock
        assert set(sync_states(store, ["a", "b"])) == {"a"}
        assert len(store.history("b", stamps[0], stamps[-1] + timedelta(minutes=1))) == 0
        again = write_answers(store, answers, T0 + timedelta(days=1, minutes=1))
        assert not again["b"].busy and again["b"].inserted == 30 and again["a"].inserted == 0
    finally:
        ingest.dispose()


def _lock_waits(engine) -> bool:
    """Whether some other transaction on the server waits on a row lock right now."""
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            return bool(c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND datname = current_database()")).scalar())
        return bool(c.execute(sa.text("SELECT count(*) FROM information_schema.innodb_trx "
                                      "WHERE trx_state = 'LOCK WAIT'")).scalar())


def test_an_ingest_the_database_rolls_back_in_a_deadlock_runs_again(store, db_url, tmp_path, caplog):
    """An ingest locks endpoints in the order its file meets them (a, then b); another writer
    of several endpoints (the daemon's plan write, another ingest) holds b and then wants a.
    The database breaks the deadlock by rolling one back, here the ingest (PostgreSQL: it
    waited first, so its deadlock check runs first; MariaDB: it wrote fewer rows). Before,
    the ingest failed with the database's deadlock error; now it reads its file again once
    the other writer is through, and every minute is stored."""
    import logging

    from prewarm.ingest import ingest_file

    if store.dialect == "sqlite":
        pytest.skip("SQLite serialises every writer with its database lock: no row locks to deadlock on")
    caplog.set_level(logging.INFO, logger="prewarm.ingest")
    minutes = 10
    path = tmp_path / "two.csv"
    path.write_text("ts,endpoint,requests\n" + "".join(
        f"{(T0 + timedelta(minutes=k)).strftime('%Y-%m-%dT%H:%M:%SZ')},{name},{k % 4}\n"
        for name in ("a", "b") for k in range(minutes)))
    ids = {name: store.endpoint_id(name) for name in ("a", "b", "c")}
    other = sa.create_engine(db_url)
    ingest_store = Store(db_url)
    try:
        with other.connect() as c:
            tx = c.begin()
            if store.dialect == "postgresql":  # its own deadlock check comes long after the ingest's
                c.exec_driver_sql("SET LOCAL deadlock_timeout = '60s'")
            store.lock_endpoints(c, [ids["b"]])
            # the other writer has written more than the ingest will have (MariaDB rolls back
            # the smaller transaction)
            c.execute(t.request_counts.insert(), [{"endpoint_id": ids["c"], "ts": T0 + timedelta(minutes=k),
                                                   "requests": 1} for k in range(200)])
            done, failed = [], []

            def ingest():
                try:
                    done.append(ingest_file(ingest_store, path))
                except Exception as exc:  # noqa: BLE001 - the failure before the fix
                    failed.append(exc)

            th = threading.Thread(target=ingest)
            th.start()
            wait_for(lambda: _lock_waits(other) or failed, 120, what="the ingest to wait on b")
            store.lock_endpoints(c, [ids["a"]])  # the circle: the database rolls the ingest back
            tx.commit()
            th.join()
        assert failed == [] and done[0].inserted == 2 * minutes
        assert "ingest deadlocked with another writer" in caplog.text
        for name in ("a", "b"):
            assert [r[1] for r in store.history(name, T0, T0 + timedelta(minutes=minutes))] == \
                [k % 4 for k in range(minutes)]
    finally:
        ingest_store.close()
        other.dispose()
