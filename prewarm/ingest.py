"""CSV ingest: per-minute counts (`ts,endpoint,requests[,cold_starts,p50_ms,p99_ms]`) or
per-request logs (one row per request, aggregated to per-minute counts).

All or nothing: the files of one ingest are written in one transaction. Every row is checked
(time stamp, counts, names, values the stores refuse, duplicates within the file and against
what is stored); with any bad row nothing of any file is written unless skip_bad. Repeating
an ingest is idempotent: identical rows already stored are left alone.

Streaming: a file is read and written CHUNK_ROWS rows at a time inside that transaction, so
memory does not grow with the file but for the in-file duplicate check (12 bytes a row) and,
for a per-request log, one counter per endpoint and minute.

Naive time stamps are read in a zone (`[daemon] timezone`). A local time the clocks skip
(spring forward) is refused. A local time that occurs twice (fall back) is read as its first
occurrence; for each endpoint, once such a time goes back by a minute or more (e.g. 01:59
then 01:00), it and the following times of the repeated hour are read as the second
occurrence, until a time outside that hour comes (see `LocalTimes`).
"""
from __future__ import annotations

import csv
import logging
import math
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from .errors import InputError
from .store import CountRow, Store
from .store.store import run_again_on_deadlock
from .store.schema import NAME_LENGTH
from .units import parse_iso

log = logging.getLogger(__name__)

COUNT_COLUMNS = ("ts", "endpoint", "requests", "cold_starts", "p50_ms", "p99_ms")
# Per-request logs we know: time column -> endpoint column (None: the --endpoint name).
KNOWN_REQUEST_LOGS = {"gmt_create": "checkpoint_model_version_id", "TIMESTAMP": None}
MAX_ERRORS_SHOWN = 20
BAD_KEPT = 1000  # bad rows kept for the report (all are counted)
CHUNK_ROWS = 50_000  # rows parsed, checked and written at a time
# What every store holds (INTEGER columns are 32-bit on PostgreSQL and MariaDB; MariaDB's
# FLOAT is single precision; forecasting works in pandas nanosecond times).
MAX_COUNT = 2**31 - 1
MAX_LATENCY_MS = 86_400_000.0  # a day
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)  # exclusive


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
    bad: list[BadRow] = field(default_factory=list)  # the first BAD_KEPT, by line
    bad_count: int = 0
    endpoints: dict[str, int] = field(default_factory=dict)  # endpoint -> rows inserted

    def add_bad(self, bad: Iterable[BadRow]) -> None:
        for b in bad:
            self.bad_count += 1
            if len(self.bad) < BAD_KEPT:
                self.bad.append(b)

    def as_dict(self) -> dict:
        return {"file": self.file, "format": self.format, "rows_read": self.rows_read,
                "inserted": self.inserted, "unchanged": self.unchanged, "skipped_bad": self.bad_count,
                "bad": [str(b) for b in self.bad[:MAX_ERRORS_SHOWN]], "endpoints": self.endpoints}


def ingest_file(store: Store, path: str | Path, *, endpoint: str | None = None, skip_bad: bool = False,
                default_tz: tzinfo = timezone.utc, ts_column: str | None = None,
                endpoint_column: str | None = None,
                progress: Callable[[int], None] | None = None) -> IngestReport:
    return ingest_files(store, [path], endpoint=endpoint, skip_bad=skip_bad, default_tz=default_tz,
                        ts_column=ts_column, endpoint_column=endpoint_column, progress=progress)[0]


def ingest_files(store: Store, paths: Sequence[str | Path], *, endpoint: str | None = None,
                 skip_bad: bool = False, default_tz: tzinfo = timezone.utc, ts_column: str | None = None,
                 endpoint_column: str | None = None,
                 progress: Callable[[int], None] | None = None) -> list[IngestReport]:
    """Ingest `paths` in one transaction: a refused file (bad rows without skip_bad, or a
    file that cannot be read) leaves nothing written, of it or of the files before it."""
    if endpoint is not None:
        try:
            endpoint = check_name(endpoint)
        except ValueError as exc:
            raise InputError(f"--endpoint: {exc}") from None
    # The endpoints are locked in the order the files meet them (PostgreSQL, MariaDB), so an
    # ingest and another writer of several endpoints (the daemon's plan writes, another
    # ingest) can wait on each other; the database breaks that by rolling one back. When it is
    # this one, nothing was written: the files are read again from the start.
    return run_again_on_deadlock(
        lambda: _ingest_files(store, paths, endpoint, skip_bad, default_tz, ts_column, endpoint_column, progress),
        "ingest", "reading the files again", log)


