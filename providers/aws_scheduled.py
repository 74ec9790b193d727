"""Scheduled mode: the plan written into AWS as one-time scheduled actions that raise a floor,
so warm-ups still happen while the daemon is down.

Two backends share one reconciliation (`Schedule.sync`):
- `AppAutoScalingSchedule`: Application Auto Scaling scalable target + `at(...)` scheduled
  actions with `MinCapacity` (Lambda, SageMaker variants and inference components, ECS).
- `AsgSchedule` (in aws_asg.py): EC2 Auto Scaling's own scheduled actions with `MinSize`;
  Application Auto Scaling does not drive EC2 Auto Scaling groups.

Semantics (documented for users in docs/providers/aws-*.md): a scheduled action only moves
the floor (MinCapacity / MinSize). When it fires above the current capacity, AWS scales out
to it; when it lowers the floor, capacity comes down only through the target's own scaling
policies or the daemon's next `apply`. The maximum is never written by a scheduled action:
the target's MaxCapacity (or the group's MaxSize) stays as the user set it, and floors are
clamped under it. Actions prewarm owns are named `<prefix>-<endpoint>-<UTC time>`; actions
with other names are never touched.

This module sits below aws_common.py: it knows the provider only through `ScheduleHost` (the
few members a schedule uses), so aws_common imports it and it imports nothing of aws_common.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Protocol

from .base import EndpointRef

# AWS allows 200 scheduled actions per scalable target and 125 per Auto Scaling group; new
# actions are written before superseded ones are deleted (fail warm), so stay under half.
MAX_ACTIONS = 60


@dataclass(frozen=True)
class ScheduleResult:
    put: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    kept: int = 0
    clamped: int = 0  # commands lowered under the target's maximum
    dropped: int = 0  # future commands beyond MAX_ACTIONS, written on a later sync
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.put or self.deleted)


def utc(moment: datetime) -> datetime:
    """Aware UTC, whole seconds. Naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def owned_prefix(prefix: str, endpoint: str) -> str:
    # Scheduled action names may not contain ':', '/' or '|'.
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', endpoint)}-"


class ScheduleHost(Protocol):
    """What a schedule needs of its AWS provider (aws_common.AwsProvider is one)."""

    config: Any  # an AwsConfig: `schedule_prefix` is read
    endpoint: EndpointRef

    def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]: ...

    def bounded(self, target: int) -> int: ...


class Schedule(ABC):
    """Reconciles owned scheduled actions with a list of (moment, workers) commands."""

    def __init__(self, provider: ScheduleHost) -> None:
        self.provider = provider
        self.prefix = owned_prefix(provider.config.schedule_prefix, provider.endpoint.name)

    # backend operations --------------------------------------------------------------------
    @abstractmethod
    def bounds(self) -> tuple[int, int, list[str]]:
        """(current floor, ceiling, warnings), registering the target if needed."""

    @abstractmethod
    def write_floor(self, workers: int) -> None:
        ...

    @abstractmethod
    def owned(self) -> dict[str, tuple[datetime, int]]:
        """Owned scheduled actions: name -> (UTC moment, floor). An action that cannot be read
        back (edited by hand) maps to (None, None) and so is rewritten."""

    @abstractmethod
    def put(self, name: str, moment: datetime, workers: int) -> None:
        ...

    @abstractmethod
    def delete(self, name: str) -> None:
        ...

    # shared logic --------------------------------------------------------------------------
    def pages(self, call: Callable[..., dict[str, Any]], operation: str,
              key: str) -> Iterator[dict[str, Any]]:
        """Owned actions from a paginated Describe call (NextToken)."""
        token = None
        while True:
            page = call(operation, **({"NextToken": token} if token else {}))
            for action in page.get(key, []):
                if action["ScheduledActionName"].startswith(self.prefix):
                    yield action
            token = page.get("NextToken")
            if not token:
                return

    def set_floor(self, workers: int) -> tuple[int, bool]:
        """Move the floor now. Returns (floor set, changed); the floor is clamped under the
        target's ceiling."""
        floor, ceiling, _ = self.bounds()
        workers = min(workers, ceiling)
        if workers == floor:
            return workers, False
        self.write_floor(workers)
        return workers, True

    def desired(self, commands: Iterable[Any], now: datetime, ceiling: int) -> tuple[dict[str, tuple[datetime, int]], int, int]:
        """Future commands as owned actions, with runs of the same value collapsed."""
        pairs = ((c.at, c.warm_workers) if hasattr(c, "warm_workers") else c for c in commands)
        ordered = sorted(((utc(at), int(n)) for at, n in pairs), key=lambda c: c[0])
        out: dict[str, tuple[datetime, int]] = {}
        clamped = dropped = 0
        previous: int | None = None
        for at, workers in ordered:
            if at <= now:
                continue
            bounded = min(self.provider.bounded(workers), ceiling)
            clamped += bounded != workers
            # Collapse among future commands only: the first one is written even if it
            # repeats the value in force, in case that value never reached AWS.
            if bounded != previous:
                if len(out) >= MAX_ACTIONS:
                    dropped += 1
                else:
                    out[f"{self.prefix}{at:%Y%m%dT%H%M%SZ}"] = (at, bounded)
            previous = bounded
        return out, clamped, dropped

    def sync(self, commands: Iterable[Any], *,
             now: datetime | None = None) -> ScheduleResult:
        """`commands`: (datetime, workers) pairs or planner Commands (`.at`, `.warm_workers`).
        Make the owned actions equal to the future commands: put new/changed ones first,
        then delete superseded ones (a failure in between leaves extra warm-ups, not gaps)."""
        now = utc(now or datetime.now(timezone.utc))
        _, ceiling, warnings = self.bounds()
        want, clamped, dropped = self.desired(commands, now, ceiling)
        have = self.owned()
        put = [name for name, spec in want.items() if have.get(name) != spec]
        for name in put:
            self.put(name, *want[name])
        stale = [name for name in have if name not in want]
        for name in stale:
            self.delete(name)
        return ScheduleResult(tuple(put), tuple(stale), len(want) - len(put), clamped, dropped,
                              tuple(warnings))


