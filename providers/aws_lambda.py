"""aws-lambda: provisioned concurrency of one function version or alias.

Warm workers = provisioned concurrent executions. Zero deletes the provisioned concurrency
config (the API refuses 0). Ready = AllocatedProvisionedConcurrentExecutions once the config
reports READY; FAILED stops the wait with AWS's StatusReason.
"""
from __future__ import annotations

from pydantic import Field, field_validator

from .aws_common import AwsConfig, AwsProvider
from .base import Capabilities, CapacityState, ProviderError

_NO_CONFIG = {"ProvisionedConcurrencyConfigNotFoundException"}


class AwsLambdaConfig(AwsConfig):
    kind: str = "aws-lambda"
    function_name: str = Field(min_length=1, description="function name or ARN")
    qualifier: str = Field(min_length=1, description="alias or version number (not $LATEST)")

    @field_validator("qualifier")
    @classmethod
    def _published(cls, v: str) -> str:
        # Provisioned concurrency is set on an alias or a published version; Lambda refuses it on
        # the unpublished $LATEST (PutProvisionedConcurrencyConfig), so refuse it at config load.
        if v.upper() == "$LATEST":
            raise ValueError("provisioned concurrency cannot be set on $LATEST (the unpublished version): "
                             "publish a version and give its number, or an alias that points to it")
        return v


class AwsLambdaProvider(AwsProvider):
    kind = "aws-lambda"
    Config = AwsLambdaConfig
    config: AwsLambdaConfig

    def _ids(self) -> dict[str, str]:
        return {"FunctionName": self.config.function_name, "Qualifier": self.config.qualifier}

    def read(self) -> CapacityState:
        try:
            got = self.call("lambda", "GetProvisionedConcurrencyConfig", **self._ids())
        except ProviderError as exc:
            if exc.code in _NO_CONFIG:
                return CapacityState(0, 0, detail={"status": "NONE"})
            raise
        status = got.get("Status", "")
        detail = {"status": status, "settled": status == "READY",
                  "available": got.get("AvailableProvisionedConcurrentExecutions", 0)}
        if status == "FAILED":
            detail["failed"] = got.get("StatusReason") or "FAILED"
        return CapacityState(int(got.get("RequestedProvisionedConcurrentExecutions", 0)),
                             int(got.get("AllocatedProvisionedConcurrentExecutions", 0)),
                             detail=detail)

    def _write(self, target: int, state: CapacityState) -> bool:
        # A FAILED config is rewritten even at the same number: that is the retry AWS expects.
        if target == state.desired and not state.detail.get("failed"):
            return False
        if target == 0:
            self.call("lambda", "DeleteProvisionedConcurrencyConfig", **self._ids())
        else:
            self.call("lambda", "PutProvisionedConcurrencyConfig", **self._ids(),
                      ProvisionedConcurrentExecutions=target)
        return True

    def scalable_target(self) -> tuple[str, str, str]:
        name = self.config.function_name
        if name.startswith("arn:"):  # arn:aws:lambda:REGION:ACCOUNT:function:NAME
            name = name.split(":")[6]
        return ("lambda", f"function:{name}:{self.config.qualifier}",
                "lambda:function:ProvisionedConcurrency")

    def capabilities(self) -> Capabilities:
        return self.base_capabilities(
            scale_to_zero=True, typical_ready_s=120.0,
            notes="provisioned concurrency; limited by the account's unreserved concurrency")
