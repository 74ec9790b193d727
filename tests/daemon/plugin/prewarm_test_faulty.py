"""`faulty`: a provider plugin for the daemon tests, installed the way a third party would
ship one (a dist-info with an entry point, put on the path by the tests).

Its state lives on disk so several processes (a daemon, its restart, `prewarm once`) see
one provider: `<dir>/<endpoint>.state.json` holds the warm target, `<dir>/calls.jsonl`
logs every call (reads too) with its wall-clock time and pid. Faults come from `<dir>/control.json`,
which a test edits while a daemon runs:

  read_fail: true       read() raises a retryable ProviderError
  read_block: true      read() blocks while it stays true (a stuck loop)
  throttle: N           the next N apply() calls raise a retryable "throttled" error
  apply_delay_s: S      apply() takes S seconds (a slow call in flight), logging start and end
  apply_block: true     apply() blocks, once started, while it stays true (a call in flight
                        for as long as the test wants)
  capabilities: {...}   keyword arguments of its Capabilities (default: no idle timeout); with
                        idle_timeout, the one applied is kept and read back, like a platform's
  idle_multiple: N      the idle timeout kept is rounded up to a multiple of N (a platform coarser
                        than its capabilities say)
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from prewarm.providers.base import ApplyResult, Capabilities, CapacityState, Provider, ProviderConfig


class FaultyConfig(ProviderConfig):
    kind: str = "faulty"
    dir: str


class FaultyProvider(Provider):
    kind = "faulty"
    Config = FaultyConfig

    def __init__(self, config, endpoint) -> None:
        super().__init__(config, endpoint)
        self.dir = Path(config.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file = self.dir / f"{endpoint.name}.state.json"

    @contextmanager
    def _control(self):
        """The control document, locked; changes written back (so `throttle` counts down
        across processes)."""
        with open(self.dir / ".control.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.dir / "control.json"
            doc = json.loads(path.read_text()) if path.exists() else {}
            before = json.dumps(doc, sort_keys=True)
            yield doc
            if json.dumps(doc, sort_keys=True) != before:
                path.write_text(json.dumps(doc))

    def _log(self, **entry) -> None:
        entry.update(t=time.time(), pid=os.getpid(), endpoint=self.endpoint.name)
        with open(self.dir / "calls.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {"target": 0}

    def _target(self) -> int:
        return int(self._state()["target"])

    def read(self) -> CapacityState:
        while True:
            with self._control() as c:
                fail, block = c.get("read_fail"), c.get("read_block")
            if not block:
                break
            time.sleep(0.05)
        if fail:
            self._log(verb="read", result="error")
            raise self.error("read failed (injected)", retryable=True)
        state = self._state()
        self._log(verb="read", result="ok")
        return CapacityState(desired=int(state["target"]), ready=int(state["target"]),
                             idle_timeout_s=state.get("idle_timeout_s"))

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        with self._control() as c:
            throttled = c.get("throttle", 0) > 0
            if throttled:
                c["throttle"] -= 1
            delay = float(c.get("apply_delay_s", 0))
            multiple = c.get("idle_multiple")
        if throttled:
            self._log(verb="apply", target=target, result="throttled")
            raise self.error("rate exceeded (injected)", retryable=True, code="Throttling")
        state = self._state()
        previous, idle = int(state["target"]), state.get("idle_timeout_s")
        self._log(verb="apply", target=target, result="started", previous=previous, idle_timeout_s=idle_timeout_s)
        if delay:
            time.sleep(delay)
        while self._blocked():
            time.sleep(0.05)
        if idle_timeout_s is not None and self.capabilities().idle_timeout:
            idle = -(-idle_timeout_s // multiple) * multiple if multiple else idle_timeout_s
        changed = target != previous or idle != state.get("idle_timeout_s")
        if changed:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"target": target, "idle_timeout_s": idle}))
            os.replace(tmp, self.state_file)
        self._log(verb="apply", target=target, result="done", changed=changed, previous=previous)
        return ApplyResult(changed, previous, target, idle)

    def _blocked(self) -> bool:
        with self._control() as c:
            return bool(c.get("apply_block"))

    def capabilities(self) -> Capabilities:
        with self._control() as c:
            kw = dict(c.get("capabilities") or {})
        return Capabilities(notes="test plugin", **kw)


from prewarm.forecasters.base import Forecaster  # noqa: E402


class RepeatDayForecaster(Forecaster):
    """Yesterday, repeated, with bands at +-20%: deterministic and fast, so a test can run a
    simulated day of one-minute cycles (statsforecast takes ~0.2 s a call)."""

    name = "test-repeat-day"

    def __init__(self, season_s: int = 86400, **params) -> None:
        super().__init__(season_s=season_s, **params)
        self.season_s = int(season_s)

    def forecast(self, history, *, horizon, step_s, levels=(80, 95)):
        import pandas as pd

        season = max(1, self.season_s // step_s)
        parts = []
        for uid, part in history.groupby("unique_id", sort=False):
            y = part["y"].to_numpy()
            last = part["ds"].iloc[-1]
            ds = pd.date_range(last + pd.Timedelta(seconds=step_s), periods=horizon, freq=f"{step_s}s")
            mean = [float(y[len(y) - season + (i % season)]) if len(y) >= season else float(y.mean())
                    for i in range(horizon)]
            frame = pd.DataFrame({"unique_id": uid, "ds": ds, "mean": mean})
            for level in levels:
                frame[f"lo-{level}"] = frame["mean"] * (1 - level / 500)
                frame[f"hi-{level}"] = frame["mean"] * (1 + level / 500)
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)
