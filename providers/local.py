"""local: real worker processes on this machine (the demo's workers).

Each worker is a process running prewarm.providers.local_worker; it refuses connections
until it has "loaded" for `load_time`, then answers /healthz. State lives in files under
`state_dir/<endpoint>/`, one per worker, so `prewarm once` runs from cron and the daemon
see the same workers. Workers run in their own session: they outlive the prewarm process
that started them, as a cloud provider's workers would.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

from pydantic import Field

from .base import (ApplyResult, Capabilities, CapacityState, EndpointRef, Provider, ProviderConfig,
                   ReadyReport)


class LocalConfig(ProviderConfig):
    kind: str = "local"
    load_time_s: float = Field(5.0, ge=0, description="seconds a worker loads before it answers")
    service_time_s: float = Field(0.1, ge=0, description="seconds /infer holds a slot")
    state_dir: str = Field(".prewarm/local", description="where worker records and logs are kept")
    python: str = Field("", description="interpreter for workers (default: the running one)")


class LocalProvider(Provider):
    kind = "local"
    Config = LocalConfig

    def __init__(self, config: LocalConfig, endpoint: EndpointRef) -> None:
        super().__init__(config, endpoint)
        self.dir = Path(config.state_dir) / endpoint.name
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- bookkeeping -----------------------------------------------------------------------
    def workers(self) -> list[dict]:
        """Live workers, oldest first; records of dead ones are removed."""
        out = []
        for rec_file in sorted(self.dir.glob("worker-*.json")):
            try:
                rec = json.loads(rec_file.read_text())
            except (OSError, ValueError):
                continue
            if _alive(rec["pid"], rec.get("start_ticks")):
                rec["file"] = str(rec_file)
                out.append(rec)
            else:
                rec_file.unlink(missing_ok=True)
        return sorted(out, key=lambda r: r["started_at"])

    def _ready(self, rec: dict) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{rec['port']}/healthz", timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    # -- verbs -----------------------------------------------------------------------------
    def read(self) -> CapacityState:
        live = self.workers()
        ready = sum(1 for rec in live if self._ready(rec))
        return CapacityState(desired=len(live), ready=ready,
                             detail={"pids": [r["pid"] for r in live], "ports": [r["port"] for r in live]})

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        live = self.workers()
        previous = len(live)
        if target > previous:
            started = [self._start() for _ in range(target - previous)]
            return ApplyResult(True, previous, target, detail={"started": started})
        if target < previous:
            # Stop workers still loading first (they serve nobody yet), then the newest.
            newest_first = list(reversed(live))
            loading = [r for r in newest_first if not self._ready(r)]
            victims = loading + [r for r in newest_first if r not in loading]
            stopped = [self._stop(r) for r in victims[: previous - target]]
            return ApplyResult(True, previous, target, detail={"stopped": stopped})
        return ApplyResult(False, previous, target)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=False, typical_ready_s=self.config.load_time_s,
                            notes="real processes on this machine; ready when /healthz answers")

    def wait_ready(self, target: int, timeout_s: float, *, poll_s: float = 0.2,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> ReadyReport:
        return super().wait_ready(target, timeout_s, poll_s=poll_s, clock=clock, sleep=sleep)

    def stop_all(self) -> int:
        live = self.workers()
        for rec in live:
            self._stop(rec)
        return len(live)

    # -- processes -------------------------------------------------------------------------
    def _start(self) -> int:
        port = _free_port()
        log = open(self.dir / f"worker-{port}.log", "ab")
        proc = subprocess.Popen(
            [self.config.python or sys.executable, "-m", "prewarm.providers.local_worker", "--port", str(port),
             "--load-time", str(self.config.load_time_s), "--service-time", str(self.config.service_time_s),
             "--name", f"{self.endpoint.name}-{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        record = {"pid": proc.pid, "port": port, "started_at": time.time(), "start_ticks": _start_ticks(proc.pid)}
        tmp = self.dir / f".worker-{port}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.dir / f"worker-{port}.json")
        return proc.pid

    def _stop(self, rec: dict) -> int:
        try:
            os.kill(rec["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while _alive(rec["pid"], rec.get("start_ticks")) and time.monotonic() < deadline:
            _reap(rec["pid"])
            time.sleep(0.05)
        Path(rec["file"]).unlink(missing_ok=True)
        return rec["pid"]


def _alive(pid: int, start_ticks: int | None = None) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A recycled pid is not our worker: its start time differs from the one recorded at
    # spawn. (Not the command line: between fork and exec it is still the parent's.)
    ticks = _start_ticks(pid)
    return start_ticks is None or ticks is None or ticks == start_ticks


def _start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _reap(pid: int) -> None:
    # Our own children become zombies when they exit; collect them so they read as dead.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
