"""Kubernetes: scales a Deployment/StatefulSet, a KEDA ScaledObject or a Knative Service.

The warm target is, by `target`,
- deployment / statefulset: `spec.replicas` through the scale subresource (apps/v1);
- keda: a ScaledObject's `spec.minReplicaCount` (keda.sh/v1alpha1), idle timeout = `cooldownPeriod`;
- knative: a Service's `autoscaling.knative.dev/min-scale` revision-template annotation
  (serving.knative.dev/v1), idle timeout = `scale-to-zero-pod-retention-period`.

Official `kubernetes` client (extra `prewarm[kubernetes]`, imported only when used), with
in-cluster, kubeconfig, or explicit server + bearer token auth. Answers are read as raw JSON
(`_preload_content=False`) so custom resources and older client versions parse alike, and
patches are sent as JSON merge patches (RFC 7386), which every API server accepts for both
built-in and custom resources.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Literal, Optional

from pydantic import Field, model_validator

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Provider, ProviderConfig
from .http_common import (HttpProviderError, RETRYABLE_STATUS, call_with_retries, parse_retry_after,
                          provider_limit)

MIN_SCALE = "autoscaling.knative.dev/min-scale"
MIN_SCALE_LEGACY = "autoscaling.knative.dev/minScale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
MERGE_PATCH = "application/merge-patch+json"
RETRYABLE_K8S = RETRYABLE_STATUS | {409}  # a conflicting write: read again and retry


class KubernetesConfig(ProviderConfig):
    kind: Literal["kubernetes"] = "kubernetes"
    target: Literal["deployment", "statefulset", "keda", "knative"] = Field(
        "deployment", description="what to scale: deployment, statefulset, keda (ScaledObject) or knative (Service)")
    namespace: str = Field("default", min_length=1, description="namespace of the object")
    name: str = Field(..., min_length=1, description="name of the Deployment/StatefulSet/ScaledObject/Service")
    kubeconfig: Optional[str] = Field(None, description="kubeconfig path (default: $KUBECONFIG or ~/.kube/config)")
    context: Optional[str] = Field(None, description="kubeconfig context (default: current-context)")
    in_cluster: Optional[bool] = Field(None, description="use the pod's service account; default: when running in a pod")
    server: Optional[str] = Field(None, description="API server URL, overriding kubeconfig (proxies, tests)")
    token_env: Optional[str] = Field(None, description="with server: environment variable holding a bearer token")
    verify_tls: bool = Field(True, description="with server: verify the server's certificate")
    timeout_s: float = Field(15.0, gt=0, description="per-request timeout in seconds")
    retry_deadline_s: float = Field(30.0, ge=0, description="give up retrying after this long")

    @model_validator(mode="after")
    def _auth_source(self) -> "KubernetesConfig":
        if self.server and (self.kubeconfig or self.context or self.in_cluster):
            raise ValueError("server excludes kubeconfig, context and in_cluster: give one way to reach the cluster")
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("in_cluster excludes kubeconfig and context")
        if self.token_env and not self.server:
            raise ValueError("token_env is used only with server")
        return self


def _import_kubernetes():
    try:
        import kubernetes  # noqa: F401
        from kubernetes import client, config
    except ImportError:
        return None
    return client, config


class KubernetesProvider(Provider):
    kind = "kubernetes"
    Config = KubernetesConfig

    def __init__(self, config: KubernetesConfig, endpoint: EndpointRef, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config, endpoint)
        self._clock, self._sleep = clock, sleep
        modules = _import_kubernetes()
        if modules is None:
            raise self.error("the kubernetes provider needs the 'kubernetes' package: "
                             "pip install 'prewarm[kubernetes]'", retryable=False, code="missing-dependency")
        self._k8s, k8s_config = modules
        self._api = self._k8s.ApiClient(self._client_configuration(k8s_config))
        self._apps = self._k8s.AppsV1Api(self._api)
        self._custom = self._k8s.CustomObjectsApi(self._api)

    # -- connection ----------------------------------------------------------------------
    def _client_configuration(self, k8s_config):
        cfg = self._k8s.Configuration()
        c = self.config
        try:
            if c.server:
                cfg.host = c.server.rstrip("/")
                cfg.verify_ssl = c.verify_tls
                if c.token_env:
                    token = os.environ.get(c.token_env, "")
                    if not token:
                        raise self.error(f"environment variable {c.token_env} (named by token_env) is not set",
                                         retryable=False, code="config")
                    cfg.api_key["authorization"] = f"Bearer {token}"
            elif c.in_cluster or (c.in_cluster is None and not c.kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ):
                k8s_config.load_incluster_config(client_configuration=cfg)
            else:
                k8s_config.load_kube_config(config_file=c.kubeconfig, context=c.context,
                                            client_configuration=cfg)
        except k8s_config.ConfigException as exc:
            raise self.error(f"cannot load cluster credentials: {exc}", retryable=False, code="config") from None
        cfg.retries = 0  # one retry policy only: ours (with Retry-After and a deadline)
        return cfg

    def _call(self, fn: Callable[..., Any], *args: Any, body: Any = None) -> dict:
        """One API call with our retry policy; returns the parsed JSON answer."""
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": self.config.timeout_s}
        if body is not None:
            kwargs["_content_type"] = MERGE_PATCH
            args = (*args, body)

        def once() -> dict:
            try:
                response = fn(*args, **kwargs)
            except self._k8s.exceptions.ApiException as exc:
                raise self._api_error(exc) from None
            except Exception as exc:  # urllib3 connection/timeout errors: did not land, or unknown
                if not _is_transport_error(exc):
                    raise
                raise HttpProviderError(f"{fn.__name__}: {type(exc).__name__}: {exc}", provider=self.kind,
                                        endpoint=self.endpoint.name, retryable=True, code="connection") from None
            return json.loads(response.data or b"{}")

        return call_with_retries(once, deadline_s=self.config.retry_deadline_s, clock=self._clock,
                                 sleep=self._sleep)

    def _api_error(self, exc) -> HttpProviderError:
        status = int(exc.status or 0)
        message = exc.reason or ""
        try:
            message = json.loads(exc.body).get("message") or message
        except (TypeError, ValueError, AttributeError):
            pass
        c = self.config
        headers = exc.headers or {}
        return HttpProviderError(
            f"{c.target} {c.namespace}/{c.name}: HTTP {status}: {message}"[:400], provider=self.kind,
            endpoint=self.endpoint.name, retryable=status in RETRYABLE_K8S or status == 0,
            code=f"http-{status}", status=status, retry_after_s=parse_retry_after(headers.get("Retry-After")))

    # -- verbs ---------------------------------------------------------------------------
    def read(self) -> CapacityState:
        return getattr(self, f"_read_{self.config.target}")()

    def apply(self, target: int, idle_timeout_s: float | None = None) -> ApplyResult:
        target = self.endpoint.clamp(target)
        return getattr(self, f"_apply_{self.config.target}")(target, idle_timeout_s)

    def capabilities(self) -> Capabilities:
        t = self.config.target
        return Capabilities(
            scale_to_zero=True, idle_timeout=t in ("keda", "knative"), typical_ready_s=None,
            notes={"deployment": "spec.replicas via the scale subresource; an HPA on the same "
                                 "Deployment would override it (use keda or the HPA's minReplicas)",
                   "statefulset": "spec.replicas via the scale subresource",
                   "keda": "ScaledObject minReplicaCount; cooldownPeriod = idle timeout",
                   "knative": "min-scale annotation (rolls a new revision); retention period = idle timeout"}[t])

    def close(self) -> None:
        self._api.close()

    # deployment / statefulset ------------------------------------------------------------
    def _workload_calls(self, kind: str):
        if kind == "statefulset":
            return (self._apps.read_namespaced_stateful_set_scale, self._apps.patch_namespaced_stateful_set_scale,
                    self._apps.read_namespaced_stateful_set_status)
        return (self._apps.read_namespaced_deployment_scale, self._apps.patch_namespaced_deployment_scale,
                self._apps.read_namespaced_deployment_status)

    def _workload_ready(self, kind: str, name: str) -> int:
        status = self._call(self._workload_calls(kind)[2], name, self.config.namespace).get("status") or {}
        return int(status.get("readyReplicas") or 0)

    def _read_workload(self) -> CapacityState:
        c = self.config
        scale = self._call(self._workload_calls(c.target)[0], c.name, c.namespace)
        desired = int((scale.get("spec") or {}).get("replicas") or 0)
        return CapacityState(desired=desired, ready=self._workload_ready(c.target, c.name),
                             detail={"replicas": (scale.get("status") or {}).get("replicas")})

    def _apply_workload(self, target: int, idle_timeout_s: float | None) -> ApplyResult:
        c = self.config
        read_scale, patch_scale, _ = self._workload_calls(c.target)
        previous = int((self._call(read_scale, c.name, c.namespace).get("spec") or {}).get("replicas") or 0)
        if previous != target:
            self._call(patch_scale, c.name, c.namespace, body={"spec": {"replicas": target}})
        return ApplyResult(previous != target, previous, target, None)

    _read_deployment = _read_statefulset = _read_workload
    _apply_deployment = _apply_statefulset = _apply_workload

    # keda --------------------------------------------------------------------------------
    def _scaled_object(self, body: dict | None = None) -> dict:
        c = self.config
        fn = self._custom.patch_namespaced_custom_object if body else self._custom.get_namespaced_custom_object
        return self._call(fn, "keda.sh", "v1alpha1", c.namespace, "scaledobjects", c.name, body=body)

    def _read_keda(self) -> CapacityState:
        spec = self._scaled_object().get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        kind = (ref.get("kind") or "Deployment").lower()
        if kind not in ("deployment", "statefulset"):
            raise self.error(f"ScaledObject {self.config.name} scales a {ref.get('kind')}: only Deployment and "
                             "StatefulSet targets can report readiness", retryable=False, code="unsupported")
        return CapacityState(
            desired=int(spec.get("minReplicaCount") or 0),  # KEDA's default minimum is 0
            ready=self._workload_ready(kind, ref.get("name") or self.config.name),
            idle_timeout_s=float(spec.get("cooldownPeriod", 300)),  # KEDA's default cooldown
            detail={"maxReplicaCount": spec.get("maxReplicaCount", 100), "scaleTargetRef": ref})

    def _apply_keda(self, target: int, idle_timeout_s: float | None) -> ApplyResult:
        spec = self._scaled_object().get("spec") or {}
        target, detail = provider_limit(target, spec.get("maxReplicaCount", 100))
        previous = int(spec.get("minReplicaCount") or 0)
        idle = float(spec.get("cooldownPeriod", 300))
        patch: dict = {}
        if previous != target:
            patch["minReplicaCount"] = target
        if idle_timeout_s is not None and int(round(idle_timeout_s)) != idle:
            patch["cooldownPeriod"] = int(round(idle_timeout_s))
            idle = float(patch["cooldownPeriod"])
        if patch:
            self._scaled_object({"spec": patch})
        return ApplyResult(bool(patch), previous, target, idle, detail)

    # knative -----------------------------------------------------------------------------
    def _service(self, body: dict | None = None) -> dict:
        c = self.config
        fn = self._custom.patch_namespaced_custom_object if body else self._custom.get_namespaced_custom_object
        return self._call(fn, "serving.knative.dev", "v1", c.namespace, "services", c.name, body=body)

    @staticmethod
    def _annotations(service: dict) -> dict:
        return ((((service.get("spec") or {}).get("template") or {}).get("metadata") or {})
                .get("annotations") or {})

    def _read_knative(self) -> CapacityState:
        service = self._service()
        notes = self._annotations(service)
        status = service.get("status") or {}
        serving = status.get("latestReadyRevisionName")
        ready = 0
        if serving:  # the revision that takes traffic; a newer one serves only once ready
            revision = self._call(self._custom.get_namespaced_custom_object, "serving.knative.dev", "v1",
                                  self.config.namespace, "revisions", serving)
            ready = int((revision.get("status") or {}).get("actualReplicas") or 0)
        return CapacityState(
            desired=int(notes.get(MIN_SCALE, notes.get(MIN_SCALE_LEGACY, 0))), ready=ready,
            idle_timeout_s=_duration_s(notes.get(RETENTION)),
            detail={"latestReadyRevisionName": serving,
                    "latestCreatedRevisionName": status.get("latestCreatedRevisionName"),
                    "max_scale": notes.get(MAX_SCALE)})

    def _apply_knative(self, target: int, idle_timeout_s: float | None) -> ApplyResult:
        notes = self._annotations(self._service())
        max_scale = notes.get(MAX_SCALE)
        target, detail = provider_limit(target, int(max_scale) if max_scale and int(max_scale) > 0 else None)
        previous = int(notes.get(MIN_SCALE, notes.get(MIN_SCALE_LEGACY, 0)))
        idle = _duration_s(notes.get(RETENTION))
        patch: dict = {}
        if previous != target:
            patch[MIN_SCALE] = str(target)
            if MIN_SCALE_LEGACY in notes:  # two spellings of one setting: keep only the current one
                patch[MIN_SCALE_LEGACY] = None
        if idle_timeout_s is not None and idle != float(int(round(idle_timeout_s))):
            patch[RETENTION] = f"{int(round(idle_timeout_s))}s"
            idle = float(int(round(idle_timeout_s)))
        if patch:
            self._service({"spec": {"template": {"metadata": {"annotations": patch}}}})
        return ApplyResult(bool(patch), previous, target, idle, detail)


def _duration_s(text: str | None) -> float | None:
    """Go duration strings as Knative writes them ('90s', '5m', '1h30m'); None if absent or unreadable."""
    if not text:
        return None
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    for ch in text.strip():
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        else:
            return None
    return None if number else total


def _is_transport_error(exc: Exception) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))
