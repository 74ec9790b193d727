"""The same schema and queries on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from prewarm.errors import StoreError
from prewarm.store import CountRow, Store, migrate
from prewarm.store.schema import metadata

T0 = datetime(2024, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_migrations_create_exactly_the_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert migrate.current_revision(store.engine) == migrate.head_revision()


def test_server_database_without_schema_is_refused_with_the_fix(db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("the embedded database upgrades itself")
    with pytest.raises(StoreError, match="prewarm db upgrade"):
        Store(db_url)


def test_embedded_sqlite_upgrades_itself(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/sub/dir/p.db")
    assert migrate.current_revision(s.engine) == migrate.head_revision()


def test_counts_roundtrip_in_utc(store):
    eid = store.endpoint_id("chat", "dry-run")
    rows = [CountRow("chat", T0 + timedelta(minutes=i), i, cold_starts=0 if i else None, p50_ms=1.5)
            for i in range(5)]
    with store.begin() as c:
        store.insert_counts(c, eid, rows)
    hist = store.history("chat", T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    assert [h[1] for h in hist] == [1, 2, 3]
    assert hist[0][0] == T0 + timedelta(minutes=1) and hist[0][0].tzinfo is not None
    summary = store.count_summary("chat", T0, T0 + timedelta(hours=1))
    assert summary["requests"] == 10 and summary["reported"] == 10 and summary["rows"] == 5
    assert store.last_count_time("chat") == T0 + timedelta(minutes=4)


def test_naive_datetimes_are_refused(store):
    eid = store.endpoint_id("chat")
    with pytest.raises(sa.exc.StatementError, match="naive"):
        with store.begin() as c:
            store.insert_counts(c, eid, [CountRow("chat", T0.replace(tzinfo=None), 1)])


def test_plan_replacement_supersedes_pending_commands(store):
    cmds = [{"at": T0, "warm_workers": 1, "reason": {"why": "speculative"}},
            {"at": T0 + timedelta(hours=1), "warm_workers": 3, "idle_timeout_s": 60.0, "reason": {"why": "forecast"}}]
    first = store.save_plan("chat", T0, T0 + timedelta(hours=6), "seasonal-naive", cmds)
    store.mark_command(store.current_plan("chat")[0]["id"], "applied", T0)
    second = store.save_plan("chat", T0 + timedelta(minutes=1), T0 + timedelta(hours=6), "seasonal-naive", cmds[1:])
    assert second != first
    current = store.current_plan("chat")
    assert [c["warm_workers"] for c in current] == [3]
    assert current[0]["reason"] == {"why": "forecast"} and current[0]["idle_timeout_s"] == 60.0
    old = store.plan_as_of("chat", T0)
    assert [c["status"] for c in old] == ["applied", "superseded"]


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "one-insert-a-plan"])
def test_many_plans_in_one_write_each_land_on_their_endpoint(store, returning, monkeypatch):
    """save_plans writes a cycle's changed plans in a few statements (RETURNING the new ids in
    parameter order; one insert a plan on a server without it): each endpoint must get its
    own commands, and a changed plan must supersede only its own endpoint's pending commands."""
    if not returning:
        monkeypatch.setattr(store.engine.dialect, "insert_executemany_returning_sort_by_parameter_order", False)
    names = [f"ep-{i:03d}" for i in range(120)]

    def plan(i: int, issued: datetime, shift: int = 0) -> dict:  # as the planner issues them: in force now, then a change
        return {"endpoint": names[i], "horizon_end": T0 + timedelta(hours=6), "model": "m", "need_now": i % 5,
                "commands": [{"at": issued, "warm_workers": (i + shift) % 7 + 1, "reason": {"i": i}},
                             {"at": T0 + timedelta(hours=2), "warm_workers": 1, "reason": {"i": i}}]}

    assert set(store.save_plans([plan(i, T0) for i in range(120)], T0).values()) == {"new"}
    first = {n: store.current_plan(n) for n in names}
    for i, n in enumerate(names):
        assert [(c["warm_workers"], c["reason"]) for c in first[n]] == [(i % 7 + 1, {"i": i}), (1, {"i": i})]
    later = T0 + timedelta(minutes=1)
    out = store.save_plans([plan(i, later, shift=i % 2) for i in range(120)], later)
    assert [out[n] for n in names] == ["confirmed" if i % 2 == 0 else "new" for i in range(120)]
    for i, n in enumerate(names):
        current = store.current_plan(n)
        assert current[0]["warm_workers"] == (i + i % 2) % 7 + 1 and current[0]["reason"] == {"i": i}
        if i % 2 == 0:  # confirmed: the same commands, untouched
            assert [c["id"] for c in current] == [c["id"] for c in first[n]]
        else:  # replaced: its own old commands superseded, nobody else's
            assert [c["status"] for c in store.plan_as_of(n, T0)] == ["superseded", "superseded"]
            assert [c["at"] for c in current][0] == later


