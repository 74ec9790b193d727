"""RunPod serverless endpoint: warm target = `workersMin` (active workers), idle timeout = `idleTimeout`.

Both are set with the REST API's endpoint PATCH.

Calls (https://docs.runpod.io/api-reference): GET/PATCH {rest_url}/endpoints/{id} for the
configuration; GET {serverless_url}/{id}/health for worker counts (ready = idle + running).
httpx, not the `runpod` SDK: the SDK manages endpoints through GraphQL only and has no call
that updates workersMin/idleTimeout of an existing endpoint (docs/providers/runpod.md).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider
from .http_common import HttpProviderConfig, JsonApi, dig, provider_limit


class RunPodConfig(HttpProviderConfig):
    kind: Literal["runpod"] = "runpod"
    endpoint_id: str = Field(..., min_length=1, description="serverless endpoint id")
    api_token_env: str = Field("RUNPOD_API_KEY", description="environment variable holding the API key")
    rest_url: str = Field("https://rest.runpod.io/v1", description="management API base URL")
    serverless_url: str = Field("https://api.runpod.ai/v2", description="endpoint health API base URL")


class RunPodProvider(Provider):
    kind = "runpod"
    Config = RunPodConfig

    def __init__(self, config: RunPodConfig, endpoint: EndpointRef, **http_options) -> None:
        super().__init__(config, endpoint)
        bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
        self._rest = JsonApi(self, config, base_url=config.rest_url, auth_header=bearer, **http_options)
        self._serverless = JsonApi(self, config, base_url=config.serverless_url, auth_header=bearer,
                                   **http_options)
        self._path = f"endpoints/{config.endpoint_id}"

    def _settings(self) -> dict:
        return self._rest.get(self._path)

    def read(self) -> CapacityState:
        settings = self._settings()
        health = self._serverless.get(f"{self.config.endpoint_id}/health")
        workers = dig(health, "workers", provider=self, default={})
        ready = int(workers.get("idle", 0) or 0) + int(workers.get("running", 0) or 0)
        return CapacityState(
            desired=int(dig(settings, "workersMin", provider=self)),
            ready=ready,
            idle_timeout_s=float(dig(settings, "idleTimeout", provider=self, default=0)) or None,
            detail={"workers": workers, "workersMax": settings.get("workersMax")})

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        settings = self._settings()
        target, detail = provider_limit(target, settings.get("workersMax"))
        previous = int(dig(settings, "workersMin", provider=self))
        current_idle = settings.get("idleTimeout")
        body: dict = {}
        if previous != target:
            body["workersMin"] = target
        if idle_timeout_s is not None and current_idle != int(round(idle_timeout_s)):
            body["idleTimeout"] = int(round(idle_timeout_s))
        if body:
            # PATCH changes only the fields sent, so nothing else of the endpoint is touched.
            self._rest.call("PATCH", self._path, body)
            current_idle = body.get("idleTimeout", current_idle)
        return ApplyResult(bool(body), previous, target,
                           float(current_idle) if current_idle is not None else None, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=None,
                            notes="workersMin = always-on workers; idleTimeout in seconds")

    def close(self) -> None:
        self._rest.close()
        self._serverless.close()
