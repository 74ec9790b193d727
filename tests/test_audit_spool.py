"""The audit spool: records that wait for the database survive the process."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from prewarm import audit_spool
from prewarm.audit_spool import AuditSpool, default_path

TS = datetime(2026, 3, 2, 8, 15, tzinfo=timezone.utc)


def entry(target: int, **more) -> dict:
    return dict(ts=TS, provider="dry-run", verb="apply", requested={"target": target}, reason={"rule": "x"},
                result="ok", error=None, retryable=None, duration_ms=1.5, command_id=7, **more)


def test_records_round_trip_in_order_and_flush_stops_where_the_database_does(tmp_path):
    spool = AuditSpool(tmp_path / "s" / "audit.jsonl")
    assert not spool and spool.count() == 0
    for target in (1, 4, 2):
        spool.append("api", entry(target))
    assert spool and spool.count() == 3
    seen = []

    def database_up_for_two(endpoint, e):
        if len(seen) == 2:
            return False
        seen.append((endpoint, e))
        return True

    assert spool.flush(database_up_for_two) == 2
    assert [e["requested"]["target"] for _, e in seen] == [1, 4]
    assert seen[0] == ("api", entry(1)), "what comes back is what went in, ts an aware datetime"
    assert spool.count() == 1
    assert spool.flush(lambda endpoint, e: True) == 1
    assert not spool and not spool.path.exists(), "an empty spool is removed"


def test_a_torn_line_is_skipped_and_the_rest_kept(tmp_path, caplog):
    spool = AuditSpool(tmp_path / "audit.jsonl")
    spool.append("api", entry(1))
    with open(spool.path, "a") as f:
        f.write('{"endpoint": "api", "ts": "2026-03')  # power cut in the middle of a write
    spool.append("api", entry(3))
    written = []
    assert spool.flush(lambda endpoint, e: written.append(e["requested"]["target"]) or True) == 2
    assert written == [1, 3]
    assert "line 2 unreadable" in caplog.text


def test_a_full_spool_refuses_more(tmp_path, monkeypatch):
    monkeypatch.setattr(audit_spool, "MAX_SPOOL_BYTES", 600)
    spool = AuditSpool(tmp_path / "audit.jsonl")
    appended = 0
    with pytest.raises(OSError, match="is full"):
        for target in range(10):
            spool.append("api", entry(target))
            appended += 1
    assert 1 < appended < 10 and spool.count() == appended


def test_default_path_follows_systemd_state_directory(monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/prewarm:/var/lib/other")
    assert str(default_path()) == "/var/lib/prewarm/audit-spool.jsonl"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert str(default_path()) == ".prewarm/audit-spool.jsonl"
