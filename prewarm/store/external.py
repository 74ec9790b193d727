"""History from the user's own table: a SQL query with bound parameters against any
SQLAlchemy URL, returning `ts, requests` rows.

The query text is the user's; the values (:start, :end, :endpoint) are always bound by the
driver, never formatted into the SQL.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from ..errors import ConfigError, StoreError
from .store import _redact, make_engine

_engines: dict[str, sa.Engine] = {}


def fetch_history(url: str, query: str, *, endpoint: str, start: datetime,
                  end: datetime) -> list[tuple[datetime, int]]:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    stmt = sa.text(query)
    params = {"start": _bindable(start, engine), "end": _bindable(end, engine), "endpoint": endpoint}
    wanted = {name: params[name] for name in stmt.compile().params if name in params}
    try:
        with engine.connect() as conn:
            result = conn.execute(stmt, wanted)
            cols = list(result.keys())
            if "ts" not in cols or "requests" not in cols:
                raise ConfigError(f"history query for {endpoint!r} must return columns ts, requests "
                                  f"(it returned {', '.join(cols)})")
            rows = [(r._mapping["ts"], r._mapping["requests"]) for r in result]
    except sa.exc.OperationalError as exc:
        raise StoreError(f"history source {_redact(url)} for {endpoint!r}: {exc.orig}") from None
    except sa.exc.StatementError as exc:
        raise ConfigError(f"history query for {endpoint!r} failed: {exc.orig}") from None
    out = []
    for ts, requests in rows:
        out.append((_as_utc(ts), int(requests or 0)))
    out.sort()
    return out


def _bindable(moment: datetime, engine: sa.Engine):
    # SQLite and MariaDB compare naive datetimes; PostgreSQL takes aware ones.
    if engine.dialect.name == "postgresql":
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _as_utc(value) -> datetime:
    if isinstance(value, str):
        from ..units import parse_timestamp
        return parse_timestamp(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
