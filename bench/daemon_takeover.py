"""HA takeover time: two `prewarm run` processes on one PostgreSQL; the leader is SIGKILLed
(or its connection cut, --cut) and we time until the standby reports `prewarm_leader 1` on
its /metrics (polled every 20 ms). Repeated --rounds times, alternating leaders.

    .venv/bin/python bench/daemon_takeover.py [--takeover 15] [--rounds 5] [--cut]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "daemon"), str(REPO / "tests" / "daemon" / "plugin")]
ADMIN = os.environ.get("PREWARM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--takeover", type=float, default=15.0, help="[daemon] leader_takeover, seconds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cut", action="store_true", help="cut the leader's connection instead of killing it")
    args = ap.parse_args()

    from daemon_helpers import Faulty, free_port, fresh_pg, spawn, wait_for, write_config
    from tcpproxy import TcpProxy
    from test_ha import leader_value

    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = "prewarm_bench_takeover"
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = fresh_pg(sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False))
    u = sa.engine.make_url(url)
    work = Path(tempfile.mkdtemp(prefix="prewarm-takeover-"))
    faulty = Faulty(work / "provider")
    proxies: dict[str, TcpProxy] = {}

    def start(tag: str):
        port = free_port()
        db = url
        if args.cut:
            proxies[tag] = TcpProxy(u.host, u.port or 5432)
            db = u.set(port=proxies[tag].port).render_as_string(hide_password=False)
        cfg = write_config(work / f"{tag}.toml", db, [{"name": "api", "dir": faulty.dir}],
                           daemon={"leader_takeover": f"{args.takeover}s", "reconcile_interval": "5s"},
                           metrics=f"127.0.0.1:{port}")
        return spawn(cfg, "run", log=work / f"{tag}.log"), port

    procs = {}
    times = []
    try:
        procs["a"] = start("a")
        wait_for(lambda: leader_value(procs["a"][1]) == 1.0, 60, what="a to lead")
        procs["b"] = start("b")
        wait_for(lambda: leader_value(procs["b"][1]) == 0.0, 60, what="b to stand by")
        leader, standby = "a", "b"
        for r in range(args.rounds):
            time.sleep(2)
            if args.cut:
                proxies[leader].cut()
            else:
                procs[leader][0].send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            wait_for(lambda: leader_value(procs[standby][1]) == 1.0, 4 * args.takeover, poll=0.02, what="takeover")
            times.append(time.monotonic() - t0)
            # bring the old leader back as the new standby
            if args.cut:
                procs[leader][0].kill()
            procs[leader][0].wait(10)
            procs[leader] = start(leader)
            wait_for(lambda: leader_value(procs[leader][1]) == 0.0, 60, what="the old leader to stand by")
            leader, standby = standby, leader
    finally:
        for p, _ in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for proxy in proxies.values():
            proxy.close()
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(json.dumps({"fault": "connection cut" if args.cut else "SIGKILL", "leader_takeover_s": args.takeover,
                      "rounds": len(times), "takeover_s": [round(t, 2) for t in times],
                      "median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2)}, indent=2))


if __name__ == "__main__":
    main()
