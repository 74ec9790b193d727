"""Files prewarm creates are the owner's alone, whatever the umask: the database holds the
history and the audit log, the spool the records that wait for it."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timezone

import pytest

from prewarm.audit_spool import AuditSpool

from .test_cli import run


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual default, under which a plain open() makes 0644
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_the_database_0600(tmp_path, umask_022):
    run("init", cwd=tmp_path, check=0)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("prewarm.db")]
    assert tmp_path / "prewarm.db" in files
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    # the starter config too: it may come to hold a store password or a provider token
    assert mode(tmp_path / "prewarm.toml") == 0o600


def test_the_audit_spool_and_its_directory_are_private(tmp_path, umask_022):
    spool = AuditSpool(tmp_path / "state" / "audit-spool.jsonl")
    entry = {"ts": datetime(2026, 1, 1, tzinfo=timezone.utc), "verb": "apply", "result": "ok"}
    spool.append("chat", entry)
    spool.append("chat", entry)
    assert mode(tmp_path / "state") == 0o700
    assert mode(spool.path) == 0o600 and mode(spool._lock_path) == 0o600
    calls = []

    def write_the_first(endpoint, e):  # the database takes one record, then is away again
        calls.append(e)
        return len(calls) == 1

    assert spool.flush(write_the_first) == 1
    assert mode(spool.path) == 0o600  # the rewrite that keeps the rest
    assert spool.count() == 1
