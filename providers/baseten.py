"""Baseten deployment: warm target = autoscaling `min_replica`, idle timeout = `scale_down_delay`.

Through Baseten's official Python SDK (`baseten`, extra `prewarm[baseten]`), its management
client `baseten.client.ManagementClient`, whose generated calls are:
GET /v1/models/{model_id}/deployments/{deployment} (status, active_replica_count,
autoscaling_settings); PATCH /v1/models/{model_id}/deployments/{deployment}/autoscaling_settings
(only the fields set are sent, and only those change). `deployment` is a deployment id, or
`production` / `development` (the SDK has a dedicated call for each alias).

We hand the SDK our own httpx client (its documented `http_client_override`): it carries the
`Api-Key` auth scheme of Baseten's API reference, our timeout, and the response hook that
keeps `Retry-After`. The SDK does not retry; `SdkCalls` applies our policy.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Literal, Optional

import httpx
from pydantic import Field, field_validator

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, SdkCalls, host_root, import_sdk, provider_limit, read_token

ALIASES = ("production", "development")


class BasetenConfig(HttpProviderConfig):
    kind: Literal["baseten"] = "baseten"
    model_id: str = Field(..., min_length=1, description="model id")
    deployment: str = Field("production", min_length=1,
                            description="deployment id, or 'production' / 'development'")
    api_token_env: str = Field("BASETEN_API_KEY", description="environment variable holding the API key")
    api_url: str = Field("https://api.baseten.co", description="management API root URL, without /v1")

    @field_validator("api_url")
    @classmethod
    def _root(cls, value: str) -> str:
        return host_root(value, "api_url")


def _status_of(exc: Exception) -> Optional[tuple[int, str]]:
    from baseten.client.managementapi import ResponseError  # the SDK is imported by then
    if isinstance(exc, ResponseError):
        return exc.status_code, exc.body
    return None


class BasetenProvider(Provider):
    kind = "baseten"
    Config = BasetenConfig

    def __init__(self, config: BasetenConfig, endpoint: EndpointRef, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, endpoint)
        sdk = import_sdk(self, "baseten.client", "baseten")
        self._models = import_sdk(self, "baseten.client.managementapi", "baseten")
        self._call = SdkCalls(self, config, _status_of, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=config.api_url, timeout=config.timeout_s, event_hooks=self._call.event_hooks,
            headers={"Authorization": f"Api-Key {read_token(self, config.api_token_env)}"})
        # api_key="" : the key travels in our client's headers only, not in the SDK's options.
        self._api = sdk.ManagementClient(api_key="", http_client_override=self._http).api
        self._where = f"model {config.model_id} deployment {config.deployment}"

    def __repr__(self) -> str:
        return f"BasetenProvider({self._where!r}, key=<hidden>)"

    def _deployment(self) -> Any:
        model_id, deployment = self.config.model_id, self.config.deployment
        if deployment in ALIASES:
            get = getattr(self._api, f"get_models_deployments_{deployment}")
            return self._call(f"get {self._where}", lambda: get(model_id=model_id))
        return self._call(f"get {self._where}", lambda: self._api.get_models_deployments_deployment_id(
            model_id=model_id, deployment_id=deployment))

    def _update(self, changes: dict[str, int]) -> Any:
        model_id, deployment = self.config.model_id, self.config.deployment
        request = self._models.UpdateAutoscalingSettings(**changes)  # only these fields are sent
        if deployment in ALIASES:
            patch = getattr(self._api, f"patch_models_deployments_{deployment}_autoscaling_settings")
            return self._call(f"update {self._where}", lambda: patch(model_id=model_id, request=request))
        return self._call(f"update {self._where}", lambda: self._api.patch_models_deployments_autoscaling_settings(
            model_id=model_id, deployment_id=deployment, request=request))

    def read(self) -> CapacityState:
        info = self._deployment()
        settings = info.autoscaling_settings
        if settings is None:
            raise self.error(f"{self._where} reports no autoscaling_settings", retryable=False,
                             code="bad-response")
        delay = settings.scale_down_delay
        return CapacityState(
            desired=settings.min_replica,
            ready=info.active_replica_count if info.status == "ACTIVE" else 0,
            idle_timeout_s=float(delay) if delay is not None else None,
            detail={"status": info.status, "max_replica": settings.max_replica})

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        now = self.read()
        target, detail = provider_limit(target, now.detail["max_replica"])
        changes: dict[str, int] = {}
        if now.desired != target:
            changes["min_replica"] = target
        if idle_timeout_s is not None and now.idle_timeout_s != float(int(round(idle_timeout_s))):
            changes["scale_down_delay"] = int(round(idle_timeout_s))
        idle = now.idle_timeout_s
        if changes:
            answer = self._update(changes)
            detail = {**detail, "update_status": answer.status}
            if "scale_down_delay" in changes:
                idle = float(changes["scale_down_delay"])
        return ApplyResult(bool(changes), now.desired, target, idle, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=None,
                            notes="min_replica = warm replicas; scale_down_delay = idle timeout (s)")

    def close(self) -> None:
        self._http.close()  # ours: the SDK leaves an overridden client open