def test_forecast_latest_and_as_of(store):
    for k in range(2):
        issued = T0 + timedelta(minutes=k)
        store.save_forecast("chat", issued, "seasonal-naive", 60, [
            {"ds": issued + timedelta(minutes=i), "mean": float(k), "lo-80": 0, "hi-80": 2.0,
             "lo-95": 0, "hi-95": 3.0, "hi-99": 4.0} for i in range(3)])
    latest = store.latest_forecast("chat")
    assert len(latest) == 3 and latest[0]["mean"] == 1.0 and latest[0]["hi-99"] == 4.0
    assert store.latest_forecast("chat", at=T0)[0]["mean"] == 0.0
    assert store.latest_forecast("nope") == []


def test_audit_log_and_holds(store):
    store.record_action("chat", ts=T0, provider="dry-run", verb="apply", requested={"target": 2},
                        result="error", error="throttled", retryable=True, reason={"why": "forecast"})
    acts = store.actions("chat")
    assert acts[0]["requested"] == {"target": 2} and acts[0]["retryable"] is True
    store.set_hold("chat", 4, T0 + timedelta(hours=1), T0, note="launch")
    assert store.active_hold("chat", T0) == (4, T0 + timedelta(hours=1))
    assert store.active_hold("chat", T0 + timedelta(hours=2)) is None
    assert store.clear_hold("chat") is True and store.active_hold("chat", T0) is None


def test_model_choice_and_accuracy(store):
    store.save_model_choice("chat", T0, "mstl", 300, {"pinball": 1.5})
    assert store.latest_model_choice("chat")["model"] == "mstl"
    assert store.save_accuracy("chat", issued_at=T0, scored_at=T0, model="m", steps=5,
                               scores={"mase": 0.9, "coverage_80": 0.8}) is True
    assert store.save_accuracy("chat", issued_at=T0, scored_at=T0, model="m", steps=5, scores={}) is False
    assert store.accuracy("chat")[0]["mase"] == 0.9


def test_unreachable_database_is_a_store_error():
    with pytest.raises(StoreError, match="cannot reach"):
        Store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_external_history_query_binds_values(store, db_url):
    from prewarm.store.external import fetch_history

    with store.begin() as c:
        c.exec_driver_sql("CREATE TABLE my_traffic (name VARCHAR(50), at_time TIMESTAMP, n INTEGER)")
        c.execute(sa.text("INSERT INTO my_traffic VALUES (:a, :b, :c)"), [
            {"a": "chat", "b": (T0 + timedelta(minutes=i)).replace(tzinfo=None), "c": i} for i in range(5)]
            + [{"a": "x'; DROP TABLE my_traffic; --", "b": T0.replace(tzinfo=None), "c": 99}])
    query = "SELECT at_time AS ts, n AS requests FROM my_traffic WHERE name = :endpoint AND at_time >= :start AND at_time < :end"
    rows = fetch_history(db_url, query, endpoint="chat", start=T0, end=T0 + timedelta(minutes=3))
    assert rows == [(T0 + timedelta(minutes=i), i) for i in range(3)]
    # A hostile endpoint name is a value, not SQL.
    rows = fetch_history(db_url, query, endpoint="x'; DROP TABLE my_traffic; --", start=T0,
                         end=T0 + timedelta(minutes=1))
    assert rows == [(T0, 99)]
    with store.begin() as c:
        c.exec_driver_sql("DROP TABLE my_traffic")


def test_prune_keeps_each_endpoints_last_readiness_measurements(store):
    """Old times to ready go, but never an endpoint's last 50: an endpoint that rarely scales
    out keeps its learned lead. The database ranks them (window function) on each dialect."""
    import sqlalchemy as sa
    from prewarm.store import schema as t

    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(60):
        store.record_readiness("busy", started_at=base + timedelta(minutes=i), target=1, seconds=float(i), ready=True)
    store.record_readiness("busy", started_at=base, target=1, seconds=999.0, ready=False)
    for i in range(3):
        store.record_readiness("rare", started_at=base + timedelta(minutes=i), target=1, seconds=100.0 + i, ready=True)
    last_50 = [float(i) for i in range(59, 9, -1)]  # newest first
    assert store.ready_durations("busy") == last_50
    assert store.ready_durations_of(["busy", "rare"], limit=2) == {"busy": [59.0, 58.0], "rare": [102.0, 101.0]}
    assert store.prune(base - timedelta(minutes=1))["readiness"] == 0, "only measurements before the cutoff go"
    pruned = store.prune(base + timedelta(days=30))
    assert pruned["readiness"] == 11  # busy's 10 oldest successful ones and its failed one
    assert store.ready_durations("busy") == last_50
    assert store.ready_durations("rare") == [102.0, 101.0, 100.0]
    with store.begin() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.readiness)).scalar() == 53


