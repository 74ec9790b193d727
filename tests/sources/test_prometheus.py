"""The prometheus source against a real Prometheus server scraping a test exporter: the
counts stored per minute are the requests the exporter served in that minute, across a
Prometheus restart and a counter reset; late data is revised, not duplicated; minutes
Prometheus has no samples for are missing, not zero; a bad query names the endpoint."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from prewarm import config
from promtest import write_config
from prewarm.store import Store
from prewarm.store.source_store import missing_minutes, sync_states
from prewarm.sync import Syncer

pytestmark = pytest.mark.slow

QUERY = "sum(increase(test_requests_total[1m]))"
COLD = "sum(increase(test_cold_starts_total[1m]))"


def settings_for(tmp_path, url: str, query: str = QUERY) -> config.Settings:
    return config.load(write_config(tmp_path, url, query, shared='delay = "0s"',
                                    endpoint=f"cold_starts_query = '{COLD}'"))


def stored(store: Store, start: datetime, end: datetime) -> dict[int, tuple[int, int | None]]:
    """minute index from `start` -> (requests, cold_starts)"""
    from prewarm.store import schema as t
    import sqlalchemy as sa

    eid = store.endpoint_id("chat", create=False)
    rc = t.request_counts.c
    with store.begin() as c:
        rows = c.execute(sa.select(rc.ts, rc.requests, rc.cold_starts)
                         .where(rc.endpoint_id == eid, rc.ts >= start, rc.ts < end).order_by(rc.ts)).all()
    return {int((ts - start).total_seconds() // 60): (req, cold) for ts, req, cold in rows}


def test_counts_per_minute_match_the_exporter(tmp_path, prometheus, exporter, sim_start):
    t0 = sim_start
    m = lambda minute, second=0: t0 + timedelta(minutes=minute, seconds=second)  # noqa: E731
    # minute -> requests: 0:0, 1:7 (one cold), 2:0, 3:5, 4:8, 5:0
    for at, what, n in [(m(1, 10), "requests", 3), (m(1, 40), "requests", 4), (m(1, 40), "cold", 1),
                        (m(3, 20), "requests", 5), (m(4, 10), "requests", 2), (m(4, 40), "requests", 6),
                        (m(6, 10), "requests", 3), (m(6, 40), "requests", 4), (m(6, 40), "cold", 2)]:
        exporter.at(at, what, n)
    settings = settings_for(tmp_path, prometheus.url)
    store = Store(settings.store.url)
    syncer = Syncer(settings, store)
    try:
        exporter.limit = m(6)
        prometheus.wait_scraped(m(6))
        first = syncer.run(m(6))["chat"]
        assert first.error is None
        # First sight backfills the [forecast] history (14 days: two pages of query_range);
        # minutes before the exporter's first sample are not missing, they are before the data.
        assert first.start == m(6) - timedelta(days=14) and first.end == m(6)
        assert stored(store, t0, m(6)) == {0: (0, 0), 1: (7, 1), 2: (0, 0), 3: (5, 0), 4: (8, 0), 5: (0, 0)}
        assert first.inserted == 6 and first.missing == 0
        _forecast_and_plan_read_it(tmp_path, m(6))

        # Late data: minute 6 read while Prometheus has only its first half, then again.
        exporter.limit = m(6, 30)
        prometheus.wait_scraped(m(6, 30))
        partial = syncer.run(m(7))["chat"]
        assert stored(store, m(6), m(7)) == {0: (3, 0)} and partial.inserted == 1
        exporter.limit = m(7)
        prometheus.wait_scraped(m(7))
        revised = syncer.run(m(7))["chat"]
        assert stored(store, m(6), m(7)) == {0: (7, 2)}
        assert (revised.inserted, revised.updated) == (0, 1)

        # Prometheus down: the sync fails, nothing stored changes, the watermark stays.
        prometheus.stop()
        down = syncer.run(m(8))["chat"]
        assert down.error and "cannot reach" in down.error and down.retryable
        state = sync_states(store, ["chat"])["chat"]
        assert state.watermark == m(7) and state.failures == 1 and "cannot reach" in state.error
        assert stored(store, t0, m(7))[6] == (7, 2)

        # Three minutes pass unscraped (7, 8, 9); requests in them are never served.
        exporter.at(m(8, 30), "requests", 9)
        exporter.clock = m(10)
        prometheus.start()
        # After the restart: minute 10 plain, minute 11 with a counter reset (the exporting
        # process restarted) between its requests.
        exporter.at(m(10, 30), "requests", 2)
        exporter.at(m(11, 10), "requests", 1)
        exporter.at(m(11, 20), "reset")
        exporter.at(m(11, 40), "requests", 6)
        exporter.at(m(11, 40), "cold", 1)
        exporter.limit = m(12)
        prometheus.wait_scraped(m(12))
        after = syncer.run(m(12))["chat"]
        assert after.error is None
        assert stored(store, t0, m(12)) == {0: (0, 0), 1: (7, 1), 2: (0, 0), 3: (5, 0), 4: (8, 0), 5: (0, 0),
                                           6: (7, 2), 10: (2, 0), 11: (7, 1)}
        assert missing_minutes(store, "chat", t0, m(12)) == [m(7), m(8), m(9)]
        assert after.updated == 0  # what was stored before the restart is what Prometheus still answers
        state = sync_states(store, ["chat"])["chat"]
        assert state.error is None and state.failures == 0 and state.watermark == m(12)
        # Served per minute, from the exporter's own record: what the store holds where it has a value.
        served = _served_per_minute(exporter.served, t0)
        for minute, (requests, _cold) in stored(store, t0, m(12)).items():
            assert served.get(minute, 0) == requests, minute
    finally:
        syncer.close()
        store.close()


def _served_per_minute(served, t0) -> dict[int, int]:
    """Requests per minute from the exporter's samples (the counter's rise between consecutive
    samples, a drop being a restart from zero), each rise in the minute of its sample; rises
    across an unscraped gap were never served and are left out."""
    out: dict[int, int] = {}
    for (t_prev, r_prev, _), (t, r, _) in zip(served, served[1:]):
        if t - t_prev > timedelta(seconds=2):
            continue
        rise = r - r_prev if r >= r_prev else r
        minute = int(((t - timedelta(microseconds=1)) - t0).total_seconds() // 60)
        out[minute] = out.get(minute, 0) + rise
    return out


def test_a_bad_query_names_the_endpoint_and_prometheus_message(tmp_path, prometheus, exporter, sim_start, capsys):
    from prewarm.cli.main import main

    settings_for(tmp_path, prometheus.url, query="sum(increase(test_requests_total[1m])")
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(tmp_path / "prewarm.toml"), "sync"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "endpoint chat" in err and "bad_data" in err and "parse error" in err


def test_many_series_is_refused(tmp_path, prometheus, exporter):
    settings = settings_for(tmp_path, prometheus.url, query='label_replace(vector(1), "a", "x", "", "") or vector(2)')
    store = Store(settings.store.url)
    syncer = Syncer(settings, store)
    try:
        r = syncer.run(exporter.clock)["chat"]
    finally:
        syncer.close()
        store.close()
    assert r.error and "2 series" in r.error and "sum(" in r.error and not r.retryable



def _forecast_and_plan_read_it(tmp_path, at: datetime) -> None:
    """The README's quick start after `prewarm sync`: `forecast` and `plan` read what it stored."""
    import contextlib
    import io

    from prewarm.cli.main import main

    cfg = str(tmp_path / "prewarm.toml")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--config", cfg, "forecast", "chat", "--horizon", "1h", "--at", at.isoformat(), "--json"])
    rows = json.loads(out.getvalue())
    # Six minutes of 0-8 requests (3.3 on average): the forecast is of that order.
    assert len(rows) == 60 and all(0.5 < r["mean"] < 9 for r in rows)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--config", cfg, "plan", "chat", "--horizon", "1h", "--at", at.isoformat(), "--json"])
    plan = json.loads(out.getvalue())[0]
    assert plan["endpoint"] == "chat" and plan["error"] is None and plan["commands"]


def test_sync_reports_an_endpoint_an_ingest_held_as_busy_not_failed(tmp_path, monkeypatch, capsys):
    """The CLI's rendering of a sync that left an endpoint to its next run because an ingest
    held it (the store's side: tests/test_store_concurrency.py): said in the table and in
    --json, and not a failure (exit 0). The syncer's answer is given: no source is read."""
    from prewarm import sync
    from prewarm.cli.main import main

    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    busy = sync.SyncResult("chat", "prometheus", at - timedelta(minutes=10), at, watermark=at - timedelta(minutes=10),
                           busy=True)
    monkeypatch.setattr(sync.Syncer, "run", lambda self, now, names=None, since=None: {"chat": busy})
    write_config(tmp_path, "http://127.0.0.1:9", QUERY)
    main(["--config", str(tmp_path / "prewarm.toml"), "sync"])  # returns: exit 0
    out = capsys.readouterr()
    assert "held by an ingest: read again next sync" in out.out and "error" not in out.err
    main(["--config", str(tmp_path / "prewarm.toml"), "sync", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["endpoints"][0]["busy"] is True and doc["endpoints"][0]["error"] is None
