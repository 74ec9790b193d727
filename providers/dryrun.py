"""dry-run: changes nothing anywhere, records every call it would make.

State (the target it was last told) lives in memory, or in `state_file` so that cron-style
`prewarm once` runs see what the previous run "set".
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider, ProviderConfig

log = logging.getLogger("prewarm.providers.dryrun")


class DryRunConfig(ProviderConfig):
    kind: str = "dry-run"
    initial: int = Field(0, ge=0, description="warm workers assumed at start")
    state_file: Optional[str] = Field(None, description="JSON file keeping the last target between runs")


class DryRunProvider(Provider):
    kind = "dry-run"
    Config = DryRunConfig

    def __init__(self, config: DryRunConfig, endpoint: EndpointRef) -> None:
        super().__init__(config, endpoint)
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._target = config.initial
        self._idle: float | None = None
        if config.state_file and Path(config.state_file).exists():
            state = json.loads(Path(config.state_file).read_text()).get(endpoint.name, {})
            self._target = int(state.get("target", config.initial))
            self._idle = state.get("idle_timeout_s")

    def read(self) -> CapacityState:
        with self._lock:
            self.calls.append({"verb": "read"})
            return CapacityState(desired=self._target, ready=self._target, idle_timeout_s=self._idle)

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        with self._lock:
            previous = self._target
            changed = target != previous or (idle_timeout_s is not None and idle_timeout_s != self._idle)
            self.calls.append({"verb": "apply", "target": target, "idle_timeout_s": idle_timeout_s,
                               "changed": changed})
            if changed:
                log.info("dry-run: would set %s warm workers to %d (was %d)",
                         self.endpoint.name, target, previous)
                self._target = target
                if idle_timeout_s is not None:
                    self._idle = idle_timeout_s
                self._save()
            return ApplyResult(changed, previous, target, self._idle)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=0.0,
                            notes="records calls only; nothing is started")

    def _save(self) -> None:
        if not self.config.state_file:
            return
        path = Path(self.config.state_file)
        state = json.loads(path.read_text()) if path.exists() else {}
        state[self.endpoint.name] = {"target": self._target, "idle_timeout_s": self._idle}
        # Write-then-rename: a crash never leaves a half-written state file.
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".dryrun-")
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh)
        os.replace(tmp, path)
