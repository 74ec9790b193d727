"""Replicate deployments: the warm target is the deployment's `min_instances`.

Calls (https://replicate.com/docs/reference/http): GET /deployments/{owner}/{name};
PATCH /deployments/{owner}/{name} with {"min_instances": N} (a PATCH creates a new release
of the deployment with the merged configuration).

Replicate's API reports the configuration but not how many instances are up. So `ready` is
the configured minimum once the release carrying it is current, marked
`ready_observable: False` in the state's detail: a wait_ready duration from this provider
measures the configuration change, not a cold start, and must not be learnt as one.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, JsonApi, dig, provider_limit


class ReplicateConfig(HttpProviderConfig):
    kind: Literal["replicate"] = "replicate"
    owner: str = Field(..., min_length=1, description="account owning the deployment")
    deployment: str = Field(..., min_length=1, description="deployment name")
    api_token_env: str = Field("REPLICATE_API_TOKEN", description="environment variable holding the API token")
    api_url: str = Field("https://api.replicate.com/v1", description="API base URL")


class ReplicateProvider(Provider):
    kind = "replicate"
    Config = ReplicateConfig

    def __init__(self, config: ReplicateConfig, endpoint: EndpointRef, **http_options) -> None:
        super().__init__(config, endpoint)
        self._api = JsonApi(self, config, base_url=config.api_url,
                            auth_header=lambda t: {"Authorization": f"Bearer {t}"}, **http_options)
        self._path = f"deployments/{config.owner}/{config.deployment}"

    def _state(self, info: dict) -> CapacityState:
        conf = dig(info, "current_release", "configuration", provider=self)
        desired = int(dig(conf, "min_instances", provider=self))
        return CapacityState(desired=desired, ready=desired, idle_timeout_s=None,
                             detail={"ready_observable": False,
                                     "max_instances": conf.get("max_instances"),
                                     "release": info["current_release"].get("number")})

    def read(self) -> CapacityState:
        return self._state(self._api.get(self._path))

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        now = self.read()
        target, detail = provider_limit(target, now.detail["max_instances"])
        changed = now.desired != target
        if changed:
            after = self._state(self._api.call("PATCH", self._path, {"min_instances": target}))
            detail = {**detail, "release": after.detail["release"]}
        return ApplyResult(changed, now.desired, target, None, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=False, typical_ready_s=None,
                            notes="min_instances = warm instances; readiness is not observable "
                                  "through the API (ready reports the configured minimum)")

    def close(self) -> None:
        self._api.close()
