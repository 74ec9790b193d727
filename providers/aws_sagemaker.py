"""SageMaker kinds, one warm number each:

- aws-sagemaker-endpoint: a real-time variant's DesiredInstanceCount.
- aws-sagemaker-serverless: a serverless variant's provisioned concurrency.
- aws-sagemaker-component: an inference component's copy count (down to zero).

The first two go through UpdateEndpointWeightsAndCapacities, the third through
UpdateInferenceComponentRuntimeConfig. Ready counts come from the Describe calls
(CurrentInstanceCount, CurrentServerlessConfig, CurrentCopyCount); a Failed status stops a wait.

While an endpoint is `Creating`, `Updating`, `SystemUpdating` or `RollingBack`, SageMaker refuses
capacity changes ("Updating: UpdateEndpoint or UpdateEndpointWeightsAndCapacities is executing";
"SystemUpdating: ... cannot be updated or deleted or re-scaled until it has completed";
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html) with
`ValidationException: Cannot update in-progress endpoint`. A variant provider therefore reads
the status before it writes: a different target during an update is not sent but raised as a
retryable `EndpointUpdating` error, so the caller's retries and the daemon's next pass send the
target then in force once the endpoint is `InService` (capacity stays as it is meanwhile: fail
warm; a raise is retried, never dropped). `Failed` and `Deleting` endpoints are not written.

A serverless variant deployed without provisioned concurrency cannot gain it in place: AWS
needs a new endpoint config with `ServerlessConfig.ProvisionedConcurrency` deployed by
`UpdateEndpoint` (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-update.html),
which re-creates the serverless environments (cold starts). prewarm does not redeploy an
endpoint on its own: `check` (daemon start, config check) and `apply` refuse it with that fix.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from .aws_common import AwsConfig, AwsProvider
from .base import Capabilities, CapacityState, Finding

_SETTLED = "InService"
_IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
_NOT_WRITABLE = frozenset({"Failed", "Deleting"})


class AwsSageMakerVariantConfig(AwsConfig):
    endpoint_name: str = Field(min_length=1)
    variant_name: str = Field("AllTraffic", min_length=1, description="production variant")


class AwsSageMakerEndpointConfig(AwsSageMakerVariantConfig):
    kind: str = "aws-sagemaker-endpoint"


class AwsSageMakerServerlessConfig(AwsSageMakerVariantConfig):
    kind: str = "aws-sagemaker-serverless"


class AwsSageMakerComponentConfig(AwsConfig):
    kind: str = "aws-sagemaker-component"
    component_name: str = Field(min_length=1, description="inference component name")
    endpoint_name: Optional[str] = Field(None, description="checked against the component's endpoint")


def _status_detail(status: str, reason: Optional[str]) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": status, "settled": status == _SETTLED}
    if status == "Failed":
        detail["failed"] = reason or "Failed"
    return detail


class _VariantProvider(AwsProvider):
    """Shared by the two kinds that address an endpoint's production variant."""

    config: AwsSageMakerVariantConfig
    # UpdateEndpointWeightsAndCapacities refuses 0 instances on a plain variant and a
    # serverless provisioned concurrency under 1, so a target of 0 keeps 1 (fail warm).
    hard_min = 1

    def _variant(self) -> tuple[dict[str, Any], dict[str, Any]]:
        got = self.call("sagemaker", "DescribeEndpoint", EndpointName=self.config.endpoint_name)
        for variant in got.get("ProductionVariants", []):
            if variant.get("VariantName") == self.config.variant_name:
                return got, variant
        names = [v.get("VariantName") for v in got.get("ProductionVariants", [])]
        raise self.error(f"endpoint {self.config.endpoint_name} has no variant "
                         f"{self.config.variant_name!r} (has {names})", retryable=False,
                         code="VariantNotFound")

    def _update(self, target: int, state: CapacityState, change: dict[str, Any]) -> None:
        status = state.detail.get("status", "")
        if status in _IN_PROGRESS:
            raise self.error(f"endpoint {self.config.endpoint_name} is {status}: AWS refuses a capacity "
                             f"change until it is InService; {target} is sent then (retried)",
                             retryable=True, code="EndpointUpdating")
        if status in _NOT_WRITABLE:
            raise self.error(f"endpoint {self.config.endpoint_name} is {status}: its capacity cannot be "
                             f"changed ({state.detail.get('failed') or status})", retryable=False,
                             code=f"Endpoint{status}")
        self.call("sagemaker", "UpdateEndpointWeightsAndCapacities",
                  EndpointName=self.config.endpoint_name,
                  DesiredWeightsAndCapacities=[{"VariantName": self.config.variant_name, **change}])

    def _resource_id(self) -> str:
        return f"endpoint/{self.config.endpoint_name}/variant/{self.config.variant_name}"


