"""Replicate deployments: the warm target is the deployment's `min_instances`.

Through Replicate's official Python client (`replicate`, extra `prewarm[replicate]`):
`client.deployments.get("owner/name")` = GET /v1/deployments/{owner}/{name};
`client.deployments.update(owner, name, min_instances=N)` = PATCH of the same path with
{"min_instances": N} (Replicate creates a new release carrying the merged configuration).

The client's own retry transport is bypassed (an httpx mount for every URL, given through the
client's documented httpx keyword arguments): it retries GETs on 429/503/504 up to 10 times
with no deadline, sleeping as long as any Retry-After asks. Our policy (`SdkCalls`) retries
instead, within `retry_deadline_s`.

Replicate's API reports the configuration but not how many instances are up. So `ready` is
the configured minimum once the release carrying it is current, marked
`ready_observable: False` in the state's detail: a wait_ready duration from this provider
measures the configuration change, not a cold start, and must not be learnt as one.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Literal, Optional

import httpx
from pydantic import Field, field_validator

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, SdkCalls, host_root, import_sdk, provider_limit, read_token


class ReplicateConfig(HttpProviderConfig):
    kind: Literal["replicate"] = "replicate"
    owner: str = Field(..., min_length=1, description="account owning the deployment")
    deployment: str = Field(..., min_length=1, description="deployment name")
    api_token_env: str = Field("REPLICATE_API_TOKEN", description="environment variable holding the API token")
    api_url: str = Field("https://api.replicate.com",
                         description="API root URL, without /v1 (the client's base_url)")

    @field_validator("api_url")
    @classmethod
    def _root(cls, value: str) -> str:
        return host_root(value, "api_url")


def _status_of(exc: Exception) -> Optional[tuple[int, str]]:
    from replicate.exceptions import ReplicateError  # the SDK is imported by then
    if isinstance(exc, ReplicateError) and exc.status:
        return exc.status, exc.detail or exc.title or ""
    return None


class ReplicateProvider(Provider):
    kind = "replicate"
    Config = ReplicateConfig

    def __init__(self, config: ReplicateConfig, endpoint: EndpointRef, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, endpoint)
        replicate = import_sdk(self, "replicate", "replicate")
        self._call = SdkCalls(self, config, _status_of, clock=clock, sleep=sleep)
        self._transport = httpx.HTTPTransport()  # ours, so close() can release its connections
        self._client = replicate.Client(
            api_token=read_token(self, config.api_token_env), base_url=config.api_url,
            timeout=httpx.Timeout(config.timeout_s),
            # Passed through to httpx.Client: mounts take precedence over the client's
            # RetryTransport, so its unbounded retries never run; the hook keeps Retry-After.
            mounts={"all://": self._transport}, event_hooks=self._call.event_hooks)
        self._name = f"{config.owner}/{config.deployment}"

    def __repr__(self) -> str:
        return f"ReplicateProvider(deployment={self._name!r}, token=<hidden>)"

    def _state(self, deployment: Any) -> CapacityState:
        release = deployment.current_release
        if release is None:
            raise self.error(f"deployment {self._name} has no current release", retryable=False,
                             code="bad-response")
        conf = release.configuration
        return CapacityState(desired=conf.min_instances, ready=conf.min_instances, idle_timeout_s=None,
                             detail={"ready_observable": False, "max_instances": conf.max_instances,
                                     "release": release.number})

    def read(self) -> CapacityState:
        return self._state(self._call(f"get deployment {self._name}",
                                      lambda: self._client.deployments.get(self._name)))

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        now = self.read()
        target, detail = provider_limit(target, now.detail["max_instances"])
        changed = now.desired != target
        if changed:
            config = self.config
            after = self._state(self._call(
                f"update deployment {self._name}",
                lambda: self._client.deployments.update(config.owner, config.deployment, min_instances=target)))
            detail = {**detail, "release": after.detail["release"]}
        return ApplyResult(changed, now.desired, target, None, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=False, typical_ready_s=None,
                            notes="min_instances = warm instances; readiness is not observable "
                                  "through the API (ready reports the configured minimum)")

    def close(self) -> None:
        self._transport.close()  # replicate.Client has no close(); every request went through this
