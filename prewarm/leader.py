"""Leader election: only the leader runs the scheduler and talks to providers.

- PostgreSQL: a session-held advisory lock on a dedicated connection outside the pool,
  with TCP keepalives. Any error on that connection means leadership is lost.
- MariaDB/MySQL: GET_LOCK() on a dedicated connection, same rules.
- SQLite: an exclusive file lock beside the database; a second daemon refuses to start.

Imports nothing of prewarm above the store.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from .errors import PrewarmError
from .logs import ConditionLog

log = logging.getLogger("prewarm.leader")
LOCK_NAME = "prewarm-leader"
WARN_EVERY_S = 60.0  # while the lock cannot be asked for, one warning a minute (the poll is far more often)


class AlreadyRunning(PrewarmError):
    pass


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...
    #: After try_acquire or still_held answered False: True when the database could not be
    #: asked (so whether another daemon leads is unknown), False when it answered.
    unreachable: bool


def _key(name: str) -> int:
    # A stable signed 64-bit key for pg_advisory_lock, derived from the lock name.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class _SessionLock:
    """A lock held by one database session on a dedicated connection outside the pool: it is
    ours exactly as long as that session lives, and any error on it means leadership is lost.
    Subclasses say how to connect, take, check and give back the lock."""

    clock = staticmethod(time.monotonic)

    def __init__(self) -> None:
        self.conn = None
        self.held = False
        self.reachable: bool | None = None  # did the last attempt reach the database
        self.unreachable = False  # its negation once asked (the LeaderLock protocol's word)
        self.last_error = ""
        # One warning per outage, then one a minute (on this lock's clock, which tests set).
        self._outage = ConditionLog(log, every_s=WARN_EVERY_S, clock=lambda: self.clock())

    def _connect(self):
        raise NotImplementedError

    def _take(self) -> bool:
        raise NotImplementedError

    def _check(self) -> bool:
        raise NotImplementedError

    def _give_back(self) -> None:
        raise NotImplementedError

    def try_acquire(self) -> bool:
        try:
            if self.conn is None or getattr(self.conn, "closed", False):
                self.conn = self._connect()
            self.held = self._take()
        except Exception as exc:  # noqa: BLE001 - any error: not leader
            self.reachable, self.unreachable, self.last_error = False, True, str(exc)
            self._outage.failing(logging.WARNING, "leader lock: %s", exc)
            self._drop()
        else:
            self.reachable, self.unreachable, self.last_error = True, False, ""
            self._outage.ok("leader lock: the database answers again")
        return self.held

    def still_held(self) -> bool:
        if not self.held or self.conn is None:
            return False
        try:
            ok = self._check()
            self.reachable, self.unreachable = True, False
        except Exception as exc:  # noqa: BLE001
            log.error("leader connection failed, leadership lost: %s", exc)
            ok = False
            self.reachable, self.unreachable, self.last_error = False, True, str(exc)
        if not ok:
            self._drop()
        return ok

    def release(self) -> None:
        if self.conn is not None and self.held and not getattr(self.conn, "closed", False):
            try:
                self._give_back()
            except Exception:  # noqa: BLE001 - closing the session releases it anyway
                pass
        self._drop()

    def _drop(self) -> None:
        self.held = False
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.conn = None


class PostgresLock(_SessionLock):
    """Session-held advisory lock. Keepalives both ways, scaled to the takeover time:

    - the server probes this connection (tcp_keepalives_*, tcp_user_timeout set for this
      session only), so a leader whose host dies or is cut off loses the lock after about
      takeover/2, and a standby polling every takeover/5 takes over within the takeover time;
    - the client probes too, so a leader cut off learns it, and until it does the daemon
      stops acting once its lease (takeover/3 after the last good check) runs out: the old
      leader stops before the server can hand the lock to another.
    """

    def __init__(self, url: str, name: str = LOCK_NAME, takeover_s: float = 15.0) -> None:
        super().__init__()
        self.url = make_url(url)
        self.key = _key(name)
        self.takeover_s = takeover_s

    def _connect(self):
        import psycopg
        u = self.url
        dead_after = max(2.0, self.takeover_s / 2)  # no answer for this long: the session is dead
        idle = max(1, int(dead_after / 3))
        interval = max(1, int(dead_after / 6))
        server = (f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
                  f"-c tcp_keepalives_count=2 -c tcp_user_timeout={int(dead_after * 1000)}")
        return psycopg.connect(
            host=u.host or "localhost", port=u.port or 5432, user=u.username, password=u.password,
            dbname=u.database, autocommit=True, connect_timeout=max(2, int(dead_after)),
            application_name="prewarm-leader", options=server,
            keepalives=1, keepalives_idle=idle, keepalives_interval=interval, keepalives_count=2,
            tcp_user_timeout=int(dead_after * 1000))

    def _take(self) -> bool:
        return bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0])

    def _check(self) -> bool:
        return self.conn.execute("SELECT 1").fetchone()[0] == 1

    def _give_back(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))


class MySQLLock(_SessionLock):
    """GET_LOCK() on a dedicated connection; IS_USED_LOCK confirms this session holds it."""

    def __init__(self, url: str, name: str = LOCK_NAME) -> None:
        super().__init__()
        self.url = make_url(url)
        self.name = name

    def _connect(self):
        import pymysql
        u = self.url
        return pymysql.connect(host=u.host or "localhost", port=u.port or 3306, user=u.username,
                               password=u.password or "", database=u.database, autocommit=True,
                               connect_timeout=5, read_timeout=10, write_timeout=10)

    def _query(self, sql: str):
        with self.conn.cursor() as cur:
            cur.execute(sql, (self.name,))
            return cur.fetchone()[0]

    def _take(self) -> bool:
        return self._query("SELECT GET_LOCK(%s, 0)") == 1

    def _check(self) -> bool:
        return self._query("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()") == 1

    def _give_back(self) -> None:
        self._query("SELECT RELEASE_LOCK(%s)")


class FileLock:
    """SQLite has no sessions to hold a lock: an exclusive flock beside the database file."""

    unreachable = False  # a file beside the database: never in doubt

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.fh = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise AlreadyRunning(f"another prewarm daemon ({holder}) is running on this SQLite database "
                                 f"(lock {self.path}); SQLite supports one daemon — use PostgreSQL or MariaDB "
                                 f"for a standby") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        self.fh = fh
        return True

    def still_held(self) -> bool:
        return self.fh is not None

    def release(self) -> None:
        if self.fh is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def for_url(url: str, takeover_s: float = 15.0) -> LeaderLock:
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "postgresql":
        return PostgresLock(url, takeover_s=takeover_s)
    if backend in ("mysql", "mariadb"):
        return MySQLLock(url)
    if backend == "sqlite":
        db = u.database or ":memory:"
        return FileLock(db + ".lock" if db != ":memory:" else f"/tmp/prewarm-memory-{os.getpid()}.lock")
    raise PrewarmError(f"no leader lock for database backend {backend!r}")
