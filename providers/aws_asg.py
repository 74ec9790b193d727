"""aws-asg: an EC2 Auto Scaling group (of GPU instances, typically).

Warm workers = the group's DesiredCapacity; ready = InService, Healthy instances. An optional
warm pool (`warm_pool_min_size`) keeps stopped, pre-initialised instances waiting so a
scale-out skips the boot and model load.

PutWarmPool (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html):
without `MaxGroupPreparedCapacity` AWS keeps MaxSize - DesiredCapacity instances in the pool
(MinSize is only a floor), and "only when MaxGroupPreparedCapacity and MinSize are set to the
same value does the warm pool have an absolute size": so both are sent as warm_pool_min_size.
A put replaces the whole pool configuration: the pool's InstanceReusePolicy, and its PoolState
unless `warm_pool_state` is set, are read (DescribeWarmPool) and sent back unchanged. Scheduled mode uses the group's own scheduled
actions (MinSize at a StartTime): Application Auto Scaling does not drive EC2 groups.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import Field

from .aws_common import AwsConfig, AwsProvider
from .aws_scheduled import Schedule, utc
from .base import Capabilities, CapacityState


class AwsAsgConfig(AwsConfig):
    kind: str = "aws-asg"
    group_name: str = Field(min_length=1, description="Auto Scaling group name")
    warm_pool_min_size: Optional[int] = Field(None, ge=0, description="keep a warm pool of this size")
    warm_pool_state: Optional[Literal["Stopped", "Running", "Hibernated"]] = Field(
        None, description="state of warm-pool instances (default: keep the pool's, Stopped for a new pool)")


class AwsAsgProvider(AwsProvider):
    kind = "aws-asg"
    Config = AwsAsgConfig
    config: AwsAsgConfig

    def _group(self) -> dict[str, Any]:
        got = self.call("autoscaling", "DescribeAutoScalingGroups",
                        AutoScalingGroupNames=[self.config.group_name])
        groups = got.get("AutoScalingGroups") or []
        if not groups:
            raise self.error(f"Auto Scaling group {self.config.group_name} not found",
                             retryable=False, code="GroupNotFound")
        return groups[0]

    def read(self) -> CapacityState:
        group = self._group()
        ready = sum(1 for i in group.get("Instances", [])
                    if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy")
        detail: dict[str, Any] = {"min_size": int(group["MinSize"]), "max_size": int(group["MaxSize"])}
        if self.config.warm_pool_min_size is not None:
            pool = self.call("autoscaling", "DescribeWarmPool",
                             AutoScalingGroupName=self.config.group_name)
            detail["warm_pool"] = pool.get("WarmPoolConfiguration")
            detail["warm_pool_instances"] = len(pool.get("Instances") or [])
        return CapacityState(int(group["DesiredCapacity"]), ready, detail=detail)

    def fit(self, target: int, state: CapacityState) -> int:
        # The group refuses a desired capacity outside [MinSize, MaxSize]. In scheduled mode
        # prewarm owns MinSize (the floor), so only MaxSize bounds the target.
        target = min(target, state.detail["max_size"])
        if self.config.mode == "direct":
            target = max(target, state.detail["min_size"])
        return target

    def _write(self, target: int, state: CapacityState) -> bool:
        changed = False
        if target != state.desired:
            self.call("autoscaling", "SetDesiredCapacity", AutoScalingGroupName=self.config.group_name,
                      DesiredCapacity=target, HonorCooldown=False)
            changed = True
        if self.config.warm_pool_min_size is not None:
            changed |= self._put_warm_pool(state.detail.get("warm_pool") or {})
        return changed

    def _put_warm_pool(self, have: dict[str, Any]) -> bool:
        size = self.config.warm_pool_min_size
        want: dict[str, Any] = {"MinSize": size, "MaxGroupPreparedCapacity": size}
        if self.config.warm_pool_state is not None:
            want["PoolState"] = self.config.warm_pool_state
        if all(have.get(k) == v for k, v in want.items()):
            return False
        # Everything PutWarmPool is not given goes back to AWS's default: keep the user's.
        kept = {k: have[k] for k in ("PoolState", "InstanceReusePolicy") if have.get(k) is not None}
        self.call("autoscaling", "PutWarmPool", AutoScalingGroupName=self.config.group_name,
                  **{**kept, **want})
        return True

    def make_schedule(self) -> "AsgSchedule":
        return AsgSchedule(self)

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(
            scale_to_zero=True, typical_ready_s=300.0 if self.config.warm_pool_min_size is None else 60.0,
            notes="instances of an Auto Scaling group, within its MinSize/MaxSize")


class AsgSchedule(Schedule):
    """EC2 Auto Scaling scheduled actions: MinSize at a StartTime (UTC)."""

    provider: AwsAsgProvider

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.provider.call("autoscaling", operation,
                                  AutoScalingGroupName=self.provider.config.group_name, **params)

    def bounds(self) -> tuple[int, int, list[str]]:
        group = self.provider._group()
        suspended = {p.get("ProcessName") for p in group.get("SuspendedProcesses", [])}
        warnings = (["ScheduledActions is suspended on this group: the actions will not run"]
                    if "ScheduledActions" in suspended else [])
        return int(group["MinSize"]), int(group["MaxSize"]), warnings

    def write_floor(self, workers: int) -> None:
        self._call("UpdateAutoScalingGroup", MinSize=workers)

    def owned(self) -> dict[str, tuple[datetime, int]]:
        out: dict[str, tuple[datetime, int]] = {}
        for action in self.pages(self._call, "DescribeScheduledActions", "ScheduledUpdateGroupActions"):
            start = action.get("StartTime")
            out[action["ScheduledActionName"]] = (utc(start) if start else None, action.get("MinSize"))
        return out

    def put(self, name: str, moment: datetime, workers: int) -> None:
        self._call("PutScheduledUpdateGroupAction", ScheduledActionName=name, StartTime=moment,
                   MinSize=workers)

    def delete(self, name: str) -> None:
        self._call("DeleteScheduledAction", ScheduledActionName=name)
