"""The daemon: APScheduler 3.x running cycles, reconciles and one date job per planned change.

Only the leader runs a scheduler (APScheduler 3.x job stores must never be shared between
schedulers: two processes on one store ran every job twice). Its jobs live in a memory job
store and are rebuilt from the database's plan, the source of truth, on start and after every
cycle and reconcile. Job settings, on purpose:

- `cycle` (refresh due forecasts + plan all, every cycle_interval) and `reconcile` (every reconcile_interval):
  coalesce=True (a backlog of missed runs collapses into one), max_instances=1 (a slow run is
  never doubled), misfire_grace_time = one interval (a run later than that is skipped: the
  next one is due anyway).
- `change:<endpoint>:<time>`, one date job per planned change in the next hour, at the
  command's time (the need time minus the lead, as the planner wrote it):
  misfire_grace_time=None (a late warm-up still runs, however late), and it converges to the
  target in force at max(now, its time), so it never fires "early" into the previous target.
- start (and every takeover): converge to the stored plan at once. Apply is level-triggered,
  so a warm-up missed while the daemon was down is applied at start if it is still in force
  (its need is still ahead), and a scale-down that came due while down is not replayed: the
  plan is stale then, and a stale plan never lowers capacity (fail warm) until a fresh cycle
  has planned again.

Signals: SIGTERM/SIGINT stop (the provider call in flight finishes, no new call or retry
starts), SIGHUP reloads the config (a bad one is refused, the old one kept). systemd's notify
protocol: READY=1 once leading or standing by, WATCHDOG=1 while healthy, STOPPING=1.
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

from .apply import Mandate
from .config import Settings
from .cycle import apply_due, plan_cycle
from .logs import ConditionLog
from .redact import redact
from .runtime import Runtime

log = logging.getLogger("prewarm.daemon")
CHANGE_HORIZON = timedelta(hours=1)  # date jobs are kept for changes this far ahead
CYCLE_SLACK_S = 600.0  # a cycle may legitimately take this long on a large fleet


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


SPOOL_RETRY_S = 30.0  # a standby's attempts to write the audit spool, at most this often


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def background_scheduler():
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(timezone=timezone.utc, executors={"default": ThreadPoolExecutor(8)},
                               job_defaults={"coalesce": True, "max_instances": 1})


def refresh_pool_for(settings, store_url: str):
    """The forecast refresh pool [daemon] refresh_processes asks for (None: refresh in the cycle)."""
    if settings.daemon.refresh_processes <= 0:
        return None
    from .refresh_pool import RefreshPool
    return RefreshPool(settings.daemon.refresh_processes, store_url,
                       job_timeout_s=settings.daemon.refresh_timeout_s)


class Daemon:
    """`scheduler_factory` builds the scheduler when leading (default: APScheduler's
    BackgroundScheduler); tests and benchmarks pass daemon_sim.SimulatedScheduler, with its
    clock as `clock`, to run the same jobs deterministically on simulated time."""

    def __init__(self, settings: Settings, *, metrics=None, lock=None,
                 reload: Callable[[], Settings] | None = None, clock: Callable[[], datetime] = _utcnow,
                 scheduler_factory: Callable[[], object] | None = None, store=None) -> None:
        from .metrics import Heartbeat

        self.settings = settings
        self.metrics = metrics
        self.lock = lock
        self.reload_settings = reload
        self.clock = clock
        self.scheduler_factory = scheduler_factory or background_scheduler
        self.inline = scheduler_factory is not None  # simulated: run cycle work on the caller's thread
        self.store = store  # a store to use instead of opening settings.store.url (tests)
        self.rt: Runtime | None = None
        self.scheduler = None
        self.stop_event = threading.Event()
        self.cancel = threading.Event()  # set when this leadership term ends
        self.heartbeat = Heartbeat()
        self.leading = False
        # Leadership lost because the database is unreachable: the plan last read still raises
        # (never lowers) until the database answers or another leader is seen (_cut_off).
        self.cut_off = False
        self._lease_until = 0.0
        self._change_jobs: set[str] = set()
        self._jobs_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._stepping = threading.Lock()
        # "cannot lead yet" is met on every poll while, say, the database refuses the schema
        # check: logged when it starts, then once a minute with a count, and when it ends.
        self._lead_failures = ConditionLog(log)
        # One cycle at a time: the start-up job's cycle and the interval job's are different
        # jobs to the scheduler, and a first cycle (every forecast) can outlast the interval.
        self._cycling = threading.Lock()
        self._spool_retry_at = 0.0

    # -- timing derived from the settings ---------------------------------------------------
    @property
    def poll_s(self) -> float:
        return max(0.2, self.settings.daemon.leader_takeover_s / 5)

    @property
    def lease_s(self) -> float:
        return self.settings.daemon.leader_takeover_s / 3

    @property
    def retry_deadline_s(self) -> float:
        # A throttled apply backs off within one reconcile interval; the next pass retries.
        return min(30.0, max(2.0, self.settings.daemon.reconcile_interval_s))

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> int:
        """Lead or stand by until stopped. Raises leader.AlreadyRunning on SQLite."""
        self._install_signals()
        ready = False
        self.heartbeat.expect("loop", max(10.0, 5 * self.poll_s))
        try:
            while not self.stop_event.is_set():
                self._tick()
                if not ready:
                    sd_notify("READY=1\nSTATUS=" + ("leading" if self.leading else "standby"))
                    ready = True
                if self.heartbeat.check()[0]:  # alive; a database outage is no reason for a restart
                    sd_notify("WATCHDOG=1")
                self.stop_event.wait(self.poll_s)
        finally:
            sd_notify("STOPPING=1")
            log.info("stopping")
            self._step_down()
            if self.lock is not None:
                self.lock.release()
        return 0

    def _tick(self) -> None:
        self.heartbeat.beat("loop")
        if self.cut_off:
            self._tick_cut_off()
        elif not self.leading:
            if self.lock is None or self.lock.try_acquire():
                self._start_leading()
            else:
                if self.metrics:
                    self.metrics.leader.set(0)
                self._flush_spool_standing_by()
        elif self.lock is not None:
            if self.lock.still_held():
                self._renew_lease()
            elif self.lock.unreachable and self.rt is not None:
                log.error("leadership lost: the database is unreachable; standing by, and applying only the "
                          "raises of the plan last read until it answers or another leader is seen")
                self._cut_off()
            else:
                log.error("leadership lost; standing by")
                self._step_down()

    def _start_leading(self) -> None:
        self._renew_lease()
        try:
            self._lead()
        except Exception as exc:  # noqa: BLE001 - e.g. the database is down: retry next tick
            self._lead_failures.failing(logging.ERROR, "cannot lead yet: %s", exc)
            self._step_down()
            if self.lock is not None:
                self.lock.release()
        else:
            self._lead_failures.ok("leading after all")

    def _tick_cut_off(self) -> None:
        """Cut off from the database: lead again once it answers and the lock is free; stand by
        for good (dropping the plan last read) once it answers and another daemon leads."""
        if self.lock.try_acquire():
            log.info("the database answers again and the leader lock is free")
            self._step_down()
            self._start_leading()
        elif not self.lock.unreachable:
            log.warning("the database answers again and another daemon leads: standing by, the raises "
                        "of the plan last read are dropped")
            self._step_down()

    def _cut_off(self) -> None:
        """Leadership lost because the database is unreachable (not to another daemon, as far as
        this one can tell). What is safe with two daemons: a raise to an absolute target, never a
        lowering. So this one stops planning and reconciling, keeps the change jobs of the plan
        it last read (the next hour's), and each applies only a raise, once, at its time; one
        pass now catches a raise due while leadership was being lost. The loop asks for the lock
        again every poll (_tick_cut_off)."""
        with self._stepping:
            self.leading = False
            self.cut_off = True
            self.cancel.set()  # the cycle and reconcile in flight stop; the change jobs go on under a new term
            self.cancel = threading.Event()
            if self.metrics:
                self.metrics.leader.set(0)
            for name in ("cycle", "reconcile"):
                self.heartbeat.forget(name)
                try:
                    self.scheduler.remove_job(name)
                except LookupError:  # JobLookupError
                    pass
            self.rt.close_refresh_pool()
        self.scheduler.add_job(self.reconcile, "date", run_date=self.clock(), id="cut-off",
                               replace_existing=True, misfire_grace_time=None)

    def _flush_spool_standing_by(self) -> None:
        """A standby writes the audit spool this host kept (its previous leadership died during
        a database outage): at most every SPOOL_RETRY_S, and only when the spool exists."""
        from .apply import flush_spool, spool_for

        spool = spool_for(self.settings)
        now = time.monotonic()
        if not spool or now < self._spool_retry_at:
            return
        self._spool_retry_at = now + SPOOL_RETRY_S
        from .store import Store

        try:
            store = self.store or Store(self.settings.store.url, auto_upgrade=False)
        except Exception as exc:  # noqa: BLE001 - the database is still away: next time
            log.warning("audit spool %s waits: %s", spool.path, exc)
            return
        try:
            written = flush_spool(store, spool)
            if written:
                log.info("standing by: wrote %d audit records kept while the database was unreachable", written)
        finally:
            if store is not self.store:
                store.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.cancel.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=self.reload, name="reload",
                                                                 daemon=True).start())

    def healthy(self) -> tuple[bool, str]:
        """/healthz: the jobs beat, and a standby can reach the database (one that cannot could
        not take over)."""
        ok, why = self.heartbeat.check()
        role = "leader" if self.leading else "standby (database unreachable: raises only)" if self.cut_off \
            else "standby"
        if not self.leading and getattr(self.lock, "reachable", None) is False:
            return False, redact(f"{role}; cannot reach the database: {self.lock.last_error}")
        return ok, f"{role}; {why}"

    def _renew_lease(self) -> None:
        self._lease_until = time.monotonic() + self.lease_s

    def may_act(self) -> Mandate:
        """Asked before every provider write: anything while leading with the lock confirmed
        recently; only raises while cut off from the database (_cut_off); else nothing."""
        if self.leading and (self.lock is None or time.monotonic() < self._lease_until):
            return Mandate.ALL
        return Mandate.RAISES if self.cut_off else Mandate.NONE

    def reload(self) -> bool:
        """SIGHUP: load the config again; a bad new config is refused and the old one kept."""
        if self.reload_settings is None:
            return False
        try:
            new = self.reload_settings()
        except Exception as exc:  # noqa: BLE001 - keep running on the old config
            log.error("config reload refused, keeping the old config: %s", exc)
            return False
        with self._reload_lock:
            if new.store.url != self.settings.store.url:
                log.warning("store.url changed: it takes effect at the next restart")
            self.settings = new
            rt = self.rt
            if rt is not None:
                from .apply import state
                rt.settings = new
                if (rt.refresh_pool.processes if rt.refresh_pool else 0) != new.daemon.refresh_processes:
                    rt.close_refresh_pool()
                    rt.refresh_pool = refresh_pool_for(new, rt.store.url)
                elif rt.refresh_pool is not None:
                    rt.refresh_pool.job_timeout_s = new.daemon.refresh_timeout_s
                old, rt.providers = rt.providers, {}
                for name, provider in old.items():
                    with state(rt).lock(name):  # let a call in flight finish before closing
                        provider.close()
            if self.leading and self.scheduler is not None:
                self._schedule_recurring()
                if self.metrics:
                    self._expose_metrics()
        log.info("config reloaded from %s", new.config_file or "defaults")
        return True

    # -- leading --------------------------------------------------------------------------
    def _lead(self) -> None:
        log.info("leading")
        self.cancel = threading.Event()
        self.rt = Runtime(self.settings, store=self.store, metrics=self.metrics)
        self.rt.watch_readiness = True
        self.rt.refresh_pool = refresh_pool_for(self.settings, self.rt.store.url)
        self.leading = True
        if self.metrics:
            self.metrics.leader.set(1)
            self._expose_metrics()
        sd_notify("STATUS=leading")
        self.scheduler = self.scheduler_factory()
        self.scheduler.start()
        self._schedule_recurring()
        # Rebuild from the database: converge to what the stored plan wants now (a warm-up
        # missed while down fires now), schedule its changes, then plan afresh.
        self.scheduler.add_job(self._start_up, "date", run_date=self.clock(), id="startup",
                               misfire_grace_time=None)

    def _expose_metrics(self) -> None:
        s = self.settings
        self.metrics.expose((ep.name, ep.provider["kind"], s.planner_for(ep).target_cold_rate) for ep in s.endpoints)

    def _step_down(self) -> None:
        with self._stepping:
            was = self.leading or self.cut_off
            self.leading = self.cut_off = False
            self.cancel.set()
            if self.metrics:
                self.metrics.leader.set(0)
            if self.scheduler is not None:
                # First no job adds or removes jobs any more (_schedule_changes checks, under
                # the same lock): APScheduler 3's shutdown holds its job-store lock while it
                # waits for the running jobs, so a reconcile in flight that went on to add or
                # remove a change job would wait on that lock forever (a hang on SIGTERM).
                with self._jobs_lock:
                    scheduler, self.scheduler = self.scheduler, None
                # wait=True: a provider call in flight finishes; apply starts no new one (cancel).
                scheduler.shutdown(wait=True)
            self._change_jobs.clear()
            for name in ("reconcile", "cycle"):
                self.heartbeat.forget(name)
            if self.rt is not None:
                self.rt.close_refresh_pool()
                if self.store is None:
                    self.rt.close()
                else:  # the caller owns the store it passed in
                    for provider in self.rt.providers.values():
                        provider.close()
                self.rt = None
            if was:
                log.info("no longer leading")

    def _schedule_recurring(self) -> None:
        d = self.settings.daemon
        now = self.clock()
        self.scheduler.add_job(self.cycle, "interval", seconds=d.cycle_interval_s, id="cycle",
                               replace_existing=True, misfire_grace_time=max(1, int(d.cycle_interval_s)),
                               next_run_time=now + timedelta(seconds=d.cycle_interval_s))
        self.scheduler.add_job(self.reconcile, "interval", seconds=d.reconcile_interval_s, id="reconcile",
                               replace_existing=True, misfire_grace_time=max(1, int(d.reconcile_interval_s)),
                               next_run_time=now + timedelta(seconds=d.reconcile_interval_s))
        # --- sources hook (prewarm/sync.py): the leader keeps the store filled from metrics sources.
        if any(ep.source is not None for ep in self.settings.endpoints):
            from .sync import schedule_sync
            schedule_sync(self, now)
        # --- end of sources hook
        from .static_guard import schedule as schedule_guard
        schedule_guard(self, now)  # last week's best static setting, judged off the planning path
        self.heartbeat.expect("reconcile", 3 * d.reconcile_interval_s + self.retry_deadline_s + 2)
        self.heartbeat.expect("cycle", 3 * d.cycle_interval_s + CYCLE_SLACK_S)

    def _start_up(self) -> None:
        self.reconcile()
        self.cycle()

    # -- jobs -----------------------------------------------------------------------------
    def cycle(self) -> None:
        """Refresh the forecasts that are due (staggered over [forecast] refresh_interval;
        all of them at the first cycle of a leadership term, whose Runtime starts empty),
        plan every endpoint, then converge. The work runs on a worker thread that a stop
        abandons (a forecast cannot be interrupted; nothing is applied from it after a stop).
        A cycle due while another still runs is skipped."""
        started = time.monotonic()
        rt = self.rt
        if rt is None:
            return
        now = self.clock()
        if not self._cycling.acquire(blocking=False):
            # Two cycles on one runtime would race on its forecasts and both write a plan.
            log.info("the previous cycle is still running (a first cycle refreshes every forecast): "
                     "this one is skipped")
            return

        def work():
            try:
                return plan_cycle(rt, now)
            finally:  # held by the work itself: an abandoned cycle still blocks the next
                self._cycling.release()

        outcomes = self._abandonable(work)
        if outcomes is None:
            return
        # An endpoint with no history yet (just added, no traffic ingested) is not a failure.
        ok = not any(o.failed for o in outcomes.values())
        log.info("%s", cycle_summary(outcomes, time.monotonic() - started))
        if self.metrics:
            self.metrics.cycle_duration.observe(time.monotonic() - started)
            if ok:
                self.metrics.last_success.set(time.time())
        self.heartbeat.beat("cycle")
        self.reconcile()

    def _abandonable(self, fn):
        if self.inline:
            return fn()
        box: dict = {}
        done = threading.Event()

        def work():
            try:
                box["value"] = fn()
            except Exception as exc:  # noqa: BLE001 - reported below, on the job's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="cycle-work", daemon=True).start()
        cancel = self.cancel
        while not done.wait(0.1):
            if cancel.is_set():
                log.warning("stopping: the cycle in progress is abandoned")
                return None
        if "error" in box:
            log.error("cycle failed: %s", box["error"], exc_info=box["error"])
            return None
        return box["value"]

    def reconcile(self, endpoint: str | None = None, at: datetime | None = None) -> None:
        """Converge to the target in force now (level-triggered). A change job passes its
        time: it converges to max(now, at), never to the target before it."""
        rt, cancel = self.rt, self.cancel
        if rt is None or cancel.is_set():
            return
        now = self.clock()
        if at is not None and at > now:
            now = at
        names = None
        if endpoint is not None:
            if endpoint not in {ep.name for ep in rt.settings.endpoints}:
                return  # removed by a reload
            names = [endpoint]
        apply_due(rt, now, names, retry_deadline_s=self.retry_deadline_s, cancel=cancel,
                  may_act=self.may_act)
        if endpoint is None and not self.cut_off:
            self.heartbeat.beat("reconcile")
            self._schedule_changes()

    def _schedule_changes(self) -> None:
        """One date job per planned change in the next hour, from the plans apply has just
        read (apply keeps the last plan read when the database is down)."""
        from .apply import state

        scheduler, rt = self.scheduler, self.rt
        if scheduler is None or rt is None:
            return
        now = self.clock()
        horizon = now + CHANGE_HORIZON
        wanted: dict[str, tuple[str, datetime]] = {}
        plans = state(rt).plans
        for ep in rt.settings.endpoints:
            for row in plans.get(ep.name) or ():
                if now < row["at"] <= horizon:
                    wanted[f"change:{ep.name}:{row['at'].isoformat()}"] = (ep.name, row["at"])
        with self._jobs_lock:
            if self.scheduler is not scheduler:
                return
            for job_id in self._change_jobs - set(wanted):
                try:
                    scheduler.remove_job(job_id)
                except LookupError:  # JobLookupError: it has run
                    pass
            for job_id in set(wanted) - self._change_jobs:
                name, at = wanted[job_id]
                scheduler.add_job(self.reconcile, "date", run_date=at, args=[name, at], id=job_id,
                                  replace_existing=True, misfire_grace_time=None)
            self._change_jobs = set(wanted)


def cycle_summary(outcomes: dict, seconds: float) -> str:
    """The one info line a cycle logs: how many endpoints were planned, waited for history,
    failed (and which, up to three), and how long it took."""
    planned = sum(1 for o in outcomes.values() if o.plan is not None)
    waiting = sum(1 for o in outcomes.values() if o.no_history)
    failed = [n for n, o in outcomes.items() if o.failed]
    text = f"cycle: {planned} of {len(outcomes)} endpoints planned"
    if waiting:
        text += f", {waiting} without history yet"
    if failed:
        text += f", {len(failed)} failed ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''})"
    return text + f" in {seconds:.1f} s"
