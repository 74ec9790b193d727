"""Hugging Face Inference Endpoint: warm target = `minReplica`; paused endpoints are resumed.

The warm target is `compute.scaling.minReplica`; at zero the endpoint scales to zero after `scaleToZeroTimeout` minutes idle. A paused endpoint is
resumed when a target above zero is set (a paused endpoint ignores its minimum).

Calls (Inference Endpoints API v2, https://api.endpoints.huggingface.cloud):
GET /endpoint/{namespace}/{name}; PUT /endpoint/{namespace}/{name} with
{"compute": {"scaling": {...}}}; POST /endpoint/{namespace}/{name}/resume.
httpx rather than huggingface_hub (which sends these same requests): its Inference Endpoints
base URL is the module constant `constants.INFERENCE_ENDPOINTS_ENDPOINT`, with no environment
variable or parameter, and its HTTP session is process-wide; redirecting it (for `api_url` or
the tests' local server) would mean monkeypatching a global. See docs/providers/hf-endpoints.md.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, JsonApi, dig, provider_limit, seconds_to_minutes


class HfEndpointsConfig(HttpProviderConfig):
    kind: Literal["hf-endpoints"] = "hf-endpoints"
    namespace: str = Field(..., min_length=1, description="user or organisation owning the endpoint")
    endpoint_name: str = Field(..., min_length=1, description="Inference Endpoint name")
    api_token_env: str = Field("HF_TOKEN", description="environment variable holding the access token")
    api_url: str = Field("https://api.endpoints.huggingface.cloud/v2", description="API base URL")
    resume_paused: bool = Field(True, description="resume a paused endpoint when the target is above zero")


class HfEndpointsProvider(Provider):
    kind = "hf-endpoints"
    Config = HfEndpointsConfig

    def __init__(self, config: HfEndpointsConfig, endpoint: EndpointRef, **http_options) -> None:
        super().__init__(config, endpoint)
        self._api = JsonApi(self, config, base_url=config.api_url,
                            auth_header=lambda t: {"Authorization": f"Bearer {t}"}, **http_options)
        self._path = f"endpoint/{config.namespace}/{config.endpoint_name}"

    def _state(self, info: dict) -> CapacityState:
        scaling = dig(info, "compute", "scaling", provider=self)
        state = dig(info, "status", "state", provider=self, default="unknown")
        ready = int(dig(info, "status", "readyReplica", provider=self, default=0))
        minutes = scaling.get("scaleToZeroTimeout")
        return CapacityState(
            desired=int(dig(scaling, "minReplica", provider=self)),
            # Replicas of an endpoint that is not `running` do not serve requests.
            ready=ready if state == "running" else 0,
            idle_timeout_s=float(minutes) * 60 if minutes else None,
            detail={"state": state, "maxReplica": scaling.get("maxReplica"),
                    "targetReplica": dig(info, "status", "targetReplica", provider=self, default=None)})

    def read(self) -> CapacityState:
        return self._state(self._api.get(self._path))

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        info = self._api.get(self._path)
        now = self._state(info)
        max_replica = now.detail["maxReplica"]
        target, detail = provider_limit(target, max_replica)
        scaling: dict = {}
        if now.desired != target:
            scaling["minReplica"] = target
        # The API takes the timeout only with minReplica = 0 (it is the scale-to-zero delay).
        if idle_timeout_s is not None and target == 0:
            minutes = seconds_to_minutes(idle_timeout_s)
            if now.idle_timeout_s != minutes * 60:
                scaling["scaleToZeroTimeout"] = minutes
        if scaling:
            scaling.setdefault("minReplica", target)
            scaling["maxReplica"] = max_replica
            self._api.call("PUT", self._path, {"compute": {"scaling": scaling}})
        resumed = False
        if target > 0 and now.detail["state"] == "paused" and self.config.resume_paused:
            self._api.call("POST", f"{self._path}/resume")
            resumed = True
        idle = scaling["scaleToZeroTimeout"] * 60.0 if "scaleToZeroTimeout" in scaling else now.idle_timeout_s
        return ApplyResult(bool(scaling) or resumed, now.desired, target, idle,
                           {**detail, "resumed": resumed} if resumed else detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=None,
                            idle_timeout_min_s=60.0, idle_timeout_step_s=60.0, idle_timeout_at_zero_only=True,
                            notes="minReplica = warm replicas; idle timeout in whole minutes, only at zero")

    def close(self) -> None:
        self._api.close()
