"""Two daemons on one PostgreSQL: exactly one leads; the other takes over within
leader_takeover (3 s here) when the leader is SIGKILLed or loses its connection."""
from __future__ import annotations

import signal
import time
import urllib.request

import pytest
from sqlalchemy.engine import make_url

from daemon_helpers import free_port, fresh_pg, spawn, wait_for, write_config
from tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres
TAKEOVER_S = 3.0


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


def test_one_leads_and_the_standby_takes_over_after_sigkill(tmp_path, pg_url, faulty, procs):
    url = fresh_pg(pg_url)
    a = start_daemon(tmp_path, "a", url, faulty)
    procs.append(a[0])
    wait_for(lambda: roles([a]) == [1.0], 30, what="the first daemon to lead")
    b = start_daemon(tmp_path, "b", url, faulty)
    procs.append(b[0])
    wait_for(lambda: roles([b]) == [0.0], 30, what="the second daemon to stand by")
    time.sleep(TAKEOVER_S)
    assert roles([a, b]) == [1.0, 0.0], "exactly one leads"
    a[0].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: roles([b]) == [1.0], 3 * TAKEOVER_S, poll=0.02, what="the standby to take over")
    takeover = time.monotonic() - killed
    print(f"takeover after SIGKILL: {takeover:.2f}s (leader_takeover {TAKEOVER_S}s)")
    assert takeover <= TAKEOVER_S + 1.0  # 1 s for the metrics poll and a loaded machine


def test_a_leader_that_loses_its_connection_steps_down(tmp_path, pg_url, faulty, procs):
    url = fresh_pg(pg_url)
    u = make_url(url)
    proxy = TcpProxy(u.host, u.port or 5432)
    try:
        via_proxy = u.set(port=proxy.port).render_as_string(hide_password=False)
        a = start_daemon(tmp_path, "a", via_proxy, faulty)
        procs.append(a[0])
        wait_for(lambda: roles([a]) == [1.0], 30, what="the first daemon to lead")
        b = start_daemon(tmp_path, "b", url, faulty)
        procs.append(b[0])
        wait_for(lambda: roles([b]) == [0.0], 30, what="the second daemon to stand by")
        proxy.cut()
        cut = time.monotonic()
        wait_for(lambda: roles([b]) == [1.0], 3 * TAKEOVER_S, poll=0.02, what="the standby to take over")
        takeover = time.monotonic() - cut
        wait_for(lambda: roles([a]) == [0.0], 3 * TAKEOVER_S, what="the old leader to step down")
        print(f"takeover after a lost connection: {takeover:.2f}s")
        assert takeover <= TAKEOVER_S + 1.0
        assert "leadership lost" in (tmp_path / "a.log").read_text()
    finally:
        proxy.close()
