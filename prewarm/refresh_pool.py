"""Forecast refreshes in background processes (`[daemon] refresh_processes`).

A refresh reads two weeks of history and fits a model. At fleet scale that is most of a
cycle's work: 10,000 endpoints refreshed every 10 minutes is about 1,000 refreshes a minute,
some 30 s of one core, beside the minute's planning. With a pool, the daemon's cycle hands
the refreshes that are due to other processes (other cores) and plans every endpoint from
the forecast it holds; a new forecast is taken up by the first cycle after it is made.

What does not change: an endpoint with no usable forecast (a new runtime, a new endpoint,
changed [forecast] settings, or one past its cover) is planned only once its refresh is done,
so the cycle waits for those; a refresh that fails keeps the cached forecast while it covers
the horizon (fail warm), and is tried again at the next cycle. The children run the same code
as an in-cycle refresh (refresh.forecast_batches) on their own database connections.

A refresh that hangs (a database that accepts connections and never answers, a stuck model)
would otherwise hang every cycle that waits for it, and hold its endpoints as "in flight"
for good. A job running longer than `job_timeout_s` ([daemon] refresh_timeout) fails: the
children are killed and replaced, every job in flight fails with it (its endpoints keep their
forecasts and are submitted again by the next cycle).
"""
from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

log = logging.getLogger("prewarm.refresh_pool")

JOB_SIZE = 250  # endpoints a job: small enough that forecasts arrive through the minute
PARENT_CHECK_S = 2.0  # how often a child checks that the daemon is still there
WAIT_POLL_S = 1.0  # while a cycle waits for a job: how often it checks the jobs' deadlines


@dataclass
class Job:
    future: Future
    names: list[str]
    fsettings: Any
    made_at: datetime  # the cycle's now: the forecast is cached as made then
    #: when the job was first seen handed to a child (monotonic). Not the submit time: at a
    #: start, 40 jobs of a 10,000-endpoint fleet queue behind each other for minutes.
    running_since: float | None = None


