"""aws-ecs: an ECS service's desiredCount. Ready = runningCount of the service."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from .aws_common import AwsConfig, AwsProvider
from .base import Capabilities, CapacityState


class AwsEcsConfig(AwsConfig):
    kind: str = "aws-ecs"
    cluster: str = Field(min_length=1, description="cluster name or ARN")
    service: str = Field(min_length=1, description="service name or ARN")


class AwsEcsProvider(AwsProvider):
    kind = "aws-ecs"
    Config = AwsEcsConfig
    config: AwsEcsConfig

    def _service(self) -> dict[str, Any]:
        got = self.call("ecs", "DescribeServices", cluster=self.config.cluster,
                        services=[self.config.service])
        services = got.get("services") or []
        if not services:
            reasons = [f.get("reason") for f in got.get("failures", [])]
            raise self.error(f"service {self.config.service} not found in cluster "
                             f"{self.config.cluster} ({', '.join(map(str, reasons)) or 'no answer'})",
                             retryable=False, code="ServiceNotFound")
        return services[0]

    def read(self) -> CapacityState:
        svc = self._service()
        return CapacityState(int(svc.get("desiredCount", 0)), int(svc.get("runningCount", 0)),
                             detail={"status": svc.get("status"),
                                     "pending": int(svc.get("pendingCount", 0)),
                                     "settled": svc.get("status") == "ACTIVE"})

    def _write(self, target: int, state: CapacityState) -> bool:
        if target == state.desired:
            return False
        self.call("ecs", "UpdateService", cluster=self.config.cluster, service=self.config.service,
                  desiredCount=target)
        return True

    def scalable_target(self) -> tuple[str, str, str]:
        cluster = self.config.cluster.rsplit("/", 1)[-1]
        service = self.config.service.rsplit("/", 1)[-1]
        return "ecs", f"service/{cluster}/{service}", "ecs:service:DesiredCount"

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(scale_to_zero=True, typical_ready_s=60.0,
                                      notes="tasks of an ECS service")
