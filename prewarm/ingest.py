"""CSV ingest: per-minute counts (`ts,endpoint,requests[,cold_starts,p50_ms,p99_ms]`) or
per-request logs (one row per request, aggregated to per-minute counts).

All or nothing: every row is checked first (time stamp, counts, duplicates within the file
and against what is stored); with any bad row nothing is written unless skip_bad. Repeating
an ingest is idempotent: identical rows already stored are left alone.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Callable

from .errors import InputError
from .store import CountRow, Store
from .units import parse_timestamp

COUNT_COLUMNS = ("ts", "endpoint", "requests", "cold_starts", "p50_ms", "p99_ms")
# Per-request logs we know: time column -> endpoint column (None: the --endpoint name).
KNOWN_REQUEST_LOGS = {"gmt_create": "checkpoint_model_version_id", "TIMESTAMP": None}
MAX_ERRORS_SHOWN = 20


@dataclass
class BadRow:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class IngestReport:
    file: str
    format: str
    rows_read: int = 0
    inserted: int = 0
    unchanged: int = 0
    bad: list[BadRow] = field(default_factory=list)
    endpoints: dict[str, int] = field(default_factory=dict)  # endpoint -> rows inserted

    def as_dict(self) -> dict:
        return {"file": self.file, "format": self.format, "rows_read": self.rows_read,
                "inserted": self.inserted, "unchanged": self.unchanged, "skipped_bad": len(self.bad),
                "bad": [str(b) for b in self.bad[:MAX_ERRORS_SHOWN]], "endpoints": self.endpoints}


def ingest_file(store: Store, path: str | Path, *, endpoint: str | None = None, skip_bad: bool = False,
                default_tz: tzinfo = timezone.utc, ts_column: str | None = None,
                endpoint_column: str | None = None,
                progress: Callable[[int], None] | None = None) -> IngestReport:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise InputError(f"{path}: empty file, expected a header such as ts,endpoint,requests")
    header = [h.strip() for h in header]
    fmt, rows, bad = _parse(path, header, reader, endpoint, default_tz, ts_column, endpoint_column, progress)
    report = IngestReport(file=str(path), format=fmt, rows_read=len(rows) + len(bad))
    if endpoint is not None and "endpoint" in header:
        rows = [(line, r) for line, r in rows if r.endpoint == endpoint]
    rows, dup_bad = _dedupe(rows)
    bad += dup_bad
    _write(store, path, rows, bad, skip_bad, report)
    return report


def _parse(path, header, reader, endpoint, default_tz, ts_column, endpoint_column, progress):
    if "requests" in header and (ts_column or "ts") in header:
        return "counts", *_parse_counts(path, header, reader, endpoint, default_tz, ts_column, progress)
    time_col = ts_column or next((c for c in KNOWN_REQUEST_LOGS if c in header), None)
    if time_col is None or time_col not in header:
        raise InputError(
            f"{path}: columns {', '.join(header)}: expected ts,endpoint,requests (per-minute counts) "
            f"or a per-request log with a time column ({', '.join(KNOWN_REQUEST_LOGS)}, or name it with --ts-column)")
    ep_col = endpoint_column or KNOWN_REQUEST_LOGS.get(time_col)
    if ep_col is not None and ep_col not in header:
        raise InputError(f"{path}: no column {ep_col!r} to take the endpoint from")
    if ep_col is None and endpoint is None:
        raise InputError(f"{path}: a per-request log without an endpoint column needs --endpoint NAME")
    return "requests", *_parse_requests(path, header, reader, time_col, ep_col, endpoint, default_tz, progress)


def _check_count_columns(path, header, ts_column) -> None:
    """Per-minute counts: every column is one ingest reads. Another name is refused, so a
    misspelled `cold_start` is not dropped without a word."""
    allowed = [*COUNT_COLUMNS, *([ts_column] if ts_column and ts_column not in COUNT_COLUMNS else [])]
    unknown = [c for c in header if c not in allowed]
    if unknown:
        raise InputError(f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(c) for c in unknown)} in the header; per-minute counts take "
                         f"{', '.join(allowed)}")


def _parse_counts(path, header, reader, endpoint, default_tz, ts_column, progress):
    _check_count_columns(path, header, ts_column)
    idx = {name: header.index(name) for name in COUNT_COLUMNS if name in header}
    if ts_column:
        idx["ts"] = header.index(ts_column)
    if "endpoint" not in idx and endpoint is None:
        raise InputError(f"{path}: no endpoint column; give --endpoint NAME")
    rows: list[tuple[int, CountRow]] = []
    bad: list[BadRow] = []
    for line, rec in _records(reader, progress):
        try:
            if len(rec) != len(header):
                raise ValueError(f"{len(rec)} fields, the header has {len(header)}")
            ts = parse_timestamp(rec[idx["ts"]], default_tz)
            if ts.second or ts.microsecond:
                raise ValueError(f"time stamp {rec[idx['ts']]!r} is not on a minute boundary")
            name = rec[idx["endpoint"]].strip() if "endpoint" in idx else endpoint
            if not name:
                raise ValueError("empty endpoint name")
            rows.append((line, CountRow(
                endpoint=name, ts=ts, requests=_count(rec[idx["requests"]], "requests"),
                cold_starts=_optional(rec, idx, "cold_starts", _count),
                p50_ms=_optional(rec, idx, "p50_ms", _number), p99_ms=_optional(rec, idx, "p99_ms", _number))))
        except ValueError as exc:
            bad.append(BadRow(line, str(exc)))
    return rows, bad


def _parse_requests(path, header, reader, time_col, ep_col, endpoint, default_tz, progress):
    ti = header.index(time_col)
    ei = header.index(ep_col) if ep_col else None
    counts: dict[tuple[str, datetime], int] = defaultdict(int)
    first_line: dict[tuple[str, datetime], int] = {}
    bad: list[BadRow] = []
    for line, rec in _records(reader, progress):
        try:
            ts = parse_timestamp(rec[ti], default_tz).replace(second=0, microsecond=0)
            name = rec[ei].strip() if ei is not None else endpoint
            if not name:
                raise ValueError(f"empty {ep_col}")
        except (ValueError, IndexError) as exc:
            bad.append(BadRow(line, str(exc)))
            continue
        counts[(name, ts)] += 1
        first_line.setdefault((name, ts), line)
    # Within a log's span, a minute without requests had zero requests: make that explicit,
    # so it is not mistaken for a gap in the data.
    by_ep: dict[str, list[datetime]] = defaultdict(list)
    for name, ts in counts:
        by_ep[name].append(ts)
    rows: list[tuple[int, CountRow]] = []
    for name, stamps in by_ep.items():
        t, end = min(stamps), max(stamps)
        while t <= end:
            rows.append((first_line.get((name, t), 0), CountRow(name, t, counts.get((name, t), 0))))
            t += timedelta(minutes=1)
    return rows, bad


def _records(reader, progress: Callable[[int], None] | None):
    """(line number, fields) of the non-blank data rows, reporting progress every 5000 lines."""
    for line, rec in enumerate(reader, start=2):
        if progress and line % 5000 == 0:
            progress(5000)
        if rec and any(x.strip() for x in rec):
            yield line, rec


def _number(text: str, column: str) -> float:
    """A finite, non-negative number; the error names the column and the value."""
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{column} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} {raw!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{column} {raw!r} is negative")
    return value


def _count(text: str, column: str) -> int:
    value = _number(text, column)
    if value != int(value):
        raise ValueError(f"{column} {text.strip()!r} is not a whole number")
    return int(value)


def _optional(rec, idx, column, parse):
    if column not in idx or not rec[idx[column]].strip():
        return None
    return parse(rec[idx[column]], column)


def _dedupe(rows: list[tuple[int, CountRow]]) -> tuple[list[tuple[int, CountRow]], list[BadRow]]:
    seen: dict[tuple[str, datetime], tuple[int, CountRow]] = {}
    out, bad = [], []
    for line, row in rows:
        key = (row.endpoint, row.ts)
        if key in seen:
            first_line, first = seen[key]
            if first.values() != row.values():
                bad.append(BadRow(line, f"duplicate of line {first_line} ({row.endpoint} at {row.ts:%Y-%m-%dT%H:%M}Z) "
                                        f"with a different value"))
            continue
        seen[key] = (line, row)
        out.append((line, row))
    return out, bad


def _write(store: Store, path: Path, rows: list[tuple[int, CountRow]], bad: list[BadRow],
           skip_bad: bool, report: IngestReport) -> None:
    by_ep: dict[str, list[tuple[int, CountRow]]] = defaultdict(list)
    for line, row in rows:
        by_ep[row.endpoint].append((line, row))
    with store.begin() as conn:
        new: dict[str, list[CountRow]] = {}
        for name, items in by_ep.items():
            eid = store.endpoint_id(name, conn=conn, create=True)
            stamps = [r.ts for _, r in items]
            stored = store.existing_counts(conn, eid, min(stamps), max(stamps))
            fresh = []
            for line, row in items:
                old = stored.get(row.ts)
                if old is None:
                    fresh.append((line, row))
                elif tuple(old) == row.values():
                    report.unchanged += 1
                else:
                    bad.append(BadRow(line, f"{name} at {row.ts:%Y-%m-%dT%H:%M}Z is stored with requests={old[0]}, "
                                            f"the file says {row.requests}"))
            new[name] = fresh
        if bad and not skip_bad:
            bad.sort(key=lambda b: b.line)
            shown = "\n  ".join(str(b) for b in bad[:MAX_ERRORS_SHOWN])
            more = f"\n  ... and {len(bad) - MAX_ERRORS_SHOWN} more" if len(bad) > MAX_ERRORS_SHOWN else ""
            conn.rollback()
            raise InputError(f"{path}: {len(bad)} bad row(s), nothing written "
                             f"(--skip-bad writes the good rows):\n  {shown}{more}")
        bad_lines = {b.line for b in bad}
        for name, items in new.items():
            fresh = [row for line, row in items if line not in bad_lines]
            eid = store.endpoint_id(name, conn=conn)
            report.inserted += store.insert_counts(conn, eid, fresh)
            report.endpoints[name] = len(fresh)
    report.bad = sorted(bad, key=lambda b: b.line)


