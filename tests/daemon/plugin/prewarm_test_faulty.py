"""`faulty`: a provider plugin for the daemon tests, installed the way a third party would
ship one (a dist-info with an entry point, put on the path by the tests).

Its state lives on disk so several processes (a daemon, its restart, `prewarm once`) see
one provider: `<dir>/<endpoint>.state.json` holds the warm target, `<dir>/calls.jsonl`
logs every call with its wall-clock time and pid. Faults come from `<dir>/control.json`,
which a test edits while a daemon runs:

  read_fail: true       read() raises a retryable ProviderError
  read_block: true      read() blocks while it stays true (a stuck loop)
  throttle: N           the next N apply() calls raise a retryable "throttled" error
  apply_delay_s: S      apply() takes S seconds (a slow call in flight), logging start and end
  apply_block: true     apply() blocks, once started, while it stays true (a call in flight
                        for as long as the test wants)
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

    def _target(self) -> int:
        if self.state_file.exists():
            return int(json.loads(self.state_file.read_text())["target"])
        return 0

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
        target = self._target()
        return CapacityState(desired=target, ready=target)

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        with self._control() as c:
            throttled = c.get("throttle", 0) > 0
            if throttled:
                c["throttle"] -= 1
            delay = float(c.get("apply_delay_s", 0))
        if throttled:
            self._log(verb="apply", target=target, result="throttled")
            raise self.error("rate exceeded (injected)", retryable=True, code="Throttling")
        previous = self._target()
        self._log(verb="apply", target=target, result="started", previous=previous)
        if delay:
            time.sleep(delay)
        while self._blocked():
            time.sleep(0.05)
        changed = target != previous
        if changed:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"target": target}))
            os.replace(tmp, self.state_file)
        self._log(verb="apply", target=target, result="done", changed=changed, previous=previous)
        return ApplyResult(changed, previous, target)

    def _blocked(self) -> bool:
        with self._control() as c:
            return bool(c.get("apply_block"))

    def capabilities(self) -> Capabilities:
        return Capabilities(notes="test plugin")


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
