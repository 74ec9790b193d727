"""Baseten deployment: warm target = autoscaling `min_replica`, idle timeout = `scale_down_delay`.

The idle timeout maps to `scale_down_delay` (seconds an idle replica waits before removal).

Calls (Baseten management API, https://docs.baseten.co/reference/management-api):
GET /models/{model_id}/deployments/{deployment} (status, active_replica_count,
autoscaling_settings); PATCH /models/{model_id}/deployments/{deployment}/autoscaling_settings
(only the fields sent change). `deployment` is a deployment id, `production` or `development`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, JsonApi, dig, provider_limit


class BasetenConfig(HttpProviderConfig):
    kind: Literal["baseten"] = "baseten"
    model_id: str = Field(..., min_length=1, description="model id")
    deployment: str = Field("production", min_length=1,
                            description="deployment id, or 'production' / 'development'")
    api_token_env: str = Field("BASETEN_API_KEY", description="environment variable holding the API key")
    api_url: str = Field("https://api.baseten.co/v1", description="management API base URL")


class BasetenProvider(Provider):
    kind = "baseten"
    Config = BasetenConfig

    def __init__(self, config: BasetenConfig, endpoint: EndpointRef, **http_options) -> None:
        super().__init__(config, endpoint)
        self._api = JsonApi(self, config, base_url=config.api_url,
                            auth_header=lambda t: {"Authorization": f"Api-Key {t}"}, **http_options)
        self._path = f"models/{config.model_id}/deployments/{config.deployment}"

    def read(self) -> CapacityState:
        info = self._api.get(self._path)
        settings = dig(info, "autoscaling_settings", provider=self)
        status = info.get("status")
        delay = settings.get("scale_down_delay")
        return CapacityState(
            desired=int(dig(settings, "min_replica", provider=self)),
            ready=int(info.get("active_replica_count") or 0) if status == "ACTIVE" else 0,
            idle_timeout_s=float(delay) if delay is not None else None,
            detail={"status": status, "max_replica": settings.get("max_replica")})

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        now = self.read()
        target, detail = provider_limit(target, now.detail["max_replica"])
        body: dict = {}
        if now.desired != target:
            body["min_replica"] = target
        if idle_timeout_s is not None and now.idle_timeout_s != float(int(round(idle_timeout_s))):
            body["scale_down_delay"] = int(round(idle_timeout_s))
        idle = now.idle_timeout_s
        if body:
            answer = self._api.call("PATCH", f"{self._path}/autoscaling_settings", body)
            detail = {**detail, "update_status": (answer or {}).get("status")}
            if "scale_down_delay" in body:
                idle = float(body["scale_down_delay"])
        return ApplyResult(bool(body), now.desired, target, idle, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=None,
                            notes="min_replica = warm replicas; scale_down_delay = idle timeout (s)")

    def close(self) -> None:
        self._api.close()