def _ingest_files(store, paths, endpoint, skip_bad, default_tz, ts_column, endpoint_column,
                  progress) -> list[IngestReport]:
    reports: list[IngestReport] = []
    with store.begin_write() as conn:
        writer = _Writer(store, conn, skip_bad)
        for path in map(Path, paths):
            try:
                reports.append(_ingest(writer, path, endpoint, default_tz, ts_column, endpoint_column, progress))
            except InputError as exc:
                if reports:
                    done = ", ".join(r.file for r in reports)
                    raise InputError(f"{exc}\n(nothing of {done} was written either: the files of one "
                                     f"ingest are written together or not at all)") from None
                raise
    return reports


def _ingest(writer: "_Writer", path: Path, endpoint, default_tz, ts_column, endpoint_column, progress) -> IngestReport:
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if not header:
                raise InputError(f"{path}: empty file, expected a header such as ts,endpoint,requests")
            header = [h.strip() for h in header]
            lines = _Lines(progress)
            fmt, rows = _parse(path, header, reader, endpoint, LocalTimes(default_tz), ts_column,
                               endpoint_column, lines)
            report = IngestReport(file=str(path), format=fmt)
            writer.start(report)
            for chunk in _chunked(rows, CHUNK_ROWS):
                writer.write(chunk, endpoint if "endpoint" in header else None)
            report.rows_read = lines.rows
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file (near line {reader.line_num + 1})") from None
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: {exc}") from None
    writer.finish(path)
    return report


def _parse(path, header, reader, endpoint, local, ts_column, endpoint_column, lines):
    """The file's format and its rows: (line, CountRow) or BadRow, in file order (a
    per-request log's counted minutes after its bad rows)."""
    if "requests" in header and (ts_column or "ts") in header:
        return "counts", _parse_counts(path, header, reader, endpoint, local, ts_column, lines)
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
    return "requests", _parse_requests(path, header, reader, time_col, ep_col, endpoint, local, lines)


def _check_count_columns(path, header, ts_column) -> None:
    """Per-minute counts: every column is one ingest reads. Another name is refused, so a
    misspelled `cold_start` is not dropped without a word."""
    allowed = [*COUNT_COLUMNS, *([ts_column] if ts_column and ts_column not in COUNT_COLUMNS else [])]
    unknown = [c for c in header if c not in allowed]
    if unknown:
        raise InputError(f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(c) for c in unknown)} in the header; per-minute counts take "
                         f"{', '.join(allowed)}")


def _parse_counts(path, header, reader, endpoint, local, ts_column, lines):
    _check_count_columns(path, header, ts_column)
    idx = {name: header.index(name) for name in COUNT_COLUMNS if name in header}
    if ts_column:
        idx["ts"] = header.index(ts_column)
    if "endpoint" not in idx and endpoint is None:
        raise InputError(f"{path}: no endpoint column; give --endpoint NAME")
    return _count_rows(header, reader, idx, endpoint, local, lines)


def _count_rows(header, reader, idx, endpoint, local, lines) -> Iterator[tuple[int, CountRow] | BadRow]:
    for line, rec in _records(reader, lines):
        try:
            if len(rec) != len(header):
                raise ValueError(f"{len(rec)} fields, the header has {len(header)}")
            name = check_name(rec[idx["endpoint"]]) if "endpoint" in idx else endpoint
            ts = local.utc(rec[idx["ts"]], name)
            if ts.second or ts.microsecond:
                raise ValueError(f"time stamp {rec[idx['ts']].strip()!r} is not on a minute boundary")
            yield line, CountRow(
                endpoint=name, ts=ts, requests=_count(rec[idx["requests"]], "requests"),
                cold_starts=_optional(rec, idx, "cold_starts", _count),
                p50_ms=_optional(rec, idx, "p50_ms", _latency), p99_ms=_optional(rec, idx, "p99_ms", _latency))
        except ValueError as exc:
            yield BadRow(line, str(exc))


def _parse_requests(path, header, reader, time_col, ep_col, endpoint, local, lines):
    """Requests counted per (endpoint, minute) over the whole file (the counters are what is
    held in memory), then the minutes in time order, zeros within each endpoint's span."""
    ti = header.index(time_col)
    ei = header.index(ep_col) if ep_col else None
    counts: dict[tuple[str, datetime], int] = defaultdict(int)
    first_line: dict[tuple[str, datetime], int] = {}
    for line, rec in _records(reader, lines):
        try:
            name = check_name(rec[ei], ep_col) if ei is not None else endpoint
            ts = local.utc(rec[ti], name).replace(second=0, microsecond=0)
        except (ValueError, IndexError) as exc:
            yield BadRow(line, str(exc))
            continue
        counts[(name, ts)] += 1
        first_line.setdefault((name, ts), line)
    # Within a log's span, a minute without requests had zero requests: make that explicit,
    # so it is not mistaken for a gap in the data.
    by_ep: dict[str, list[datetime]] = defaultdict(list)
    for name, ts in counts:
        by_ep[name].append(ts)
    for name, stamps in by_ep.items():
        t, end = min(stamps), max(stamps)
        while t <= end:
            n = counts.get((name, t), 0)
            if n > MAX_COUNT:
                yield BadRow(first_line[(name, t)], f"{n} requests in the minute {t:%Y-%m-%dT%H:%M}Z, over {MAX_COUNT}")
            else:
                yield first_line.get((name, t), 0), CountRow(name, t, n)
            t += timedelta(minutes=1)


