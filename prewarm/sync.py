"""Keep the store filled from each endpoint's metrics source (`prewarm sync`, and the
daemon's `sync` job on the leader).

Data flows one way: source -> store. Per endpoint, each sync reads the minutes from its
watermark (less `revise`, so late data updates the minutes it changes) to `now - delay`;
on first sight it backfills the endpoint's [forecast] history, within what the source keeps.
A source that is down or slow changes nothing stored: plans keep running on what is there
(fail warm), the error is recorded for `status` and `explain`, and counted in
prewarm_source_errors_total; prewarm_source_lag_seconds shows how far behind the store is.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Iterable

from .errors import ConfigError, InputError
from .sources.base import MINUTE, Answer, Read, Source, floor_minute

if TYPE_CHECKING:
    from .config import EndpointSettings, Settings
    from .store import Store

log = logging.getLogger("prewarm.sync")
CHUNK_MINUTES = 200_000  # minutes read and written a transaction (a 14-day backfill: ~10 endpoints)
RETENTION_MARGIN = timedelta(minutes=5)  # stay clear of the edge of what the source keeps


@dataclass(frozen=True)
class SyncResult:
    endpoint: str
    kind: str
    start: datetime
    end: datetime
    inserted: int = 0
    updated: int = 0
    missing: int = 0
    error: str | None = None
    retryable: bool = True
    watermark: datetime | None = None
    busy: bool = False  # another writer (an ingest) held the endpoint: read again next sync


class Syncer:
    """Sources for the configured endpoints, built once and kept while their tables stay the
    same (the daemon keeps one across cycles; a config reload rebuilds what changed)."""

    def __init__(self, settings: "Settings", store: "Store", metrics=None) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._sources: dict[str, tuple[str, Source]] = {}

    def endpoints(self, names: Iterable[str] | None = None) -> list["EndpointSettings"]:
        fed = [ep for ep in self.settings.endpoints if ep.source is not None]
        if names is None:
            return fed
        wanted = list(names)
        for name in wanted:
            ep = self.settings.endpoint(name)  # InputError naming the configured ones
            if ep.source is None:
                raise InputError(f"endpoint {name!r} has no [endpoints.source] table: nothing to sync "
                                 "(see docs/sources/)")
        return [ep for ep in fed if ep.name in wanted]

    def source(self, ep: "EndpointSettings") -> Source:
        from .sources import registry

        table = self.settings.source_for(ep)
        key = json.dumps(table, sort_keys=True, default=str)
        cached = self._sources.get(ep.name)
        if cached is None or cached[0] != key:
            try:
                src = registry.create(table, ep.name)
            except (registry.UnknownSource, registry.ValidationError) as exc:
                raise ConfigError(f"endpoint {ep.name}: source: {exc}") from None
            self._sources[ep.name] = (key, src)
        return self._sources[ep.name][1]

    def window(self, ep: "EndpointSettings", src: Source, state, now: datetime,
               since: datetime | None) -> tuple[datetime, datetime]:
        """[start, end) to read: from the watermark less `revise` (a backfill of the forecast
        history on first sight, or from --since), to the last minute the source has settled."""
        cfg = src.config
        end = floor_minute(now - timedelta(seconds=cfg.delay_s))
        floor = floor_minute(end - timedelta(seconds=self.settings.forecast_for(ep).history_s))
        kept = src.retention()
        oldest = floor_minute(now - timedelta(seconds=kept)) + RETENTION_MARGIN if kept else None
        if since is not None:
            start = floor_minute(since)
        elif state is None or state.watermark is None:
            start = floor
        else:
            start = max(floor, floor_minute(min(state.watermark, end) - timedelta(seconds=cfg.revise_s)))
        if oldest is not None and start < oldest:
            start = floor_minute(oldest) + MINUTE
        return start, end

    def run(self, now: datetime, names: Iterable[str] | None = None,
            since: datetime | None = None) -> dict[str, SyncResult]:
        from .store.source_store import sync_states

        eps = self.endpoints(names)
        states = sync_states(self.store, [ep.name for ep in eps])
        reads: list[tuple["EndpointSettings", Read]] = []
        results: dict[str, SyncResult] = {}
        for ep in eps:
            src = self.source(ep)
            start, end = self.window(ep, src, states.get(ep.name), now, since)
            if start >= end:
                state = states.get(ep.name)
                results[ep.name] = SyncResult(ep.name, src.kind, start, end,
                                              watermark=state.watermark if state else None)
                continue
            reads.append((ep, Read(src, start, end)))
        # One kind at a time (a kind may batch its API calls), in chunks that bound memory.
        by_kind: dict[type, list[tuple]] = {}
        for ep, read in reads:
            by_kind.setdefault(type(read.source), []).append((ep, read))
        # The next chunk is read while this one is written (a backfill is read-bound and
        # write-bound in turns; the source's server and the database work meanwhile).
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="sync-read") as reader:
            for cls, items in by_kind.items():
                chunks = list(_chunks_by_minutes(items))
                pending = reader.submit(cls.read_many, [r for _, r in chunks[0]]) if chunks else None
                for k, chunk in enumerate(chunks):
                    answers = pending.result()
                    if k + 1 < len(chunks):
                        pending = reader.submit(cls.read_many, [r for _, r in chunks[k + 1]])
                    results.update(self._write(chunk, answers, now))
        self._observe(results, now)
        return results

    def _write(self, chunk: list[tuple], answers: list[Answer], now: datetime) -> dict[str, SyncResult]:
        from .store.source_store import Answered, write_answers

        rows, keep = [], {}
        for (ep, read), answer in zip(chunk, answers):
            src = read.source
            values = answer.minutes  # minute -> Minute, a (requests, cold_starts) tuple
            if answer.error is None and src.config.absent == "zero":
                values = dict(values)
                zero = (0, 0 if src.reports_cold_starts() else None)
                ts = read.start
                while ts < read.end:
                    values.setdefault(ts, zero)
                    ts += MINUTE
            rows.append(Answered(ep.name, src.kind, read.start, read.end, values,
                                 None if answer.error is None else _short(answer.error)))
            keep[ep.name] = floor_minute(now - timedelta(seconds=self.settings.forecast_for(ep).history_s))
        written = write_answers(self.store, rows, now, keep)
        out = {}
        for (ep, read), answer in zip(chunk, answers):
            w = written[ep.name]
            err = answer.error
            if err is not None:
                log.warning("sync %s: %s; plans keep running on the stored history", ep.name, err)
            elif w.busy:
                log.info("sync %s: another writer (an ingest) holds the endpoint; its minutes are read "
                         "again at the next sync", ep.name)
            out[ep.name] = SyncResult(ep.name, read.source.kind, read.start, read.end, w.inserted, w.updated,
                                      w.missing, None if err is None else _short(err),
                                      True if err is None else err.retryable, w.watermark, w.busy)
        return out

    def _observe(self, results: dict[str, SyncResult], now: datetime) -> None:
        if self.metrics is None:
            return
        for r in results.values():
            if r.error is not None:
                self.metrics.source_errors.labels(r.endpoint, r.kind).inc()
            if r.watermark is not None:
                self.metrics.source_lag.labels(r.endpoint).set(max(0.0, (now - r.watermark).total_seconds()))

    def close(self) -> None:
        for _, src in self._sources.values():
            src.close()
        self._sources.clear()


def _short(err) -> str:
    """An error as status and explain show it: the source's message and its code."""
    code = f" [{err.code}]" if getattr(err, "code", None) else ""
    return f"{err.message}{code}" if hasattr(err, "message") else str(err)


