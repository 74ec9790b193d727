"""Session-held leader locks on both server databases (the PREWARM_TEST_PG and
PREWARM_TEST_MARIADB servers, as every database test): one holder; leadership ends with the
session (released, or the connection killed from the server side)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from prewarm.leader import MySQLLock, PostgresLock

from ..conftest import MARIA_ADMIN as MARIA, PG_ADMIN as PG


def _kill(url: str, lock) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": lock.conn.info.backend_pid})
        else:
            c.execute(sa.text(f"KILL {int(lock.conn.thread_id())}"))
    engine.dispose()


@pytest.mark.parametrize("url, make", [
    pytest.param(PG, lambda: PostgresLock(PG, name="prewarm-test-lock", takeover_s=3), marks=pytest.mark.postgres),
    pytest.param(MARIA, lambda: MySQLLock(MARIA, name="prewarm-test-lock"), marks=pytest.mark.mariadb),
], ids=["postgresql", "mariadb"])
def test_one_holder_and_the_session_is_the_lease(url, make):
    first, second = make(), make()
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False and first.still_held()
        assert not second.unreachable, "the database answered: another holds the lock"
        first.release()
        assert second.try_acquire() is True
        # The server ends the holder's session: the holder learns it has lost the lock,
        # and another can take it at once.
        _kill(url, second)
        assert second.still_held() is False and second.unreachable
        assert first.try_acquire() is True and not first.unreachable
    finally:
        first.release()
        second.release()


@pytest.mark.parametrize("url, make", [
    ("postgresql+psycopg://u@127.0.0.1:{port}/db", lambda url: PostgresLock(url, takeover_s=3)),
    ("mysql+pymysql://u@127.0.0.1:{port}/db", MySQLLock),
], ids=["postgresql", "mariadb"])
def test_a_lock_that_cannot_be_asked_for_warns_once_a_minute(url, make, caplog):
    """Issue 12 item 13: a standby (or a leader cut off) asks for the lock every poll; with the
    database away that was a warning every poll. One a minute now, saying how many it left out."""
    import socket

    from prewarm import leader

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lock = make(url.format(port=port))
    now = [1000.0]
    lock.clock = lambda: now[0]
    with caplog.at_level("WARNING", logger="prewarm.leader"):
        for _ in range(5):
            assert lock.try_acquire() is False and lock.unreachable
            now[0] += 1.2
        assert len(caplog.records) == 1
        now[0] += leader.WARN_EVERY_S
        lock.try_acquire()
    assert len(caplog.records) == 2 and "4 repeats not logged" in caplog.records[1].getMessage()
