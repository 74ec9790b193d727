"""What a sync writes, on SQLite, PostgreSQL and MariaDB: new minutes inserted (and read back
by the paths every other command uses), changed minutes updated and never duplicated, minutes
without a value after the first answered recorded as missing (not zero) and cleared when a
value comes, and an error that records itself without moving the watermark."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prewarm.store.source_store import Answered, missing_minutes, sync_states, write_answers

T0 = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


def m(k: int) -> datetime:
    return T0 + timedelta(minutes=k)


def test_write_answers(store):
    now = m(30)
    # minutes 2..5 answered (3 has a cold start), 6 and 7 not: missing; 0 and 1 precede the data.
    first = write_answers(store, [Answered("chat", "prometheus", m(0), m(8),
                                           {m(2): (4, 0), m(3): (5, 1), m(4): (0, 0), m(5): (7, 0)})], now)
    assert first["chat"].inserted == 4 and first["chat"].missing == 2 and first["chat"].watermark == m(8)
    assert store.history("chat", m(0), m(8)) == [(m(2), 4, 0), (m(3), 5, 1), (m(4), 0, 0), (m(5), 7, 0)]
    assert missing_minutes(store, "chat", m(0), m(8)) == [m(6), m(7)]
    frame = store.history_frame(["chat"], m(0), m(8))
    assert frame["y"].tolist() == [4, 5, 0, 7]
    assert [t.minute for t in frame["ds"]] == [2, 3, 4, 5]

    # Late data: minute 5 revised, 6 arrives, 7 still missing, 8 and 9 new.
    again = write_answers(store, [Answered("chat", "prometheus", m(4), m(10),
                                           {m(4): (0, 0), m(5): (9, 0), m(6): (2, 0), m(8): (1, 0), m(9): (1, 0)})],
                          now)
    assert (again["chat"].inserted, again["chat"].updated, again["chat"].missing) == (3, 1, 1)
    rows = store.history("chat", m(0), m(10))
    assert [r[0].minute for r in rows] == [2, 3, 4, 5, 6, 8, 9] and rows[3] == (m(5), 9, 0)
    assert missing_minutes(store, "chat", m(0), m(10)) == [m(7)]
    st = sync_states(store, ["chat"])["chat"]
    assert st.watermark == m(10) and st.first_minute == m(2) and st.error is None and st.synced_at == now

    # A failed read: recorded, nothing else changes; then a success clears it.
    write_answers(store, [Answered("chat", "prometheus", m(10), m(12), {}, error="timeout after 10 s")], m(31))
    write_answers(store, [Answered("chat", "prometheus", m(10), m(12), {}, error="timeout after 10 s")], m(32))
    st = sync_states(store, ["chat"])["chat"]
    assert (st.watermark, st.error, st.failures, st.attempted_at, st.synced_at) == (
        m(10), "timeout after 10 s", 2, m(32), now)
    assert len(store.history("chat", m(0), m(12))) == 7
    write_answers(store, [Answered("chat", "prometheus", m(10), m(12), {m(10): (3, None), m(11): (1, None)})],
                  m(33), keep_missing_after={"chat": m(8)})
    st = sync_states(store, ["chat"])["chat"]
    assert st.error is None and st.failures == 0 and st.watermark == m(12)
    assert missing_minutes(store, "chat", m(0), m(12)) == []  # minute 7 is older than kept
