"""Stepping down with a job in flight, on the real APScheduler (not the simulated one)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.base import STATE_STOPPED

from daemon_helpers import seed_plan, wait_for, write_config
from prewarm import config
from prewarm import daemon as daemon_module
from prewarm.daemon import Daemon
from prewarm.store import Store


def test_step_down_with_a_reconcile_in_flight_does_not_hang(tmp_path, sqlite_url, faulty, monkeypatch):
    """APScheduler 3's shutdown(wait=True) holds its job-store lock while it waits for the
    running jobs. A reconcile in flight when the shutdown began went on, after its provider
    calls, to schedule the plan's change jobs (add_job / remove_job), which wait on that very
    lock: the daemon hung on SIGTERM (seen once in CI, in test_process: a change job had just
    run, so the periodic reconcile in flight went to remove it). Here the same: the plan's
    change runs, then the next periodic reconcile is held inside apply until the shutdown has
    begun, and let go."""
    settings = config.load(write_config(tmp_path / "prewarm.toml", sqlite_url,
                                        [{"name": "api", "dir": faulty.dir, "max_workers": 10}],
                                        daemon={"reconcile_interval": "1s"}))
    store = Store(settings.store.url)
    now = datetime.now(timezone.utc)
    seed_plan(store, "api", now, [(now + timedelta(seconds=3), 2)])  # a change job, soon
    changed, in_apply, release = threading.Event(), threading.Event(), threading.Event()
    real = daemon_module.apply_due

    def held(rt, at, names=None, **kwargs):
        if names is not None:  # the change job
            changed.set()
        elif changed.is_set() and not release.is_set():  # the next periodic reconcile
            in_apply.set()
            release.wait(120)
        return real(rt, at, names, **kwargs)

    monkeypatch.setattr(daemon_module, "apply_due", held)
    daemon = Daemon(settings, store=store)  # the real BackgroundScheduler
    daemon._lead()
    try:
        assert in_apply.wait(120), "no reconcile started"
        scheduler = daemon.scheduler
        stepping = threading.Thread(target=daemon._step_down, name="step-down", daemon=True)
        stepping.start()
        wait_for(lambda: scheduler.state == STATE_STOPPED, 120, poll=0.01, what="the shutdown to begin")
        release.set()
        stepping.join(120)  # only keeps a hang from hanging the suite
        assert not stepping.is_alive(), "step-down hung: the reconcile in flight waits on the scheduler's lock"
        assert daemon.scheduler is None and not daemon.leading
    finally:
        release.set()
        store.close()