class AppAutoScalingSchedule(Schedule):
    """Application Auto Scaling: one scalable target, `at(...)` actions with MinCapacity."""

    def __init__(self, provider: ScheduleHost, namespace: str, resource_id: str,
                 dimension: str) -> None:
        super().__init__(provider)
        self.ids = {"ServiceNamespace": namespace, "ResourceId": resource_id,
                    "ScalableDimension": dimension}

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.provider.call("application-autoscaling", operation, **self.ids, **params)

    def bounds(self) -> tuple[int, int, list[str]]:
        found = self.provider.call(
            "application-autoscaling", "DescribeScalableTargets",
            ServiceNamespace=self.ids["ServiceNamespace"], ResourceIds=[self.ids["ResourceId"]],
            ScalableDimension=self.ids["ScalableDimension"]).get("ScalableTargets", [])
        if not found:
            # Unregistered: prewarm registers it with the endpoint's bounds from prewarm's config.
            floor = self.provider.bounded(self.provider.endpoint.min_workers)
            ceiling = max(floor, self.provider.endpoint.max_workers)
            self._call("RegisterScalableTarget", MinCapacity=floor, MaxCapacity=ceiling)
            return floor, ceiling, []
        target = found[0]
        warnings = []
        if (target.get("SuspendedState") or {}).get("ScheduledScalingSuspended"):
            warnings.append("scheduled scaling is suspended on this scalable target: "
                            "the actions are stored but will not run")
        return int(target["MinCapacity"]), int(target["MaxCapacity"]), warnings

    def write_floor(self, workers: int) -> None:
        # MaxCapacity omitted: the user's maximum stays as it is.
        self._call("RegisterScalableTarget", MinCapacity=workers)

    def owned(self) -> dict[str, tuple[datetime, int]]:
        out: dict[str, tuple[datetime, int]] = {}
        for action in self.pages(self._call, "DescribeScheduledActions", "ScheduledActions"):
            match = re.fullmatch(r"at\((.+)\)", action.get("Schedule", ""))
            moment = utc(datetime.fromisoformat(match.group(1))) if match else None
            floor = (action.get("ScalableTargetAction") or {}).get("MinCapacity")
            out[action["ScheduledActionName"]] = (moment, floor)
        return out

    def put(self, name: str, moment: datetime, workers: int) -> None:
        self._call("PutScheduledAction", ScheduledActionName=name,
                   Schedule=f"at({moment:%Y-%m-%dT%H:%M:%S})", Timezone="UTC",
                   ScalableTargetAction={"MinCapacity": workers})

    def delete(self, name: str) -> None:
        self._call("DeleteScheduledAction", ScheduledActionName=name)
