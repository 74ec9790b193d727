"""`prewarm once` every minute (cron mode) takes the same actions as the daemon: both run on
the same history, each with its own database and provider, the daemon's own jobs (cycle,
reconcile, change jobs) driven in time order on a simulated clock.

The simulated span is a whole day on SQLite (07:00 to 07:00): the morning rise, the peak, the
fall, the scale-in delay after it and the night's lull, 1,440 cron runs against the daemon's
jobs; on PostgreSQL and MariaDB the peak (08:00 to 11:00: rise, peak, fall and scale-in),
one database each run after the other."""
from __future__ import annotations

import math
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from daemon_helpers import Faulty, utc, write_config
from ..conftest import empty_database
from prewarm import config
from prewarm.cycle import run_once
from prewarm.runtime import Runtime
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.store import CountRow, Store

START = utc(2026, 3, 2, 7)  # history for two days before it
END = utc(2026, 3, 3, 7)
FORECAST = ('[forecast]\nmodel = "test-repeat-day"\nhistory = "25h"\nhorizon = "1h"\nstep = "5m"\n'
            'resolution = "fixed"\n')
PLANNER = '[planner]\nscale_in_delay = "10m"\n'


def daily(peak: float, at) -> int:
    """A morning peak centred on 09:00, about three hours wide."""
    hour = at.hour + at.minute / 60
    return int(round(peak * math.exp(-((hour - 9.0) / 0.8) ** 2)))


@pytest.fixture
def db_dir(tmp_path):
    """Databases on tmpfs when there is one (~3 ms an fsync saved per commit); files, not
    sqlite:// in memory, which each thread (the daemon's readiness watchers) sees empty."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(dir=shm, prefix="prewarm-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def setup(tmp_path, url: str, tag: str):
    prov = tmp_path / f"provider-{tag}"
    cfg = write_config(tmp_path / f"{tag}.toml", url,
                       [{"name": "chat", "dir": prov, "max_workers": 30, "cold_start_s": 120, "service_time_s": 2},
                        {"name": "embed", "dir": prov, "max_workers": 5, "cold_start_s": 150}],
                       extra=FORECAST + PLANNER)
    settings = config.load(cfg)
    store = Store(settings.store.url)
    for name, peak in (("chat", 400.0), ("embed", 6.0)):
        rows = [CountRow(name, START + timedelta(minutes=m), daily(peak, START + timedelta(minutes=m)))
                for m in range(-2 * 1440, 1440, 5)]  # the day itself too: it "happens" as we go
        with store.begin() as c:
            store.insert_counts(c, store.endpoint_id(name), rows)
    return settings, store, Faulty(prov)


def applied(store) -> list[tuple]:
    return [(a["ts"], a["endpoint"], a["requested"]["target"]) for a in store.actions() if a["result"] == "ok"]


@pytest.mark.slow
@pytest.mark.timeout(900)  # 75 s alone; over 300 s seen at load average 9 on 2 cores
@pytest.mark.parametrize("engine, begin, end", [
    ("sqlite", START, END),
    pytest.param("pg_url", START + timedelta(hours=1), START + timedelta(hours=4), marks=pytest.mark.postgres),
    pytest.param("maria_url", START + timedelta(hours=1), START + timedelta(hours=4), marks=pytest.mark.mariadb),
], ids=["sqlite", "postgresql", "mariadb"])
def test_once_every_minute_matches_the_daemon(tmp_path, db_dir, request, engine, begin, end):
    def database(tag: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{db_dir / (tag + '.db')}"
        url = request.getfixturevalue(engine)
        empty_database(url)  # the same server database, cron's run first, then the daemon's
        return url

    settings, cron_store, cron_provider = setup(tmp_path, database("cron"), "cron")
    now = begin
    while now < end:  # cron: a fresh process (runtime, providers, caches) every minute
        rt = Runtime(settings, store=cron_store)
        run_once(rt, now)
        for p in rt.providers.values():
            p.close()
        now += timedelta(minutes=1)
    cron = applied(cron_store)
    cron_store.close()

    settings, daemon_store, daemon_provider = setup(tmp_path, database("daemon"), "daemon")
    sim = SimulatedScheduler(begin)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=daemon_store)
    daemon._lead()
    sim.run_until(end - timedelta(seconds=1))
    assert not sim.errors

    dmn = applied(daemon_store)
    daemon._step_down()
    daemon_store.close()
    assert len(cron) > 10, "the peak should bring warm-ups and scale-downs for both endpoints"
    assert {e for _, e, _ in cron} == {"chat", "embed"}
    # Per endpoint, the same changes in the same order. chat's lead (120 s) puts its changes
    # on the minute, so both act at the same instant; embed's (150 s) puts them at :30, where
    # the daemon's change job acts, and cron acts at the next minute.
    for name, lag_ok in (("chat", lambda s: s == 0), ("embed", lambda s: 0 <= s < 60)):
        d = [(t, n) for t, e, n in dmn if e == name]
        c = [(t, n) for t, e, n in cron if e == name]
        assert [n for _, n in d] == [n for _, n in c], name
        assert all(lag_ok((tc - td).total_seconds()) for (td, _), (tc, _) in zip(d, c)), (name, d, c)
    for name in ("chat", "embed"):
        assert daemon_provider.target(name) == cron_provider.target(name)
    # The daemon acted through its change jobs, at the planned instants, not only on reconcile.
    assert any(job.startswith("change:") for _, job in sim.ran)
