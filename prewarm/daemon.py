"""The daemon: APScheduler 3.x running cycles, reconciles and one date job per planned change.

Only the leader runs the scheduler (APScheduler 3.x job stores must never be shared between
schedulers); jobs live in a memory job store and are rebuilt from the database's plan, which
is the source of truth. Coalescing and misfire grace are set on purpose:

- cycle and reconcile jobs coalesce (a backlog of missed runs collapses into one run) with a
  misfire grace of one interval: a late run is still useful, a run older than that is not.
- a planned change fires if it is up to `misfire_grace` late; the reconcile pass covers
  anything later, because apply is level-triggered: it converges to the target in force now.
  A warm-up missed while the daemon was down is therefore applied at start (the target in
  force now includes it), and a stale scale-down is never replayed: only the current target
  is ever applied.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from .config import Settings
from .cycle import Runtime, apply_due, plan_cycle

log = logging.getLogger("prewarm.daemon")


def sd_notify(message: str) -> bool:
    """systemd's notify protocol over NOTIFY_SOCKET, no library needed."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
        return False


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Daemon:
    def __init__(self, settings: Settings, *, metrics=None, lock=None,
                 reload: Callable[[], Settings] | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        from .metrics import Heartbeat

        self.settings = settings
        self.metrics = metrics
        self.lock = lock
        self.reload_settings = reload
        self.clock = clock
        self.rt: Runtime | None = None
        self.scheduler = None
        self.stop_event = threading.Event()
        self.heartbeat = Heartbeat(stale_after=max(3 * settings.daemon.cycle_interval_s, 60.0))
        self.leading = False
        self._lock = threading.RLock()  # one cycle/apply at a time

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> int:
        self._install_signals()
        sd_notify("READY=1\nSTATUS=starting")
        takeover = self.settings.daemon.leader_takeover_s
        poll = max(0.5, takeover / 3)
        try:
            while not self.stop_event.is_set():
                self.heartbeat.beat()
                self._watchdog()
                if not self.leading:
                    if self.lock is None or self.lock.try_acquire():
                        self._lead()
                    else:
                        sd_notify("STATUS=standby")
                        if self.metrics:
                            self.metrics.leader.set(0)
                elif self.lock is not None and not self.lock.still_held():
                    log.error("leadership lost; standing by")
                    self._step_down()
                self.stop_event.wait(poll)
        finally:
            sd_notify("STOPPING=1")
            self._step_down()
            if self.lock is not None:
                self.lock.release()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=self.reload, daemon=True).start())

    def _watchdog(self) -> None:
        sd_notify("WATCHDOG=1")

    def reload(self) -> bool:
        """SIGHUP: load the config again; a bad new config is refused and the old one kept."""
        if self.reload_settings is None:
            return False
        try:
            new = self.reload_settings()
        except Exception as exc:  # noqa: BLE001 - keep running on the old config
            log.error("config reload refused, keeping the old config: %s", exc)
            return False
        with self._lock:
            self.settings = new
            if self.rt is not None:
                self.rt.settings = new
                for p in self.rt.providers.values():
                    p.close()
                self.rt.providers.clear()
        log.info("config reloaded")
        if self.leading:
            self._schedule_recurring()
        return True

    # -- leading --------------------------------------------------------------------------
    def _lead(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        log.info("leading")
        self.leading = True
        if self.metrics:
            self.metrics.leader.set(1)
        sd_notify("STATUS=leading")
        self.rt = Runtime(self.settings, metrics=self.metrics)
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc, executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.start()
        self._schedule_recurring()
        # Rebuild from the database: converge to what the stored plan wants now (a warm-up
        # missed while down fires now), schedule its future changes, then plan afresh.
        self.scheduler.add_job(self._start_up, id="startup", next_run_time=self.clock())

    def _step_down(self) -> None:
        self.leading = False
        if self.metrics:
            self.metrics.leader.set(0)
        if self.scheduler is not None:
            # wait=True: an in-flight provider call finishes before we stop.
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        if self.rt is not None:
            self.rt.close()
            self.rt = None

    def _schedule_recurring(self) -> None:
        d = self.settings.daemon
        self.scheduler.add_job(self.cycle, "interval", seconds=d.cycle_interval_s, id="cycle",
                               replace_existing=True, misfire_grace_time=int(d.cycle_interval_s),
                               next_run_time=self.clock() + timedelta(seconds=d.cycle_interval_s))
        self.scheduler.add_job(self.reconcile, "interval", seconds=d.reconcile_interval_s, id="reconcile",
                               replace_existing=True, misfire_grace_time=int(d.reconcile_interval_s))

    def _start_up(self) -> None:
        self.reconcile()
        self._schedule_changes()
        self.cycle()

    # -- jobs -----------------------------------------------------------------------------
    def cycle(self) -> None:
        started = time.monotonic()
        now = self.clock()
        with self._lock:
            if self.rt is None:
                return
            outcomes = plan_cycle(self.rt, now)
        ok = all(o.error is None for o in outcomes.values())
        if self.metrics:
            self.metrics.cycle_duration.observe(time.monotonic() - started)
            if ok:
                self.metrics.last_success.set(time.time())
        self.heartbeat.beat()
        self._schedule_changes()
        self.reconcile()

    def reconcile(self, endpoint: str | None = None) -> None:
        with self._lock:
            if self.rt is None:
                return
            apply_due(self.rt, self.clock(), [endpoint] if endpoint else None)
        self.heartbeat.beat()

    def _schedule_changes(self) -> None:
        """One date job per future planned change, replacing the previous set."""
        if self.scheduler is None or self.rt is None:
            return
        now = self.clock()
        horizon = now + timedelta(seconds=2 * self.settings.daemon.cycle_interval_s)
        wanted = {}
        for ep in self.rt.endpoints():
            try:
                rows = self.rt.store.current_plan(ep.name)
            except Exception as exc:  # noqa: BLE001 - fail warm: keep the jobs we have
                log.error("cannot read the plan of %s: %s", ep.name, exc)
                return
            for row in rows:
                if now < row["at"] <= horizon:
                    wanted[f"change:{ep.name}:{row['id']}"] = (ep.name, row["at"])
        for job in self.scheduler.get_jobs():
            if job.id.startswith("change:") and job.id not in wanted:
                job.remove()
        for job_id, (name, at) in wanted.items():
            if self.scheduler.get_job(job_id) is None:
                self.scheduler.add_job(self.reconcile, "date", run_date=at, args=[name], id=job_id,
                                       misfire_grace_time=30)