class RefreshPool:
    """Processes that refresh forecasts for one runtime. `submit` never blocks; `collect`
    returns the finished jobs, first waiting for the jobs of the endpoints it is given."""

    def __init__(self, processes: int, store_url: str, job_timeout_s: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if processes < 1:
            raise ValueError("a refresh pool needs at least one process")
        self.processes = processes
        self.store_url = store_url
        self.job_timeout_s = job_timeout_s
        self._clock = clock
        self.jobs: list[Job] = []
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn: a child inherits no database connection, lock or scheduler thread of the daemon.
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_child_init, initargs=_logging_setup())

    def busy(self) -> set[str]:
        """Endpoints with a refresh submitted and not yet collected."""
        return {name for job in self.jobs for name in job.names}

    def submit(self, eps: list, fsettings, now: datetime, cutoff: datetime, span: float,
               save: bool) -> dict[str, str]:
        """Hand `eps` to the children in jobs of JOB_SIZE. Returns the endpoints that could not
        be handed over, with why (the pool broke, and broke again once restarted)."""
        restarted = False
        for i in range(0, len(eps), JOB_SIZE):
            batch = eps[i:i + JOB_SIZE]
            while True:
                try:
                    future = self._executor.submit(refresh_job, self.store_url, batch, fsettings, cutoff, span, save)
                    break
                except (BrokenProcessPool, RuntimeError) as exc:
                    # A child died (killed, out of memory): the pool is unusable. Start a new one
                    # and go on with it; the jobs of the old one fail, and are submitted again
                    # by the next cycle. The cached forecasts stay (fail warm).
                    log.error("refresh pool broken (%s): starting a new one", exc)
                    self._restart()
                    if restarted:
                        return {ep.name: f"refresh processes broken: {exc}" for ep in eps[i:]}
                    restarted = True
            self.jobs.append(Job(future, [ep.name for ep in batch], fsettings, now))
        return {}

    def collect(self, names: set[str] | None = None, *, first: bool = False) -> list[tuple[Job, tuple | None, str | None]]:
        """Finished jobs as (job, refresh_job's result or None, error or None); with `names`,
        first wait for every job holding one of them (with `first`, for the first of those
        jobs to finish), or until a job is overdue. An overdue job restarts the pool, and
        every job in flight is returned failed."""
        waited = [j for j in self.jobs if names and names.intersection(j.names)]
        while not self._overdue():
            pending = [j.future for j in waited if not j.future.done()]
            if not pending or (first and len(pending) < len(waited)):
                break
            wait(pending, timeout=WAIT_POLL_S, return_when=FIRST_COMPLETED)
        overdue = self._overdue()
        done = [j for j in self.jobs if j.future.done()]
        self.jobs = [j for j in self.jobs if not j.future.done()]
        out = []
        for job in done:
            try:
                out.append((job, job.future.result(), None))
            except Exception as exc:  # noqa: BLE001 - a job that died: its endpoints keep their forecasts
                out.append((job, None, f"refresh process failed: {exc!r}"))
        if overdue:
            lost, self.jobs = self.jobs, []
            log.error("a background refresh ran over %.0f s (%s...): restarting the refresh processes; "
                      "%d jobs in flight are tried again at the next cycle", self.job_timeout_s,
                      ", ".join(overdue[0].names[:3]), len(lost))
            self._restart()
            for job in lost:
                why = (f"refresh timed out after {self.job_timeout_s:.0f} s" if job in overdue
                       else "refresh stopped: the refresh processes were restarted after another timed out")
                out.append((job, None, why))
        return out

    def _overdue(self) -> list[Job]:
        """Jobs running past the timeout. A job counts as running once the executor has handed
        it to its call queue (`Future.running()`), at most one job ahead of a free child."""
        now = self._clock()
        for job in self.jobs:
            if job.running_since is None and (job.future.running() or job.future.done()):
                job.running_since = now
        return [j for j in self.jobs if not j.future.done() and j.running_since is not None
                and now - j.running_since >= self.job_timeout_s]

    def _restart(self) -> None:
        self._stop_children()
        self._executor = self._new_executor()

    def close(self) -> None:
        """Stop now: a child's refresh in flight is thrown away, not waited for (it only makes
        a forecast; the next runtime makes it again). ProcessPoolExecutor on Python 3.11 has
        no public way to stop its workers, hence the private attribute."""
        self._stop_children()
        self.jobs = []

    def _stop_children(self) -> None:
        processes = list((self._executor._processes or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:  # reaped before the executor's thread writes to its pipes
            process.join(5)
            if process.is_alive():  # ignoring SIGTERM (stopped, or stuck in native code)
                process.kill()
                process.join(5)


def _logging_setup() -> tuple[str, str]:
    """The daemon's log level and format, for its children (they log to the same stderr)."""
    from .logs import JsonFormatter

    root = logging.getLogger("prewarm")
    fmt = "json" if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers) else "text"
    return logging.getLevelName(root.getEffectiveLevel()).lower(), fmt


def _child_init(level: str, fmt: str) -> None:
    """In a new child: log as the daemon does, and exit when the daemon is gone."""
    import os
    import threading

    from .logs import setup_logging

    setup_logging(level, fmt)
    parent = os.getppid()

    def watch_parent() -> None:
        # A daemon killed with SIGKILL cannot stop its children, and an orphan would wait
        # for work forever. (Not PR_SET_PDEATHSIG: it fires when the *thread* that started
        # the child ends, and the daemon starts children from a cycle's worker thread.)
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()


_stores: dict[str, Any] = {}


def refresh_job(store_url: str, eps: list, fsettings, cutoff: datetime, span: float,
                save: bool) -> tuple[dict, dict, list]:
    """In a child: forecast `eps` as a cycle would (refresh.forecast_batches) on the child's
    own store connection. Returns (forecasts by endpoint, failed: endpoint -> (stage, why),
    errors: the (stage, endpoint) the cycle would have counted, for the daemon's metrics)."""
    from .config import Settings
    from .refresh import forecast_batches
    from .runtime import Runtime
    from .store import Store

    store = _stores.get(store_url)
    if store is None:
        store = _stores[store_url] = Store(store_url, auto_upgrade=False)
    rt = Runtime(Settings(endpoints=tuple(eps)), store=store)
    errors: list[tuple[str, str]] = []
    rt._error = lambda stage, endpoint: errors.append((stage, endpoint))  # counted by the daemon
    failed: dict[str, tuple[str, str]] = {}
    forecasts = forecast_batches(rt, eps, fsettings, cutoff, span, save, failed)
    return forecasts, failed, errors
