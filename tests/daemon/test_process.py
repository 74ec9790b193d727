"""`prewarm run` as a real process: systemd notifications, SIGTERM, SIGHUP, SIGKILL and a
restart, and the SQLite single-daemon rule."""
from __future__ import annotations

import os
import signal
import socket
from datetime import datetime, timedelta, timezone


from daemon_helpers import seed_plan, spawn, wait_for, write_config
from prewarm.store import Store


def now() -> datetime:
    return datetime.now(timezone.utc)


def setup(tmp_path, faulty, url, **daemon):
    cfg = write_config(tmp_path / "prewarm.toml", url, [{"name": "api", "dir": faulty.dir, "max_workers": 10}],
                       daemon={"reconcile_interval": "1s", **daemon})
    return cfg, Store(url)


def log_text(path) -> str:
    return path.read_text() if path.exists() else ""


def stop(proc, timeout=120) -> None:
    """SIGTERM, then wait for the exit (the timeout only keeps a hung daemon from hanging the
    suite; how fast it stops is not asserted: the machine may be loaded)."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout)


def reconciles(faulty, proc, n: int = 3) -> None:
    """Wait until `proc` has read the provider n more times: n reconcile passes (an event,
    where a fixed sleep would assume how fast a loaded machine runs them)."""
    pid = proc.pid
    seen = sum(1 for c in faulty.calls("read") if c["pid"] == pid)
    wait_for(lambda: sum(1 for c in faulty.calls("read") if c["pid"] == pid) >= seen + n, 120,
             what=f"{n} reconcile passes")


def test_notify_ready_watchdog_stopping_and_sigterm_finishes_the_call_in_flight(tmp_path, faulty, sqlite_url, procs):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    cfg, store = setup(tmp_path, faulty, sqlite_url)
    seed_plan(store, "api", now(), [(now() + timedelta(seconds=2), 3)])
    faulty.control(apply_block=True)  # the apply stays in flight until the test lets it finish
    log = tmp_path / "daemon.log"
    proc = spawn(cfg, "run", log=log, extra_env={"NOTIFY_SOCKET": sock_path})
    procs.append(proc)
    messages = []

    def got(text):
        while not any(text in m for m in messages):
            messages.append(sock.recv(4096).decode())
        return True

    assert got("READY=1")
    assert got("WATCHDOG=1")
    wait_for(lambda: faulty.calls("apply", "started"), 20, what="the apply to start")
    proc.send_signal(signal.SIGTERM)  # while the call is in flight
    assert got("STOPPING=1")
    assert proc.poll() is None, "the daemon exited with the call in flight"
    faulty.control(apply_block=False)
    proc.wait(120)  # as stop() below: only keeps a hung daemon from hanging the suite
    assert proc.returncode == 0, log_text(log)
    assert [c["target"] for c in faulty.changes()] == [3], "the call in flight was finished, not cut"
    assert len(faulty.calls("apply", "started")) == 1, "no call was started after SIGTERM"
    assert faulty.target("api") == 3
    assert [(a["requested"]["target"], a["result"]) for a in store.actions("api")] == [(3, "ok")]
    store.close()


def test_sighup_reloads_and_a_bad_config_is_refused(tmp_path, faulty, sqlite_url, procs):
    cfg, store = setup(tmp_path, faulty, sqlite_url)
    seed_plan(store, "api", now(), [(now(), 8)])
    log = tmp_path / "daemon.log"
    proc = spawn(cfg, "run", log=log)
    procs.append(proc)
    wait_for(lambda: faulty.target("api") == 8, 20, what="the first apply")
    good = cfg.read_text()
    cfg.write_text(good.replace("max_workers = 10", "max_workers = oops"))
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in log_text(log), 10, what="the refusal")
    reconciles(faulty, proc)  # on the old config: nothing changes
    assert proc.poll() is None and faulty.target("api") == 8
    cfg.write_text(good.replace("max_workers = 10", "max_workers = 5"))
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: faulty.target("api") == 5, 10, what="the new max_workers to apply")
    assert "config reloaded" in log_text(log)
    stop(proc)
    assert proc.returncode == 0
    assert [(a["requested"]["target"], a["result"]) for a in store.actions("api")] == [(8, "ok"), (5, "ok")]
    store.close()


def test_sigkill_mid_apply_then_restart_loses_nothing_and_doubles_nothing(tmp_path, faulty, sqlite_url, procs):
    cfg, store = setup(tmp_path, faulty, sqlite_url)
    t = now()
    seed_plan(store, "api", t, [(t, 1), (t + timedelta(seconds=4), 4)])
    faulty.control(apply_delay_s=0)
    log = tmp_path / "daemon.log"
    first = spawn(cfg, "run", log=log)
    procs.append(first)
    wait_for(lambda: faulty.target("api") == 1, 20, what="the first apply")
    faulty.control(apply_delay_s=30)  # the warm-up's call hangs: we kill the daemon inside it
    wait_for(lambda: any(c["target"] == 4 for c in faulty.calls("apply", "started")), 20, what="the warm-up")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert faulty.target("api") == 1
    faulty.control(apply_delay_s=0)
    second = spawn(cfg, "run", log=log)
    procs.append(second)
    wait_for(lambda: faulty.target("api") == 4, 20, what="the warm-up after the restart")
    reconciles(faulty, second)  # nothing is sent again
    stop(second)
    assert [c["target"] for c in faulty.changes()] == [1, 4], "the warm-up was applied once"
    assert [(a["requested"]["target"], a["result"]) for a in store.actions("api")] == [(1, "ok"), (4, "ok")]
    assert all(r["status"] == "applied" for r in store.current_plan("api"))
    store.close()


def test_a_second_daemon_on_one_sqlite_database_refuses(tmp_path, faulty, sqlite_url, procs):
    cfg, store = setup(tmp_path, faulty, sqlite_url)
    store.close()
    first = spawn(cfg, "run", log=tmp_path / "first.log")
    procs.append(first)
    wait_for(lambda: "leading" in log_text(tmp_path / "first.log"), 20, what="the first daemon to lead")
    second = spawn(cfg, "run", log=tmp_path / "second.log")
    procs.append(second)
    assert second.wait(20) == 1
    message = log_text(tmp_path / "second.log")
    assert "another prewarm daemon" in message and f"pid {first.pid}" in message
    assert "SQLite supports one daemon" in message
    assert first.poll() is None
    stop(first)


def child_pids(pid: int) -> set[int]:
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out.update(int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split())
        except OSError:
            pass
    return out


def start_with_refresh_processes(tmp_path, faulty, url, procs):
    """`prewarm run` with [daemon] refresh_processes = 1 on three days of demo history, once
    it has planned from the child's first forecast: (process, store, log, child pids)."""
    from prewarm.demo import generate
    from prewarm.ingest import ingest_file

    cfg, store = setup(tmp_path, faulty, url, cycle_interval="3s", refresh_processes=1)
    cfg.write_text(cfg.read_text() + '\n[forecast]\nmodel = "seasonal-naive"\nhistory = "3d"\nhorizon = "1h"\n'
                                      'refresh_interval = "6s"\n')
    start = now().replace(second=0, microsecond=0) - timedelta(days=3)
    traffic = tmp_path / "t.csv"
    generate(traffic, start, days=3)
    traffic.write_text(traffic.read_text().replace("demo-chat", "api"))
    ingest_file(store, traffic)
    log = tmp_path / "daemon.log"
    proc = spawn(cfg, "run", log=log)
    procs.append(proc)
    wait_for(lambda: store.current_plan("api"), 60, poll=0.5, what="a plan from the first refresh")
    children = wait_for(lambda: child_pids(proc.pid), 10, what="the refresh process")
    return proc, store, log, children


