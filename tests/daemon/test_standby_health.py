"""A standby that cannot reach the database is unhealthy (/healthz 503), one that can is
healthy; the leader-lock warning is logged once per outage, not on every poll."""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy.engine import make_url

from daemon_helpers import fresh_pg, free_port, spawn, wait_for, write_config
from prewarm.leader import PostgresLock
from tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Refuser:
    """Where the database was: accepts each connection and closes it at once, counting them
    (each is one attempt of the daemon's to take the leader lock)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def test_a_standby_that_cannot_reach_the_database_is_unhealthy(tmp_path, pg_url, faulty, procs):
    url = fresh_pg(pg_url)
    holder = PostgresLock(url)  # another daemon leads: the one under test stands by
    assert holder.try_acquire()
    u = make_url(url)
    proxy = TcpProxy(u.host, u.port or 5432)
    refuser = None
    port = free_port()
    log = tmp_path / "daemon.log"
    try:
        cfg = write_config(tmp_path / "prewarm.toml", u.set(port=proxy.port).render_as_string(hide_password=False),
                           [{"name": "api", "dir": faulty.dir}], daemon={"leader_takeover": "3s"},
                           metrics=f"127.0.0.1:{port}")
        proc = spawn(cfg, "run", log=log)
        procs.append(proc)
        status, body = wait_for(lambda: (r := healthz(port))[0] and r, 30, what="/healthz to answer")
        assert (status, body.split(";")[0]) == (200, "standby"), body

        proxy.cut()
        refuser = Refuser(proxy.port)
        status, body = wait_for(lambda: (r := healthz(port))[0] == 503 and r, 30, what="/healthz to fail")
        assert body.startswith("standby; cannot reach the database"), body
        started = time.monotonic()
        wait_for(lambda: refuser.accepted >= 10, 60, what="ten attempts on the lock")  # five polls or more
        elapsed = time.monotonic() - started
        warnings = [line for line in log.read_text().splitlines() if "leader lock:" in line]
        # One at the start of the outage, then at most one a minute (none in a short outage).
        assert 1 <= len(warnings) <= 2 + int(elapsed // 60), warnings

        refuser.close()
        refuser = None
        proxy.restore()
        status, body = wait_for(lambda: (r := healthz(port))[0] == 200 and r, 30, what="/healthz to recover")
        assert body.startswith("standby; ok"), body
        wait_for(lambda: "leader lock: the database answers again (after" in log.read_text(), 10,
                 what="the recovery line")
        assert proc.poll() is None
    finally:
        if refuser is not None:
            refuser.close()
        proxy.close()
        holder.release()
