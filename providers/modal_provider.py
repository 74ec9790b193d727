"""Modal Function: warm target = autoscaler `min_containers`, idle timeout = `scaledown_window`.

The scaledown window is in seconds, 2..3600.

Modal's control plane is gRPC, with no REST API for the autoscaler, so this provider uses the
official `modal` client (extra `prewarm[modal]`, imported only when used):
`Function.from_name(app, name)`, `fn.autoscaler.settings()` (RPC FunctionGetSchedulingParams),
`fn.autoscaler.update(min_containers=, scaledown_window=)` (FunctionUpdateSchedulingParams;
`update_autoscaler` on clients without `.autoscaler`) and `fn.get_current_stats()`
(FunctionGetCurrentStats: running containers). Credentials: MODAL_TOKEN_ID/MODAL_TOKEN_SECRET
(names configurable), else the client's own chain (.modal.toml profile). The API address is
the client's `server_url` setting (MODAL_SERVER_URL), which the tests point at a local fake.

Limits: an override set here is wiped by the next `modal deploy` of the App (Modal's rule), so
the daemon re-applies it on its next reconcile; `ready` counts the Function's running
containers, which includes containers still starting.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Literal, Optional

from pydantic import Field

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider, ProviderConfig
from .http_common import HttpProviderError, call_with_retries, provider_limit

SCALEDOWN_RANGE = (2, 3600)  # seconds, as the modal client validates it


class ModalConfig(ProviderConfig):
    kind: Literal["modal"] = "modal"
    app_name: str = Field(..., min_length=1, description="deployed App name")
    function_name: str = Field(..., min_length=1, description="Function name within the App")
    environment_name: Optional[str] = Field(None, description="Modal environment (default: the profile's)")
    token_id_env: str = Field("MODAL_TOKEN_ID", description="environment variable holding the token id")
    token_secret_env: str = Field("MODAL_TOKEN_SECRET", description="environment variable holding the token secret")
    retry_deadline_s: float = Field(30.0, ge=0, description="give up retrying after this long")


class ModalProvider(Provider):
    kind = "modal"
    Config = ModalConfig

    def __init__(self, config: ModalConfig, endpoint: EndpointRef, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, endpoint)
        self._clock, self._sleep = clock, sleep
        try:
            import modal
        except ImportError:
            raise self.error("the modal provider needs the 'modal' package: pip install 'prewarm[modal]'",
                             retryable=False, code="missing-dependency") from None
        self._modal = modal
        token_id = os.environ.get(config.token_id_env)
        token_secret = os.environ.get(config.token_secret_env)
        if bool(token_id) != bool(token_secret):
            raise self.error(f"set both {config.token_id_env} and {config.token_secret_env}, or neither",
                             retryable=False, code="config")
        self._client = self._call(lambda: modal.Client.from_credentials(token_id, token_secret)
                                  if token_id else modal.Client.from_env())
        self._fn = modal.Function.from_name(config.app_name, config.function_name,
                                            environment_name=config.environment_name, client=self._client)

    def _call(self, fn: Callable[[], Any]) -> Any:
        def once() -> Any:
            try:
                return fn()
            except Exception as exc:
                raise self._error(exc) from None
        return call_with_retries(once, deadline_s=self.config.retry_deadline_s, clock=self._clock,
                                 sleep=self._sleep)

    def _error(self, exc: Exception) -> Exception:
        errors = self._modal.exception
        retryable_types = (OSError, errors.ConnectionError, errors.TimeoutError, errors.ResourceExhaustedError,
                           errors.InternalError, errors.ServiceError, errors.ConflictError)
        if not isinstance(exc, (errors.Error, OSError)):
            return exc  # a bug of ours or the client's: let it surface as it is
        # Auth, not-found, invalid-argument, permission and version errors cannot be helped by retrying.
        return HttpProviderError(f"{self.config.app_name}.{self.config.function_name}: {type(exc).__name__}: "
                                 f"{exc}"[:400], provider=self.kind, endpoint=self.endpoint.name,
                                 retryable=isinstance(exc, retryable_types), code=f"modal-{type(exc).__name__}")

    def _settings(self):
        autoscaler = getattr(self._fn, "autoscaler", None)
        if autoscaler is None:
            raise self.error("this modal client cannot read autoscaler settings; upgrade to modal>=1.6",
                             retryable=False, code="missing-dependency")
        return self._call(autoscaler.settings)

    def read(self) -> CapacityState:
        settings = self._settings()
        stats = self._call(self._fn.get_current_stats)
        return CapacityState(
            desired=int(settings.min_containers or 0), ready=int(stats.num_total_runners),
            idle_timeout_s=float(settings.scaledown_window) if settings.scaledown_window else None,
            detail={"max_containers": settings.max_containers, "backlog": stats.backlog})

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        settings = self._settings()
        target, detail = provider_limit(target, settings.max_containers)
        previous = int(settings.min_containers or 0)
        update: dict[str, int] = {}
        if previous != target:
            update["min_containers"] = target
        idle = float(settings.scaledown_window) if settings.scaledown_window else None
        if idle_timeout_s is not None:
            window = min(SCALEDOWN_RANGE[1], max(SCALEDOWN_RANGE[0], int(round(idle_timeout_s))))
            if window != idle:
                update["scaledown_window"] = window
                idle = float(window)
        if update:
            autoscaler = self._fn.autoscaler
            after = self._call(lambda: autoscaler.update(**update))
            detail = {**detail, "min_containers": after.min_containers}
        return ApplyResult(bool(update), previous, target, idle, detail)

    def capabilities(self) -> Capabilities:
        return Capabilities(scale_to_zero=True, idle_timeout=True, typical_ready_s=None,
                            idle_timeout_min_s=SCALEDOWN_RANGE[0], idle_timeout_max_s=SCALEDOWN_RANGE[1],
                            notes="min_containers = warm containers; scaledown_window (2-3600 s) = idle "
                                  "timeout; `modal deploy` resets overrides")

    def close(self) -> None:
        closer = getattr(self._client, "close", None)
        if closer:
            try:
                closer()
            except Exception:  # closing is best effort; the client may already be gone
                pass