def gone(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_refresh_processes_run_beside_the_daemon_and_go_with_it(tmp_path, faulty, sqlite_url, procs):
    """[daemon] refresh_processes: the daemon plans from forecasts a child process refreshes;
    the first plan waits for the first forecast; SIGTERM leaves no child behind."""
    proc, store, log, children = start_with_refresh_processes(tmp_path, faulty, sqlite_url, procs)
    first = store.current_plan("api")[0]["issued_at"]
    # Later cycles keep planning (forecasts refreshed every 6 s in the child).
    wait_for(lambda: store.current_plan("api")[0]["issued_at"] > first + timedelta(seconds=10), 60, poll=0.5,
             what="later cycles")
    assert proc.poll() is None, log_text(log)
    assert "forecast failed" not in log_text(log) and "refresh pool broken" not in log_text(log), log_text(log)
    with store.begin() as c:  # the long first cycle and the next one did not both write a plan
        assert c.exec_driver_sql("SELECT count(*) FROM plans WHERE current").scalar() == 1
    stop(proc)
    assert proc.returncode == 0, log_text(log)
    for pid in children:
        wait_for(lambda pid=pid: gone(pid), 10, what=f"refresh process {pid} to end")
    store.close()


def test_a_killed_daemon_leaves_no_refresh_process(tmp_path, faulty, sqlite_url, procs):
    proc, store, log, children = start_with_refresh_processes(tmp_path, faulty, sqlite_url, procs)
    proc.kill()
    proc.wait(10)
    for pid in children:
        wait_for(lambda pid=pid: gone(pid), 15, what=f"orphaned refresh process {pid} to exit")
    store.close()