class AwsSageMakerEndpointProvider(_VariantProvider):
    kind = "aws-sagemaker-endpoint"
    Config = AwsSageMakerEndpointConfig

    def read(self) -> CapacityState:
        endpoint, variant = self._variant()
        current = int(variant.get("CurrentInstanceCount", 0))
        return CapacityState(int(variant.get("DesiredInstanceCount", current)), current,
                             detail=_status_detail(endpoint.get("EndpointStatus", ""),
                                                   endpoint.get("FailureReason")))

    def _write(self, target: int, state: CapacityState) -> bool:
        if target == state.desired:
            return False
        self._update(target, state, {"DesiredInstanceCount": target})
        return True

    def scalable_target(self) -> tuple[str, str, str]:
        return "sagemaker", self._resource_id(), "sagemaker:variant:DesiredInstanceCount"

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(scale_to_zero=False, typical_ready_s=600.0,
                                      notes="instances of a real-time variant; at least 1")


class AwsSageMakerServerlessProvider(_VariantProvider):
    kind = "aws-sagemaker-serverless"
    Config = AwsSageMakerServerlessConfig

    def read(self) -> CapacityState:
        endpoint, variant = self._variant()
        desired = (variant.get("DesiredServerlessConfig") or {})
        current = (variant.get("CurrentServerlessConfig") or {})
        detail = _status_detail(endpoint.get("EndpointStatus", ""), endpoint.get("FailureReason"))
        detail["max_concurrency"] = current.get("MaxConcurrency")
        detail["problem"] = self._problem(variant)
        return CapacityState(int(desired.get("ProvisionedConcurrency", 0)),
                             int(current.get("ProvisionedConcurrency", 0)), detail=detail)

    def _problem(self, variant: dict[str, Any]) -> str | None:
        """Why provisioned concurrency cannot be set in place on this variant, with the fix."""
        where = f"variant {self.config.variant_name} of endpoint {self.config.endpoint_name}"
        current = variant.get("CurrentServerlessConfig")
        if current is None:
            return (f"{where} is not serverless (it has instances): use kind = "
                    "\"aws-sagemaker-endpoint\" for it")
        if current.get("ProvisionedConcurrency") is None and \
                (variant.get("DesiredServerlessConfig") or {}).get("ProvisionedConcurrency") is None:
            return (f"{where} was deployed without provisioned concurrency, and AWS cannot add it in "
                    "place (UpdateEndpointWeightsAndCapacities refuses it). Create an endpoint config "
                    "whose ServerlessConfig has ProvisionedConcurrency (1 to MaxConcurrency "
                    f"{current.get('MaxConcurrency')}) and deploy it with UpdateEndpoint once; "
                    "prewarm then sets it in place")
        return None

    def check(self) -> list[Finding]:
        _, variant = self._variant()
        problem = self._problem(variant)
        return [Finding("error", problem)] if problem else super().check()

    def _write(self, target: int, state: CapacityState) -> bool:
        if target == state.desired:
            return False
        if state.detail.get("problem"):
            raise self.error(state.detail["problem"], retryable=False, code="NoProvisionedConcurrency")
        self._update(target, state, {"ServerlessUpdateConfig": {"ProvisionedConcurrency": target}})
        return True

    def scalable_target(self) -> tuple[str, str, str]:
        return "sagemaker", self._resource_id(), "sagemaker:variant:DesiredProvisionedConcurrency"

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(
            scale_to_zero=False, typical_ready_s=120.0, max_workers=200,
            notes="provisioned concurrency 1..200, at most the variant's MaxConcurrency; "
                  "on-demand capacity above it still scales to zero")


class AwsSageMakerComponentProvider(AwsProvider):
    kind = "aws-sagemaker-component"
    Config = AwsSageMakerComponentConfig
    config: AwsSageMakerComponentConfig

    def read(self) -> CapacityState:
        got = self.call("sagemaker", "DescribeInferenceComponent",
                        InferenceComponentName=self.config.component_name)
        if self.config.endpoint_name and got.get("EndpointName") != self.config.endpoint_name:
            raise self.error(f"inference component {self.config.component_name} belongs to "
                             f"endpoint {got.get('EndpointName')}, not {self.config.endpoint_name}",
                             retryable=False, code="EndpointMismatch")
        runtime = got.get("RuntimeConfig") or {}
        current = int(runtime.get("CurrentCopyCount", 0))
        return CapacityState(int(runtime.get("DesiredCopyCount", current)), current,
                             detail=_status_detail(got.get("InferenceComponentStatus", ""),
                                                   got.get("FailureReason")))

    def _write(self, target: int, state: CapacityState) -> bool:
        if target == state.desired:
            return False
        self.call("sagemaker", "UpdateInferenceComponentRuntimeConfig",
                  InferenceComponentName=self.config.component_name,
                  DesiredRuntimeConfig={"CopyCount": target})
        return True

    def scalable_target(self) -> tuple[str, str, str]:
        return ("sagemaker", f"inference-component/{self.config.component_name}",
                "sagemaker:inference-component:DesiredCopyCount")

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(scale_to_zero=True, typical_ready_s=300.0,
                                      notes="copies of an inference component")
