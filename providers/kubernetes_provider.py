"""Kubernetes: scales a Deployment/StatefulSet, a KEDA ScaledObject or a Knative Service.

The warm target is, by `target`,
- deployment / statefulset: `spec.replicas` through the scale subresource (apps/v1); when a
  HorizontalPodAutoscaler (autoscaling/v2) targets the workload, the HPA owns `replicas` ("will
  set the desired number of pods by using its Scale subresource") and would overwrite them:
  refused by default, or, with `hpa = "min-replicas"`, the HPA's `spec.minReplicas` ("the lower
  limit for the number of replicas to which the autoscaler can scale down", at least 1 without
  the alpha HPAScaleToZero gate) is the warm target;
- keda: a ScaledObject's `spec.minReplicaCount` (keda.sh/v1alpha1), idle timeout = `cooldownPeriod`;
- knative: a Service's `autoscaling.knative.dev/min-scale` revision-template annotation
  (serving.knative.dev/v1), idle timeout = `scale-to-zero-pod-retention-period`. The template
  reaches only revisions created from it, which receive traffic only through `latestRevision:
  true` targets; readiness counts the revisions the route sends traffic to (`status.traffic`,
  percent > 0), and an apply is refused while all traffic is pinned to named revisions.

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

from .base import ApplyResult, Capabilities, CapacityState, EndpointRef, Finding, Provider, ProviderConfig
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
    hpa: Literal["refuse", "min-replicas"] = Field(
        "refuse", description="deployment/statefulset with an HPA: refuse, or warm through its minReplicas")

    @model_validator(mode="after")
    def _auth_source(self) -> "KubernetesConfig":
        if self.hpa != "refuse" and self.target not in ("deployment", "statefulset"):
            raise ValueError("hpa applies to target = \"deployment\" or \"statefulset\" only")
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
        self._autoscaling = self._k8s.AutoscalingV2Api(self._api)
        self._hpa_unknown: str | None = None  # why HPAs could not be listed, if they could not

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
            notes={"deployment": "spec.replicas via the scale subresource; with an HPA on it: refused, "
                                 "or its minReplicas with hpa = \"min-replicas\"",
                   "statefulset": "spec.replicas via the scale subresource (HPA: as deployment)",
                   "keda": "ScaledObject minReplicaCount; cooldownPeriod = idle timeout",
                   "knative": "min-scale annotation (rolls a new revision); retention period = idle timeout; "
                              "ready = revisions in status.traffic"}[t])

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
        detail: dict[str, Any] = {"replicas": (scale.get("status") or {}).get("replicas")}
        hpa = self._hpa()
        if hpa is not None:
            spec = hpa.get("spec") or {}
            detail.update(hpa=hpa["metadata"]["name"], hpa_max_replicas=spec.get("maxReplicas"))
            if c.hpa == "min-replicas":
                desired = int(spec.get("minReplicas", 1))  # the HPA's default minimum is 1
        return CapacityState(desired=desired, ready=self._workload_ready(c.target, c.name), detail=detail)

    def _apply_workload(self, target: int, idle_timeout_s: float | None) -> ApplyResult:
        c = self.config
        read_scale, patch_scale, _ = self._workload_calls(c.target)
        previous = int((self._call(read_scale, c.name, c.namespace).get("spec") or {}).get("replicas") or 0)
        hpa = self._hpa()
        if hpa is not None:
            if c.hpa == "refuse":
                raise self.error(self._hpa_refusal(hpa), retryable=False, code="hpa")
            return self._apply_hpa(hpa, target)
        if previous != target:
            self._call(patch_scale, c.name, c.namespace, body={"spec": {"replicas": target}})
        return ApplyResult(previous != target, previous, target, None)

    # the workload's HorizontalPodAutoscaler -------------------------------------------------
    def _hpa(self) -> dict | None:
        """The HPA whose scaleTargetRef is this workload, if any. Without the RBAC to list HPAs
        the workload is driven as if it had none, and `check` says so."""
        c = self.config
        kind = {"deployment": "Deployment", "statefulset": "StatefulSet"}[c.target]
        try:
            found = self._call(self._autoscaling.list_namespaced_horizontal_pod_autoscaler, c.namespace)
        except HttpProviderError as exc:
            if exc.status == 404:  # no autoscaling/v2 on this server (before Kubernetes 1.23): no HPA
                return None
            if exc.status != 403:
                raise
            self._hpa_unknown = str(exc)
            return None
        self._hpa_unknown = None
        for item in found.get("items") or []:
            ref = (item.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == kind and ref.get("name") == c.name:
                return item
        return None

    def _hpa_refusal(self, hpa: dict) -> str:
        c = self.config
        return (f"{c.target} {c.namespace}/{c.name} is scaled by HorizontalPodAutoscaler "
                f"{c.namespace}/{hpa['metadata']['name']}, which overwrites any replicas written here. "
                "Set hpa = \"min-replicas\" in the provider table to warm through the HPA's "
                "spec.minReplicas, or scale through a KEDA ScaledObject (target = \"keda\")")

    def _apply_hpa(self, hpa: dict, target: int) -> ApplyResult:
        spec = hpa.get("spec") or {}
        previous = int(spec.get("minReplicas", 1))
        detail: dict[str, Any] = {"hpa": hpa["metadata"]["name"]}
        if target < 1:  # the API refuses minReplicas 0 unless the alpha HPAScaleToZero gate is on
            target, detail["raised_to_api_minimum"] = 1, 1
        target, limited = provider_limit(target, spec.get("maxReplicas"))
        detail.update(limited)
        if previous != target:
            self._call(self._autoscaling.patch_namespaced_horizontal_pod_autoscaler, hpa["metadata"]["name"],
                       self.config.namespace, body={"spec": {"minReplicas": target}})
        return ApplyResult(previous != target, previous, target, None, detail)

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

    @staticmethod
    def _traffic(service: dict) -> list[dict]:
        """status.traffic targets that receive traffic (percent > 0; an absent percent is 0);
        before the route reports any, the latest ready revision with all of it."""
        status = service.get("status") or {}
        targets = status.get("traffic")
        if targets is None:
            ready = status.get("latestReadyRevisionName")
            return [{"revisionName": ready, "percent": 100, "latestRevision": True}] if ready else []
        return [t for t in targets if int(t.get("percent") or 0) > 0 and t.get("revisionName")]

    def _read_knative(self) -> CapacityState:
        service = self._service()
        notes = self._annotations(service)
        status = service.get("status") or {}
        traffic = self._traffic(service)
        ready = 0
        for revision_name in dict.fromkeys(t["revisionName"] for t in traffic):  # each serving revision once
            revision = self._call(self._custom.get_namespaced_custom_object, "serving.knative.dev", "v1",
                                  self.config.namespace, "revisions", revision_name)
            ready += int((revision.get("status") or {}).get("actualReplicas") or 0)
        return CapacityState(
            desired=int(notes.get(MIN_SCALE, notes.get(MIN_SCALE_LEGACY, 0))), ready=ready,
            idle_timeout_s=_duration_s(notes.get(RETENTION)),
            detail={"latestReadyRevisionName": status.get("latestReadyRevisionName"),
                    "latestCreatedRevisionName": status.get("latestCreatedRevisionName"),
                    "traffic": [{"revision": t["revisionName"], "percent": int(t.get("percent") or 0),
                                 "latest": bool(t.get("latestRevision"))} for t in traffic],
                    "max_scale": notes.get(MAX_SCALE)})

    def _pinned(self, service: dict) -> tuple[int, list[str]]:
        """(percent of traffic that follows the latest revision, revisions pinned by name)."""
        traffic = self._traffic(service)
        latest = sum(int(t.get("percent") or 0) for t in traffic if t.get("latestRevision"))
        pinned = [f"{t['revisionName']} ({int(t.get('percent') or 0)}%)" for t in traffic
                  if not t.get("latestRevision")]
        return latest, pinned

    def _pinned_refusal(self, pinned: list[str]) -> str:
        c = self.config
        return (f"Knative Service {c.namespace}/{c.name} sends all its traffic to revisions pinned by name "
                f"({', '.join(pinned)}): the min-scale annotation on the template reaches only a new "
                "revision, which would get no traffic. Route traffic with latestRevision: true in "
                "spec.traffic to let prewarm warm the serving revision")

    def _apply_knative(self, target: int, idle_timeout_s: float | None) -> ApplyResult:
        service = self._service()
        latest, pinned = self._pinned(service)
        if pinned and latest == 0:
            raise self.error(self._pinned_refusal(pinned), retryable=False, code="traffic-pinned")
        notes = self._annotations(service)
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

    # check -------------------------------------------------------------------------------
    def check(self) -> list[Finding]:
        c = self.config
        if c.target in ("deployment", "statefulset"):
            hpa = self._hpa()
            if self._hpa_unknown:
                return [Finding("warning", "cannot list HorizontalPodAutoscalers (grant list on "
                                           f"horizontalpodautoscalers.autoscaling): {self._hpa_unknown}")]
            if hpa is not None and c.hpa == "refuse":
                return [Finding("error", self._hpa_refusal(hpa))]
        if c.target == "knative":
            latest, pinned = self._pinned(self._service())
            if pinned and latest == 0:
                return [Finding("error", self._pinned_refusal(pinned))]
            if pinned:
                return [Finding("warning", f"{100 - latest}% of the traffic goes to revisions pinned by name "
                                           f"({', '.join(pinned)}), which min-scale does not warm")]
        return []


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
