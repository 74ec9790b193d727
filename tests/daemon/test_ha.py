"""Two daemons on one server database (PostgreSQL, MariaDB): exactly one leads; the other
takes over when the leader is SIGKILLed or loses its connection.

The tests wait on events, not on wall-clock bounds (the machine is loaded): the takeover time
is printed, and measured against its target by bench/daemon_takeover.py."""
from __future__ import annotations

import signal
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from daemon_helpers import free_port, fresh_pg, proxied, seed_plan, spawn, wait_for, write_config
from prewarm.store import Store

TAKEOVER_S = 3.0
EVENT_S = 120.0  # how long an event may take on a loaded machine before the test gives up


@pytest.fixture(params=[pytest.param("pg_url", marks=pytest.mark.postgres),
                        pytest.param("maria_url", marks=pytest.mark.mariadb)], ids=["postgresql", "mariadb"])
def server_url(request):
    """The server database, emptied, with a plan for `api` in force (so the leader reads the
    provider on every reconcile: the event that shows who acts)."""
    url = fresh_pg(request.getfixturevalue(request.param))
    store = Store(url)
    now = datetime.now(timezone.utc)
    seed_plan(store, "api", now, [(now - timedelta(minutes=1), 1)])
    store.close()
    return url


def leader_value(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("prewarm_leader "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def start_daemon(tmp_path, name, url, faulty):
    port = free_port()
    cfg = write_config(tmp_path / f"{name}.toml", url, [{"name": "api", "dir": faulty.dir}],
                       daemon={"leader_takeover": f"{TAKEOVER_S}s", "reconcile_interval": "1s"},
                       metrics=f"127.0.0.1:{port}")
    proc = spawn(cfg, "run", log=tmp_path / f"{name}.log")
    return proc, port


def roles(daemons):
    return [leader_value(port) for _, port in daemons]


def reads_by(faulty, proc) -> int:
    return sum(1 for c in faulty.calls("read") if c["pid"] == proc.pid)


def two_daemons(tmp_path, faulty, procs, url_a, url_b):
    """a leads, b stands by; then, while a reads the provider three more times (three
    reconciles), b stays a standby and never touches the provider."""
    a = start_daemon(tmp_path, "a", url_a, faulty)
    procs.append(a[0])
    wait_for(lambda: roles([a]) == [1.0], EVENT_S, what="the first daemon to lead")
    b = start_daemon(tmp_path, "b", url_b, faulty)
    procs.append(b[0])
    wait_for(lambda: roles([b]) == [0.0], EVENT_S, what="the second daemon to stand by")
    seen = reads_by(faulty, a[0])
    wait_for(lambda: reads_by(faulty, a[0]) >= seen + 3, EVENT_S, what="three reconciles of the leader")
    assert roles([a, b]) == [1.0, 0.0], "exactly one leads"
    assert reads_by(faulty, b[0]) == 0, "a standby never touches the provider"
    return a, b


def test_one_leads_and_the_standby_takes_over_after_sigkill(tmp_path, server_url, faulty, procs):
    a, b = two_daemons(tmp_path, faulty, procs, server_url, server_url)
    a[0].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: roles([b]) == [1.0], EVENT_S, poll=0.02, what="the standby to take over")
    print(f"takeover after SIGKILL: {time.monotonic() - killed:.2f}s (leader_takeover {TAKEOVER_S}s)")
    wait_for(lambda: reads_by(faulty, b[0]) > 0, EVENT_S, what="the new leader to reconcile")


def test_a_leader_that_loses_its_connection_steps_down(tmp_path, server_url, faulty, procs):
    proxy, via_proxy = proxied(server_url)
    try:
        a, b = two_daemons(tmp_path, faulty, procs, via_proxy, server_url)
        proxy.cut()
        cut = time.monotonic()
        wait_for(lambda: roles([b]) == [1.0], EVENT_S, poll=0.02, what="the standby to take over")
        print(f"takeover after a lost connection: {time.monotonic() - cut:.2f}s (leader_takeover {TAKEOVER_S}s)")
        wait_for(lambda: roles([a]) == [0.0], EVENT_S, what="the old leader to step down")
        assert "leadership lost" in (tmp_path / "a.log").read_text()
        wait_for(lambda: reads_by(faulty, b[0]) > 0, EVENT_S, what="the new leader to reconcile")
        # The old leader, cut off, may only raise from the plan it read; its target is in place.
        assert all(c["target"] == 1 for c in faulty.calls("apply"))
    finally:
        proxy.close()


def test_a_leader_cut_off_from_the_database_applies_the_raise_it_read(tmp_path, server_url, faulty, procs):
    """Issue 12 item 3 as an operator saw it: one daemon, leading with the lock, a raise 1 -> 6
    read; the database cut off before it comes due. The raise is applied at its time all the
    same (raises only: the plan's scale-down after it is not)."""
    proxy, via_proxy = proxied(server_url)
    try:
        a = start_daemon(tmp_path, "a", via_proxy, faulty)
        procs.append(a[0])
        wait_for(lambda: faulty.target("api") == 1, EVENT_S, what="the daemon to lead and apply the plan")
        raise_at = datetime.now(timezone.utc) + timedelta(seconds=15)
        store = Store(server_url)
        seed_plan(store, "api", datetime.now(timezone.utc),
                  [(raise_at - timedelta(minutes=2), 1), (raise_at, 6), (raise_at + timedelta(seconds=5), 2)])
        store.close()
        seen = reads_by(faulty, a[0])
        wait_for(lambda: reads_by(faulty, a[0]) >= seen + 2, EVENT_S, what="two reconciles reading the new plan")
        proxy.cut()
        cut_at = datetime.now(timezone.utc)
        if cut_at >= raise_at:
            pytest.skip("the machine was too slow to cut the database before the raise came due")
        wait_for(lambda: "leadership lost" in (tmp_path / "a.log").read_text(), EVENT_S, what="leadership lost")
        wait_for(lambda: roles([a]) == [0.0], EVENT_S, what="the daemon to stand by")
        wait_for(lambda: faulty.target("api") == 6, EVENT_S, what="the raise, with the database away")
        applied = [c for c in faulty.changes("api") if c["target"] == 6]
        assert len(applied) == 1 and applied[0]["t"] >= raise_at.timestamp()
        log = tmp_path / "a.log"
        wait_for(lambda: "not lowering api from 6 to 2" in log.read_text()
                 or "not applying 2 to api" in log.read_text(), EVENT_S, what="the scale-down, refused")
        assert faulty.target("api") == 6, "never a lowering while cut off"
    finally:
        proxy.close()