def _chunks_by_minutes(items: list[tuple]) -> Iterable[list[tuple]]:
    chunk, size = [], 0
    for item in items:
        minutes = int((item[1].end - item[1].start).total_seconds() // 60)
        if chunk and size + minutes > CHUNK_MINUTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += minutes
    if chunk:
        yield chunk


def source_status(settings: "Settings", store: "Store", now: datetime) -> dict[str, dict]:
    """Per endpoint fed by a source: kind, watermark, lag, last success, error. For status
    and explain ('history 7 min behind: source timeout ...')."""
    from .store.source_store import sync_states

    fed = [ep for ep in settings.endpoints if ep.source is not None]
    if not fed:
        return {}
    states = sync_states(store, [ep.name for ep in fed])
    out = {}
    for ep in fed:
        kind = settings.source_for(ep).get("kind")
        st = states.get(ep.name)
        if st is None:
            out[ep.name] = {"kind": kind, "watermark": None, "lag_s": None, "synced_at": None,
                            "error": None, "failures": 0, "summary": f"{kind}: not synced yet"}
            continue
        lag = None if st.watermark is None else max(0.0, (now - st.watermark).total_seconds())
        behind = "" if lag is None else f"history {lag / 60:.0f} min behind"
        if st.error:
            summary = f"{behind or 'not synced yet'}: source {st.error}"
        else:
            summary = f"{kind}: {behind or 'synced'}"
        out[ep.name] = {"kind": kind, "watermark": st.watermark, "lag_s": lag, "synced_at": st.synced_at,
                        "error": st.error, "failures": st.failures, "summary": summary}
    return out


def schedule_sync(daemon, now: datetime) -> None:
    """The daemon's `sync` job (leader only: the scheduler exists while leading), every cycle
    interval, first at once (a backfill on first sight). Like the cycle job: coalesced, never
    two at a time, a run later than one interval skipped (the next reads the same minutes).
    A failing source is logged and counted; it never stops the job or the cycles."""
    interval = daemon.settings.daemon.cycle_interval_s
    daemon.scheduler.add_job(_sync_job, "interval", args=[daemon], seconds=interval, id="sync",
                             replace_existing=True, misfire_grace_time=max(1, int(interval)),
                             next_run_time=now)


_syncers: dict[int, Syncer] = {}


def _sync_job(daemon) -> None:
    rt = daemon.rt
    if rt is None or daemon.cancel.is_set():
        return
    syncer = _syncers.get(id(rt))
    if syncer is None or syncer.store is not rt.store:
        for old in _syncers.values():
            old.close()
        _syncers.clear()
        syncer = _syncers[id(rt)] = Syncer(rt.settings, rt.store, daemon.metrics)
    syncer.settings = rt.settings  # a reload changes them; sources whose table changed are rebuilt
    try:
        results = syncer.run(daemon.clock())
    except Exception as exc:  # noqa: BLE001 - e.g. the database is down: the next run retries
        log.error("sync failed: %s; plans keep running on the stored history", exc)
        return
    failed = [r for r in results.values() if r.error]
    if failed:
        log.warning("sync: %d of %d endpoints failed", len(failed), len(results))