def test_endpoint_names_are_case_sensitive(store):
    """`chat`, `Chat` and `CHAT` are three endpoints on every store (MariaDB's default
    collation merged them: a file for CHAT was stored under chat, and chat and Chat in one
    write failed with IntegrityError)."""
    ids = {n: store.endpoint_id(n) for n in ("chat", "Chat", "CHAT")}
    assert len(set(ids.values())) == 3
    fresh = Store(store.url)  # no cached ids: the database tells them apart
    try:
        assert fresh.endpoint_ids(["CHAT", "chat", "cHaT"]) == {"CHAT": ids["CHAT"], "chat": ids["chat"]}
        with fresh.begin() as c:
            fresh.insert_counts(c, ids["chat"], [CountRow("chat", T0, 1)])
            fresh.insert_counts(c, ids["Chat"], [CountRow("Chat", T0, 2)])
        assert [h[1] for h in fresh.history("Chat", T0, T0 + timedelta(minutes=1))] == [2]
    finally:
        fresh.close()


def test_static_guard_judgements_are_kept_in_time_order_and_pruned_to_the_one_in_force(store):
    """Every judgement that succeeded goes to the history in the same write as static_guards (a
    failed attempt does not); the ones in force over a window; prune keeps the one in force at
    the cut."""
    days = [T0 + timedelta(days=7 * k) for k in range(4)]
    for k, at in enumerate(days):
        store.save_static_guard("chat", mode="auto", attempted_at=at, span_s=7 * 86400.0,
                                setting={"floor": k, "keepalive_s": 600.0} if k % 2 else None,
                                smoothing_s=3600.0, evidence={"verdict": "held", "target": 0.02})
        store.save_static_guard("chat", mode="auto", attempted_at=at + timedelta(hours=1), error="boom")
    store.save_static_guard("other", mode="always", attempted_at=days[0], setting={"floor": 9, "keepalive_s": None})

    def judged(rows):
        return [r["judged_at"] for r in rows]

    assert judged(store.static_guard_judgements("chat", days[0] - timedelta(seconds=1), days[3])) == days
    # In force over [days[1] + 1 h, days[2] + 1 h]: the one made at days[1], then days[2].
    rows = store.static_guard_judgements("chat", days[1] + timedelta(hours=1), days[2] + timedelta(hours=1))
    assert judged(rows) == days[1:3] and rows[0]["judged_at"].tzinfo is not None
    assert rows[0] == {"mode": "auto", "judged_at": days[1], "span_s": 7 * 86400.0,
                       "setting": {"floor": 1, "keepalive_s": 600.0}, "smoothing_s": 3600.0,
                       "evidence": {"verdict": "held", "target": 0.02}}
    assert rows[1]["setting"] is None
    assert judged(store.static_guard_judgements("chat", days[2], days[2])) == [days[2]]  # in force at an instant
    assert store.static_guard_judgements("chat", days[0] - timedelta(seconds=1), days[0] - timedelta(seconds=1)) == []
    assert store.static_guard_judgements("nope", days[0], days[3]) == []
    assert store.static_guards(["chat"])["chat"]["judged_at"] == days[3]  # the last, as before

    pruned = store.prune(days[2] + timedelta(days=1))
    assert pruned["static_guard_judgements"] == 2  # days[0] and days[1]: superseded before the cut
    assert judged(store.static_guard_judgements("chat", days[0], days[3])) == days[2:]
    assert judged(store.static_guard_judgements("other", days[0], days[3])) == [days[0]]  # still in force
    assert store.prune(days[2] + timedelta(days=1))["static_guard_judgements"] == 0


def test_the_judgement_history_starts_with_each_endpoints_last_judgement(db_url):
    """Migration 0011 fills the history with the judgement static_guards kept (earlier ones
    were not kept), and only with judgements that succeeded."""
    engine = sa.create_engine(db_url)
    migrate.upgrade(engine, "0010")
    from prewarm.store import schema

    with engine.begin() as c:  # the tables as they are at 0010 (static_guards is unchanged since)
        c.execute(schema.endpoints.insert(), [{"id": 1, "name": "chat", "created_at": T0},
                                              {"id": 2, "name": "young", "created_at": T0}])
        c.execute(schema.static_guards.insert().values(
            endpoint_id=1, mode="auto", judged_at=T0, span_s=600000.0, attempted_at=T0,
            setting='{"floor": 1, "keepalive_s": 600.0}', smoothing_s=7200.0,
            evidence='{"verdict": "above the target", "target": 0.02}'))
        c.execute(schema.static_guards.insert().values(endpoint_id=2, mode="auto", attempted_at=T0, error="boom"))
    migrate.upgrade(engine)
    engine.dispose()
    store = Store(db_url)
    try:
        rows = store.static_guard_judgements("chat", T0, T0)
        assert rows == [{"mode": "auto", "judged_at": T0, "span_s": 600000.0,
                         "setting": {"floor": 1, "keepalive_s": 600.0}, "smoothing_s": 7200.0,
                         "evidence": {"verdict": "above the target", "target": 0.02}}]
        assert store.static_guard_judgements("young", T0 - timedelta(days=1), T0 + timedelta(days=1)) == []
    finally:
        store.close()