class _Lines:
    """Counts the data rows read, and reports progress every 5000 lines."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress, self.rows = progress, 0


def _records(reader, lines: _Lines):
    """(line number, fields) of the non-blank data rows."""
    for line, rec in enumerate(reader, start=2):
        if lines.progress and line % 5000 == 0:
            lines.progress(5000)
        if rec and any(x.strip() for x in rec):
            lines.rows += 1
            yield line, rec


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class LocalTimes:
    """Time stamps as written to aware UTC: with 'Z' or an offset as they say; naive ones in
    `zone`, by these rules (the clocks' changes make some local times skipped, others
    repeated):

    - a local time the clocks skip (spring forward, e.g. 02:30 in New York on the second
      Sunday of March) does not exist: refused;
    - a local time that occurs twice (fall back, 01:00-01:59 in New York on the first Sunday
      of November) is read as its first occurrence (before the clocks go back), until, for
      the same endpoint, such a time is a minute or more earlier than the one before it
      (01:59 then 01:00; a request log's jitter of seconds is not a step back): from there
      on, times in the repeated hour are read as the second occurrence, until a time outside
      it comes. A file in time order is thus read right; a file with only the
      second occurrence, or out of order, should carry offsets.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._fixed = zone.utcoffset(None) is not None  # UTC or a fixed offset: no changes
        self._repeated: dict[str | None, tuple[datetime, int]] = {}  # endpoint -> (last time, fold)

    def utc(self, text: str, endpoint: str | None) -> datetime:
        moment = parse_iso(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone) if self._fixed else self._local(moment, endpoint)
        try:
            utc = moment.astimezone(timezone.utc)
        except OverflowError:
            utc = EARLIEST - timedelta(days=1) if moment.year < 2 else LATEST
        if not EARLIEST <= utc < LATEST:
            raise ValueError(f"time stamp {text.strip()!r} is outside {EARLIEST:%Y}-{LATEST.year - 1} (UTC)")
        return utc

    def _local(self, naive: datetime, endpoint: str | None) -> datetime:
        first, second = naive.replace(tzinfo=self.zone), naive.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            self._repeated.pop(endpoint, None)
            return first
        if first.astimezone(timezone.utc).astimezone(self.zone).replace(tzinfo=None) != naive:
            raise ValueError(f"local time {naive:%Y-%m-%d %H:%M} does not exist in {self.zone} "
                             f"(the clocks skip it); give the time stamp an offset")
        last = self._repeated.get(endpoint)
        fold = 1 if last is not None and (last[1] or last[0] - naive >= timedelta(minutes=1)) else 0
        self._repeated[endpoint] = (naive, fold)
        return second if fold else first


@lru_cache(maxsize=4096)  # a file names a few endpoints many times
def check_name(text: str, column: str = "endpoint") -> str:
    """An endpoint name every store holds: 1 to NAME_LENGTH characters, no control characters."""
    name = text.strip()
    if not name:
        raise ValueError(f"empty {column}")
    if len(name) > NAME_LENGTH:
        raise ValueError(f"{column} {name[:20]!r}... is {len(name)} characters, at most {NAME_LENGTH}")
    bad = next((ch for ch in name if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"{column} {name!r} contains the control character {bad!r}")
    return name


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
    if value > MAX_COUNT:
        raise ValueError(f"{column} {text.strip()!r} is over {MAX_COUNT}")
    return int(value)


def _latency(text: str, column: str) -> float:
    value = _number(text, column)
    if value > MAX_LATENCY_MS:
        raise ValueError(f"{column} {text.strip()!r} is over {MAX_LATENCY_MS:.0f} ms (a day)")
    return value


def _optional(rec, idx, column, parse):
    if column not in idx or not rec[idx[column]].strip():
        return None
    return parse(rec[idx[column]], column)


class _Seen:
    """The minutes a file has had rows for, per endpoint, with the line of the first: sorted
    arrays (12 bytes a row), merged a chunk at a time."""

    def __init__(self) -> None:
        self._by_ep: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def lines(self, endpoint: str, minutes: np.ndarray) -> np.ndarray:
        """The first line of each of `minutes` in earlier chunks, 0 where there was none."""
        keys, lines = self._by_ep.get(endpoint, (np.empty(0, np.int64), np.empty(0, np.int32)))
        if not len(keys):
            return np.zeros(len(minutes), np.int32)
        pos = np.minimum(np.searchsorted(keys, minutes), len(keys) - 1)
        return np.where(keys[pos] == minutes, lines[pos], 0)

    def add(self, endpoint: str, minutes: np.ndarray, lines: np.ndarray) -> None:
        order = np.argsort(minutes, kind="stable")
        minutes, lines = minutes[order], lines[order]
        if endpoint not in self._by_ep:
            self._by_ep[endpoint] = (minutes, lines)
            return
        keys, known = self._by_ep[endpoint]
        pos = np.searchsorted(keys, minutes)
        self._by_ep[endpoint] = (np.insert(keys, pos, minutes), np.insert(known, pos, lines))


class _Writer:
    """Checks each chunk against the file so far and what is stored, and writes its new
    rows, all in the caller's transaction. Once a file has a bad row and skip_bad is off,
    nothing more is written (the transaction will be rolled back) but checking goes on, so
    that the refusal lists every bad row."""

    def __init__(self, store: Store, conn: sa.Connection, skip_bad: bool) -> None:
        self.store, self.conn, self.skip_bad = store, conn, skip_bad
        self._eids: dict[str, int] = {}

    def start(self, report: IngestReport) -> None:
        self.report, self.seen = report, _Seen()

    def write(self, chunk: list, only: str | None) -> None:
        # endpoint -> minute -> the chunk's rows for it, in file order
        by_ep: dict[str, dict[datetime, list[tuple[int, CountRow]]]] = defaultdict(lambda: defaultdict(list))
        bad = []
        for item in chunk:
            if isinstance(item, BadRow):
                bad.append(item)
            elif only is None or item[1].endpoint == only:
                by_ep[item[1].endpoint][item[1].ts].append(item)
        for name, rows in by_ep.items():
            bad += self._write_endpoint(name, rows, bad)
        self.report.add_bad(sorted(bad, key=lambda b: b.line))

    def _write_endpoint(self, name: str, rows: dict[datetime, list[tuple[int, CountRow]]],
                        bad_so_far) -> list[BadRow]:
        report, bad = self.report, []
        eid = self._eid(name)
        minutes = np.fromiter((int(ts.timestamp()) // 60 for ts in rows), np.int64, len(rows))
        lines = np.fromiter((same[0][0] for same in rows.values()), np.int32, len(rows))
        earlier = self.seen.lines(name, minutes)
        stored = self.store.stored_counts(self.conn, eid, list(rows))
        fresh = []
        for same, first_line in zip(rows.values(), earlier.tolist()):
            line, row = same[0]
            old = stored.get(row.ts)
            if first_line:  # an earlier chunk had this minute: stored now if it was good
                ref = (first_line, old)
                same = same if old is not None else []
            else:
                ref = (line, row.values())
                same = same[1:]
                if old is None:
                    fresh.append(row)
                elif old == row.values():
                    report.unchanged += 1
                else:
                    bad.append(BadRow(line, f"{name} at {row.ts:%Y-%m-%dT%H:%M}Z is stored with requests={old[0]}, "
                                            f"the file says {row.requests}"))
            bad += [_duplicate(dup_line, ref[0], dup) for dup_line, dup in same if dup.values() != ref[1]]
        new = earlier == 0
        self.seen.add(name, minutes[new], lines[new])
        if self.skip_bad or not (report.bad_count or bad_so_far or bad):
            report.inserted += self.store.insert_counts(self.conn, eid, fresh)
            report.endpoints[name] = report.endpoints.get(name, 0) + len(fresh)
        return bad

    def _eid(self, name: str) -> int:
        if name not in self._eids:
            eid = self.store.endpoint_id(name, conn=self.conn, create=True)
            # Concurrent ingests of the same endpoint take turns (PostgreSQL, MariaDB): the
            # second reads what the first stored, instead of inserting the same minutes again.
            self.store.lock_endpoints(self.conn, [eid])
            self._eids[name] = eid
        return self._eids[name]

    def finish(self, path: Path) -> None:
        report = self.report
        report.bad.sort(key=lambda b: b.line)
        if report.bad_count and not self.skip_bad:
            shown = "\n  ".join(str(b) for b in report.bad[:MAX_ERRORS_SHOWN])
            more = (f"\n  ... and {report.bad_count - MAX_ERRORS_SHOWN} more"
                    if report.bad_count > MAX_ERRORS_SHOWN else "")
            raise InputError(f"{path}: {report.bad_count} bad row(s), nothing written "
                             f"(--skip-bad writes the good rows):\n  {shown}{more}")


def _duplicate(line: int, first_line: int, row: CountRow) -> BadRow:
    return BadRow(line, f"duplicate of line {first_line} ({row.endpoint} at {row.ts:%Y-%m-%dT%H:%M}Z) "
                        f"with a different value")
