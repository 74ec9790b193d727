"""A Kubernetes API server stand-in speaking the paths prewarm uses, with metav1.Status errors
and the PATCH content types the real server distinguishes (a merge patch must be a JSON
object, a JSON patch a list of operations)."""
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
                                                     "spec": {"containers": [{"image": "example/kn:1"}]}}},
                               "status": {}}
        self._roll_revision(name, delay_s=0.0)

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
        return Response(200, self._scale_view(req, obj))

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

    def patch_scaledobject(self, req: Request) -> Response:
        obj = self.scaledobjects.get(req.match["name"])
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'scaledobjects.keda.sh "{req.match["name"]}" not found')
        body, err = self._patch_body(req)
        if err:
            return err
        merged = merge_patch(obj, body)
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

    def patch_service(self, req: Request) -> Response:
        obj = self.services.get(req.match["name"])
        if self._wrong_ns(req) or not obj:
            return self.error(404, f'services.serving.knative.dev "{req.match["name"]}" not found')
        body, err = self._patch_body(req)
        if err:
            return err
        merged = merge_patch(obj, body)
        self.services[req.match["name"]] = merged
        self._bump(merged)
        if merged["spec"] != obj["spec"]:  # a template change rolls a new revision
            self._roll_revision(req.match["name"], delay_s=0.3)
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
        return self.get_custom(req, self.services)
