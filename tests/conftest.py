"""Shared fixtures. Database tests run on SQLite, PostgreSQL and MariaDB, each in a fresh
database created for the test session and dropped after it."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers beside the tests (demo_endpoints)
TRACES = REPO.parent / "shared" / "traces"
PG_ADMIN = os.environ.get("PREWARM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIA_ADMIN = os.environ.get("PREWARM_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(autouse=True)
def _own_audit_spool(tmp_path, monkeypatch):
    """Each test's audit spool in its own directory (the default follows STATE_DIRECTORY):
    records spooled by one test's outage must not be written into the next test's database.
    Child processes (the daemon tests) inherit it."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _prewarm_logger_restored():
    """The CLI run in-process sets up the `prewarm` logger (its own stderr handler, no
    propagation): put it back after each test, so a later test's caplog still sees records."""
    import logging

    logger = logging.getLogger("prewarm")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def _server_db(admin_url: str, kind: str):
    name = f"prewarm_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{kind} is not reachable at {admin_url}: {exc.orig}")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return admin, name, url


@pytest.fixture(scope="session")
def pg_url():
    admin, name, url = _server_db(PG_ADMIN, "PostgreSQL")
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="session")
def maria_url():
    admin, name, url = _server_db(MARIA_ADMIN, "MariaDB")
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()


def _wipe(url: str) -> None:
    """Drop every table so each test starts from an empty schema."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as c:
        if engine.dialect.name in ("mysql", "mariadb"):
            c.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        meta.drop_all(c)
        c.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request, tmp_path):
    """A URL of an empty database on each of the three engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prewarm.db'}"
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "maria_url")
    _wipe(url)
    return url


def empty_database(url: str) -> None:
    """A server database emptied and brought to the schema head (as an operator upgrades it)."""
    from prewarm.store import migrate

    _wipe(url)
    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


@pytest.fixture
def store(db_url):
    from prewarm.store import Store
    from prewarm.store import migrate

    # Server databases do not upgrade themselves; tests upgrade explicitly, as an operator would.
    engine = sa.create_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    s = Store(db_url)
    yield s
    s.close()
