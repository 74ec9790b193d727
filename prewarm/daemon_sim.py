"""A stand-in for APScheduler's BackgroundScheduler on simulated time, for tests and
benchmarks: it runs a Daemon's own jobs (cycle, reconcile, change jobs) in time order,
on the caller's thread, against a clock it advances. Only the part of the APScheduler API
the daemon uses is here: add_job (interval and date triggers), remove_job, get_job(s),
start, shutdown.

    sim = SimulatedScheduler(start)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim)
    daemon._lead(); sim.run_until(start + timedelta(days=1))
"""
from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

log = logging.getLogger("prewarm.daemon_sim")


class JobLookupError(KeyError):
    pass


@dataclass
class SimJob:
    id: str
    func: Callable
    args: tuple
    next_run_time: datetime
    interval: timedelta | None


class SimulatedScheduler:
    def __init__(self, start: datetime) -> None:
        self.now = start
        self.jobs: dict[str, SimJob] = {}
        self._heap: list = []
        self._seq = itertools.count()
        self.ran: list[tuple[datetime, str]] = []  # (time, job id) of every run
        self.errors: list[tuple[str, BaseException]] = []

    def clock(self) -> datetime:
        return self.now

    # -- the APScheduler subset ------------------------------------------------------------
    def start(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        self.jobs.clear()
        self._heap.clear()

    def add_job(self, func, trigger: str, *, id: str, args=(), seconds: float | None = None,
                run_date: datetime | None = None, next_run_time: datetime | None = None,
                replace_existing: bool = False, **_ignored: Any) -> SimJob:
        if id in self.jobs and not replace_existing:
            raise ValueError(f"job {id} exists")
        if trigger == "interval":
            interval = timedelta(seconds=seconds)
            first = next_run_time or self.now + interval
        elif trigger == "date":
            interval, first = None, run_date
        else:
            raise ValueError(f"trigger {trigger!r} is not simulated")
        job = SimJob(id, func, tuple(args), first, interval)
        self.jobs[id] = job
        heapq.heappush(self._heap, (first, next(self._seq), id, job))
        return job

    def remove_job(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is None:
            raise JobLookupError(job_id)

    def get_job(self, job_id: str) -> SimJob | None:
        return self.jobs.get(job_id)

    def get_jobs(self) -> list[SimJob]:
        return sorted(self.jobs.values(), key=lambda j: j.next_run_time)

    # -- driving ---------------------------------------------------------------------------
    def run_until(self, end: datetime) -> None:
        """Run every job due up to `end` in time order (ties: in the order they were added),
        advancing the clock to each job's time; then set the clock to `end`."""
        while self._heap and self._heap[0][0] <= end:
            at, _, job_id, job = heapq.heappop(self._heap)
            if self.jobs.get(job_id) is not job or job.next_run_time != at:
                continue  # removed or replaced since
            self.now = max(self.now, at)
            if job.interval is None:
                del self.jobs[job_id]
            else:
                job.next_run_time = at + job.interval
                heapq.heappush(self._heap, (job.next_run_time, next(self._seq), job_id, job))
            self.ran.append((self.now, job_id))
            try:
                job.func(*job.args)
            except Exception as exc:  # noqa: BLE001 - APScheduler logs and goes on; so do we
                log.exception("job %s failed", job_id)
                self.errors.append((job_id, exc))
        self.now = max(self.now, end)
