"""A Kubernetes API server stand-in speaking the paths prewarm uses, with metav1.Status errors
and the PATCH content types the real server distinguishes (a merge patch must be a JSON
object, a JSON patch a list of operations).

Also: HorizontalPodAutoscalers (autoscaling/v2) with the API's validation (minReplicas >= 1
without the alpha HPAScaleToZero gate, maxReplicas >= minReplicas) and a stand-in for the HPA
controller, which sets its target's replicas back to what its metrics ask within
[minReplicas, maxReplicas] after every change; and a Knative Service's traffic block as the
webhook validates it (percents sum to 100; latestRevision: true excludes revisionName) and as
the route reports it in status.traffic (latestRevision targets resolved to the latest ready
revision)."""
from __future__ import annotations

import copy
import itertools

from fake_http import FakeApi, Request, Response, Warmup

KUBE_TOKEN = "kube-bearer-s3cr3t"
MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class KubeFake(FakeApi):
    def __init__(self, namespace: str = "ml") -> None:
        super().__init__(f"Bearer {KUBE_TOKEN}")
        self.ns = namespace
        self._rv = itertools.count(100)
        self.workloads: dict[tuple[str, str], dict] = {}
        self.warm: dict[tuple[str, str], Warmup] = {}
        self.scaledobjects: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self.revisions: dict[str, dict] = {}
        ns = r"/apis/(?P<group>apps)/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments|statefulsets)/(?P<name>[^/]+)"
        self.route("GET", ns + "/scale", self.get_scale)
        self.route("PATCH", ns + "/scale", self.patch_scale)
        self.route("GET", ns + "/status", self.get_workload)
        self.route("GET", ns, self.get_workload)
        keda = r"/apis/keda.sh/v1alpha1/namespaces/(?P<ns>[^/]+)/scaledobjects/(?P<name>[^/]+)"
        self.route("GET", keda, lambda r: self.get_custom(r, self.scaledobjects))
        self.route("PATCH", keda, self.patch_scaledobject)
        kn = r"/apis/serving.knative.dev/v1/namespaces/(?P<ns>[^/]+)"
        self.route("GET", kn + r"/services/(?P<name>[^/]+)", self.get_service)
        self.route("PATCH", kn + r"/services/(?P<name>[^/]+)", self.patch_service)
        self.route("GET", kn + r"/revisions/(?P<name>[^/]+)", self.get_revision)
        hpa = r"/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers"
        self.route("GET", hpa, self.list_hpas)
        self.route("PATCH", hpa + r"/(?P<name>[^/]+)", self.patch_hpa)
        self.hpas: dict[str, dict] = {}
        self.hpa_wants: dict[str, int] = {}  # replicas each HPA's metrics ask for

    # -- seeding ----------------------------------------------------------------------------
    def add_workload(self, res: str, name: str, replicas: int) -> None:
        self.workloads[(res, name)] = {
            "apiVersion": "apps/v1", "kind": "Deployment" if res == "deployments" else "StatefulSet",
            "metadata": {"name": name, "namespace": self.ns, "resourceVersion": str(next(self._rv))},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "worker", "image": "example/worker:1"}]}}}}
        self.warm[(res, name)] = Warmup(replicas)

    def add_scaledobject(self, name: str, target: str, min_count: int | None = None, **spec) -> None:
        body = {"scaleTargetRef": {"name": target}, "triggers": [{"type": "prometheus", "metadata": {}}], **spec}
        if min_count is not None:
            body["minReplicaCount"] = min_count
        self.scaledobjects[name] = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                    "metadata": {"name": name, "namespace": self.ns,
                                                 "resourceVersion": str(next(self._rv))}, "spec": body}

    def add_knative_service(self, name: str, annotations: dict[str, str]) -> None:
        self.services[name] = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                               "metadata": {"name": name, "namespace": self.ns, "generation": 0,
                                            "resourceVersion": str(next(self._rv))},
                               "spec": {"template": {"metadata": {"annotations": dict(annotations)},
                                                     "spec": {"containers": [{"image": "example/kn:1"}]}},
                                        "traffic": [{"latestRevision": True, "percent": 100}]},
                               "status": {}}
        self._roll_revision(name, delay_s=0.0)

    def add_hpa(self, name: str, target: str, *, kind: str = "Deployment", min_replicas: int | None = None,
                max_replicas: int = 10, wants: int = 1) -> None:
        spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                "maxReplicas": max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": 70}}}]}
        if min_replicas is not None:
            spec["minReplicas"] = min_replicas
        self.hpas[name] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                           "metadata": {"name": name, "namespace": self.ns,
                                        "resourceVersion": str(next(self._rv))}, "spec": spec}
        self.hpa_wants[name] = wants
        self._hpa_controller()

    # -- helpers ----------------------------------------------------------------------------
    def error(self, status: int, message: str) -> Response:
        reasons = {401: "Unauthorized", 404: "NotFound", 409: "Conflict", 415: "UnsupportedMediaType",
                   422: "Invalid", 429: "TooManyRequests", 400: "BadRequest", 500: "InternalError"}
        return Response(status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": message, "reason": reasons.get(status, "Unknown"), "code": status})

    def _patch_body(self, req: Request):
        ctype = req.headers.get("Content-Type", "").split(";")[0]
        if ctype in MERGE_TYPES:
            if not isinstance(req.body, dict):
                return None, self.error(400, "merge patch body must be a JSON object")
            return req.body, None
        if ctype == "application/json-patch+json":
            if not isinstance(req.body, list):
                return None, self.error(400, "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
            return None, self.error(415, "this fake accepts merge patches only")
        return None, self.error(415, f"the body of the request was in an unknown format: {ctype}")

    def _bump(self, obj: dict) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))

    def _wrong_ns(self, req: Request) -> Response | None:
        return None if req.match["ns"] == self.ns else self.error(404, f"namespace {req.match['ns']} not found")

    # -- apps/v1 ----------------------------------------------------------------------------
    def _workload(self, req: Request):
        return self.workloads.get((req.match["res"], req.match["name"]))

    def _scale_view(self, req: Request, obj: dict) -> dict:
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": req.match["name"], "namespace": self.ns,
                             "resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": {"replicas": obj["spec"]["replicas"]},
                "status": {"replicas": obj["spec"]["replicas"], "selector": f"app={req.match['name']}"}}

    def get_scale(self, req: Request) -> Response:
        obj = self._workload(req)
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'{req.match["res"]}.apps "{req.match["name"]}" not found')
        return Response(200, self._scale_view(req, obj))

    def patch_scale(self, req: Request) -> Response:
        obj = self._workload(req)
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'{req.match["res"]}.apps "{req.match["name"]}" not found')
        body, err = self._patch_body(req)
        if err:
            return err
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return self.error(422, "Scale.autoscaling \"x\" is invalid: spec.replicas: must be >= 0")
        obj["spec"]["replicas"] = replicas
        self._bump(obj)
        self.warm[(req.match["res"], req.match["name"])].set(replicas)
        view = self._scale_view(req, obj)
        self._hpa_controller()  # an HPA on this workload sets replicas back to its own choice
        return Response(200, view)

    def get_workload(self, req: Request) -> Response:
        obj = self._workload(req)
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'{req.match["res"]}.apps "{req.match["name"]}" not found')
        ready = self.warm[(req.match["res"], req.match["name"])].ready()
        view = copy.deepcopy(obj)
        view["status"] = {"replicas": obj["spec"]["replicas"], "readyReplicas": ready,
                          "availableReplicas": ready, "observedGeneration": 1}
        return Response(200, view)

    # -- custom resources -------------------------------------------------------------------
    def get_custom(self, req: Request, store: dict) -> Response:
        obj = store.get(req.match["name"])
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'"{req.match["name"]}" not found')
        return Response(200, copy.deepcopy(obj))

    def _merged(self, req: Request, store: dict, resource: str) -> tuple[dict | None, Response | None]:
        """The stored object with a merge patch applied (not stored yet), or the error answer."""
        obj = store.get(req.match["name"])
        if self._wrong_ns(req) or not obj:
            return None, self.error(404, f'{resource} "{req.match["name"]}" not found')
        body, err = self._patch_body(req)
        return (None, err) if err else (merge_patch(obj, body), None)

    def patch_scaledobject(self, req: Request) -> Response:
        merged, err = self._merged(req, self.scaledobjects, "scaledobjects.keda.sh")
        if err:
            return err
        spec = merged["spec"]
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            return self.error(422, "MinReplicaCount=%d must be less than MaxReplicaCount" % spec["minReplicaCount"])
        self.scaledobjects[req.match["name"]] = merged
        self._bump(merged)
        # KEDA's operator keeps the target at >= minReplicaCount.
        key = ("deployments", spec["scaleTargetRef"]["name"])
        if key in self.workloads and self.workloads[key]["spec"]["replicas"] < spec.get("minReplicaCount", 0):
            self.workloads[key]["spec"]["replicas"] = spec["minReplicaCount"]
            self.warm[key].set(spec["minReplicaCount"])
        return Response(200, copy.deepcopy(merged))

    # -- autoscaling/v2 ----------------------------------------------------------------------
    def list_hpas(self, req: Request) -> Response:
        if self._wrong_ns(req):
            return Response(200, {"kind": "HorizontalPodAutoscalerList", "apiVersion": "autoscaling/v2",
                                  "items": []})
        return Response(200, {"kind": "HorizontalPodAutoscalerList", "apiVersion": "autoscaling/v2",
                              "metadata": {"resourceVersion": str(next(self._rv))},
                              "items": [copy.deepcopy(h) for h in self.hpas.values()]})

    def patch_hpa(self, req: Request) -> Response:
        merged, err = self._merged(req, self.hpas, "horizontalpodautoscalers.autoscaling")
        if err:
            return err
        spec = merged["spec"]
        low = spec.get("minReplicas", 1)
        # apis/autoscaling validation: minReplicas >= 1 unless the alpha HPAScaleToZero gate is
        # on (it is off here, as by default); maxReplicas "cannot be less than minReplicas".
        if not isinstance(low, int) or low < 1:
            return self.error(422, f'HorizontalPodAutoscaler.autoscaling "{req.match["name"]}" is invalid: '
                                   f"spec.minReplicas: Invalid value: {low}: must be greater than or equal to 1")
        if spec["maxReplicas"] < low:
            return self.error(422, f'HorizontalPodAutoscaler.autoscaling "{req.match["name"]}" is invalid: '
                                   f"spec.maxReplicas: Invalid value: {spec['maxReplicas']}: must be greater "
                                   "than or equal to `minReplicas`")
        self.hpas[req.match["name"]] = merged
        self._bump(merged)
        self._hpa_controller()
        return Response(200, copy.deepcopy(merged))

    def _hpa_controller(self) -> None:
        """What kube-controller-manager's HPA loop does: replicas = its metrics' wish, kept
        within [minReplicas, maxReplicas], written through the scale subresource."""
        for name, hpa in self.hpas.items():
            spec = hpa["spec"]
            ref = spec["scaleTargetRef"]
            key = ("deployments" if ref["kind"] == "Deployment" else "statefulsets", ref["name"])
            if key not in self.workloads:
                continue
            replicas = max(spec.get("minReplicas", 1), min(spec["maxReplicas"], self.hpa_wants[name]))
            if self.workloads[key]["spec"]["replicas"] != replicas:
                self.workloads[key]["spec"]["replicas"] = replicas
                self._bump(self.workloads[key])
                self.warm[key].set(replicas)

    # -- serving.knative.dev ----------------------------------------------------------------
    def _traffic_invalid(self, traffic) -> str | None:
        """The webhook's checks of spec.traffic (serving.knative.dev/v1 TrafficTarget)."""
        total = 0
        for i, target in enumerate(traffic or []):
            latest = target.get("latestRevision")
            if latest and target.get("revisionName"):
                return f"may not set revisionName when latestRevision is true: spec.traffic[{i}]"
            if latest is False and not target.get("revisionName"):
                return f"must set revisionName when latestRevision is false: spec.traffic[{i}]"
            total += int(target.get("percent") or 0)
        if traffic and total != 100:
            return f"Traffic targets sum to {total}, want 100: spec.traffic"
        return None

    def _route_status(self, svc: dict) -> None:
        """status.traffic as the route reports it: each target with its revision resolved."""
        out = []
        for target in svc["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]:
            entry = {k: v for k, v in target.items() if k in ("tag", "percent")}
            if target.get("latestRevision", not target.get("revisionName")):
                entry.update(latestRevision=True, revisionName=svc["status"].get("latestReadyRevisionName"))
            else:
                entry.update(latestRevision=False, revisionName=target["revisionName"])
            out.append(entry)
        svc["status"]["traffic"] = out

    def patch_service(self, req: Request) -> Response:
        merged, err = self._merged(req, self.services, "services.serving.knative.dev")
        if err:
            return err
        obj = self.services[req.match["name"]]
        invalid = self._traffic_invalid(merged["spec"].get("traffic"))
        if invalid:
            return self.error(400, 'admission webhook "validation.webhook.serving.knative.dev" denied the '
                                   f"request: validation failed: {invalid}")
        self.services[req.match["name"]] = merged
        self._bump(merged)
        if merged["spec"]["template"] != obj["spec"]["template"]:  # a template change rolls a revision
            self._roll_revision(req.match["name"], delay_s=0.3)
        self._route_status(merged)
        return Response(200, copy.deepcopy(merged))

    def _roll_revision(self, service: str, delay_s: float) -> None:
        svc = self.services[service]
        svc["metadata"]["generation"] += 1
        name = f"{service}-{svc['metadata']['generation']:05d}"
        notes = svc["spec"]["template"]["metadata"].get("annotations", {})
        warm = Warmup(0, delay_s)
        warm.set(int(notes.get("autoscaling.knative.dev/min-scale", notes.get("autoscaling.knative.dev/minScale", 0))))
        self.revisions[name] = {"service": service, "warm": warm}
        svc["status"]["latestCreatedRevisionName"] = name
        if delay_s == 0:
            svc["status"]["latestReadyRevisionName"] = name
        self._route_status(svc)

    def get_revision(self, req: Request) -> Response:
        rev = self.revisions.get(req.match["name"])
        if self._wrong_ns(req) or not rev:
            return self.error(404, f'revisions.serving.knative.dev "{req.match["name"]}" not found')
        actual = rev["warm"].ready()
        return Response(200, {"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
                              "metadata": {"name": req.match["name"], "namespace": self.ns},
                              "status": {"actualReplicas": actual, "desiredReplicas": rev["warm"]._to}})

    def get_service(self, req: Request) -> Response:
        # Promote revisions that finished warming, as Knative's controller does on its own.
        for name, rev in self.revisions.items():
            svc = self.services[rev["service"]]
            if name == svc["status"].get("latestCreatedRevisionName") and rev["warm"].ready() == rev["warm"]._to:
                svc["status"]["latestReadyRevisionName"] = name
                self._route_status(svc)
        return self.get_custom(req, self.services)
