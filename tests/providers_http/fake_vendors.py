"""Local stand-ins for the GPU platforms' REST APIs, written from their API references:
the same paths, bodies, status codes and error shapes, with state kept between calls.
"""
from __future__ import annotations

import copy
import itertools

from fake_http import FakeApi, Request, Response, Warmup

TOKEN = "tok-s3cr3t-value-never-logged"


class RunPodFake(FakeApi):
    """rest.runpod.io/v1 endpoints + api.runpod.ai/v2 health, on one server (paths differ)."""

    UPDATABLE = {"allowedCudaVersions", "cpuFlavorIds", "dataCenterIds", "executionTimeoutMs", "flashboot",
                 "gpuCount", "gpuTypeIds", "idleTimeout", "name", "networkVolumeId", "scalerType",
                 "scalerValue", "templateId", "vcpuCount", "workersMax", "workersMin"}

    def __init__(self, endpoint_id: str = "jpnw0v75y3qoql", workers_min: int = 0, workers_max: int = 3,
                 idle_timeout: int = 5) -> None:
        super().__init__(f"Bearer {TOKEN}")
        self.endpoints = {endpoint_id: {
            "id": endpoint_id, "name": "my endpoint", "computeType": "GPU", "gpuCount": 1,
            "idleTimeout": idle_timeout, "scalerType": "QUEUE_DELAY", "scalerValue": 4,
            "templateId": "30zmvf89kd", "version": 0, "workersMax": workers_max, "workersMin": workers_min}}
        self.warm = {endpoint_id: Warmup(workers_min)}
        self.route("GET", r"/v1/endpoints/(?P<id>[^/]+)", self.get_endpoint)
        self.route("PATCH", r"/v1/endpoints/(?P<id>[^/]+)", self.patch_endpoint)
        self.route("GET", r"/v2/(?P<id>[^/]+)/health", self.health)

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"error": message, "status": status})

    def _find(self, req: Request):
        return self.endpoints.get(req.match["id"])

    def get_endpoint(self, req: Request) -> Response:
        ep = self._find(req)
        return Response(200, copy.deepcopy(ep)) if ep else self.error(404, "endpoint not found")

    def patch_endpoint(self, req: Request) -> Response:
        ep = self._find(req)
        if not ep:
            return self.error(404, "endpoint not found")
        body = req.body if isinstance(req.body, dict) else None
        if not body:
            return self.error(400, "request body must be a JSON object")
        unknown = set(body) - self.UPDATABLE
        if unknown:
            return self.error(400, f"unknown fields: {sorted(unknown)}")
        for key in ("workersMin", "workersMax", "idleTimeout"):
            if key in body and (not isinstance(body[key], int) or body[key] < 0):
                return self.error(400, f"{key} must be a non-negative integer")
        merged = {**ep, **body}
        if merged["workersMin"] > merged["workersMax"]:
            return self.error(400, "workersMin cannot exceed workersMax")
        merged["version"] += 1
        ep.update(merged)
        self.warm[ep["id"]].set(ep["workersMin"])
        return Response(200, copy.deepcopy(ep))

    def health(self, req: Request) -> Response:
        ep = self._find(req)
        if not ep:
            return self.error(404, "endpoint not found")
        ready = self.warm[ep["id"]].ready()
        return Response(200, {
            "jobs": {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0},
            "workers": {"idle": ready, "initializing": max(0, ep["workersMin"] - ready), "ready": ready,
                        "running": 0, "throttled": 0, "unhealthy": 0}})


class HfEndpointsFake(FakeApi):
    """api.endpoints.huggingface.cloud/v2: GET/PUT /endpoint/{ns}/{name}, POST .../resume."""

    def __init__(self, namespace: str = "acme", name: str = "chat", min_replica: int = 0,
                 max_replica: int = 4, state: str = "scaledToZero", timeout_min: int = 15) -> None:
        super().__init__(f"Bearer {TOKEN}")
        self.key = (namespace, name)
        self.endpoint = {
            "name": name, "type": "protected", "provider": {"vendor": "aws", "region": "us-east-1"},
            "compute": {"accelerator": "gpu", "instanceType": "nvidia-a10g", "instanceSize": "x1",
                        "scaling": {"minReplica": min_replica, "maxReplica": max_replica,
                                    "scaleToZeroTimeout": timeout_min}},
            "model": {"repository": "acme/model", "framework": "pytorch", "task": "text-generation",
                      "image": {"huggingface": {}}},
            "status": {"state": state, "message": "", "readyReplica": 0, "targetReplica": min_replica,
                       "url": "https://xyz.us-east-1.aws.endpoints.huggingface.cloud"}}
        self.paused = state == "paused"
        self.warm = Warmup(0 if state in ("paused", "scaledToZero") else min_replica)
        base = r"/v2/endpoint/(?P<ns>[^/]+)/(?P<name>[^/]+)"
        self.route("GET", base, self.get)
        self.route("PUT", base, self.put)
        self.route("POST", base + "/resume", self.resume)

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"error": message})

    def _view(self) -> dict:
        ep = copy.deepcopy(self.endpoint)
        scaling = ep["compute"]["scaling"]
        ready = 0 if self.paused else self.warm.ready()
        if self.paused:
            state = "paused"
        elif ready < scaling["minReplica"]:
            state = "initializing"
        elif ready == 0:
            state = "scaledToZero"
        else:
            state = "running"
        ep["status"].update(state=state, readyReplica=ready, targetReplica=scaling["minReplica"])
        return ep

    def get(self, req: Request) -> Response:
        if (req.match["ns"], req.match["name"]) != self.key:
            return self.error(404, "Endpoint not found")
        return Response(200, self._view())

    def put(self, req: Request) -> Response:
        if (req.match["ns"], req.match["name"]) != self.key:
            return self.error(404, "Endpoint not found")
        body = req.body if isinstance(req.body, dict) else {}
        unknown = set(body) - {"compute", "model", "type", "tags"}
        if unknown or not body:
            return self.error(422, f"invalid update body, unexpected keys {sorted(unknown)}")
        scaling = dict(self.endpoint["compute"]["scaling"])
        new = (body.get("compute") or {}).get("scaling") or {}
        if set(new) - {"minReplica", "maxReplica", "scaleToZeroTimeout"}:
            return self.error(422, "unknown scaling keys")
        scaling.update(new)
        if scaling["minReplica"] > scaling["maxReplica"]:
            return self.error(422, "minReplica must be lower or equal to maxReplica")
        if "scaleToZeroTimeout" in new and scaling["minReplica"] != 0:
            return self.error(422, "scaleToZeroTimeout requires minReplica=0")
        self.endpoint["compute"]["scaling"] = scaling
        if not self.paused:
            self.warm.set(scaling["minReplica"])
        return Response(200, self._view())

    def resume(self, req: Request) -> Response:
        if (req.match["ns"], req.match["name"]) != self.key:
            return self.error(404, "Endpoint not found")
        if self.paused:
            self.paused = False
            self.warm.set(self.endpoint["compute"]["scaling"]["minReplica"])
        return Response(200, self._view())


class ReplicateFake(FakeApi):
    """api.replicate.com/v1: GET/PATCH /deployments/{owner}/{name}; errors as problem details."""

    def __init__(self, owner: str = "acme", name: str = "image-gen", min_instances: int = 0,
                 max_instances: int = 5) -> None:
        super().__init__(f"Bearer {TOKEN}")
        self.key = (owner, name)
        self._numbers = itertools.count(2)
        self.deployment = {
            "owner": owner, "name": name,
            "current_release": {
                "number": 1, "model": "acme/sdxl", "version": "da77bc59ee60423279fd632efb4795ab731d9e3c",
                "created_at": "2024-02-15T16:32:57.018467Z",
                "created_by": {"type": "organization", "username": owner, "name": "Acme"},
                "configuration": {"hardware": "gpu-t4", "min_instances": min_instances,
                                  "max_instances": max_instances}}}
        base = r"/v1/deployments/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        self.route("GET", base, self.get)
        self.route("PATCH", base, self.patch)

    def error(self, status: int, message: str) -> Response:
        titles = {401: "Unauthenticated", 404: "Not found", 422: "Invalid request", 429: "Too Many Requests"}
        return Response(status, {"title": titles.get(status, "Error"), "detail": message, "status": status})

    def get(self, req: Request) -> Response:
        if (req.match["owner"], req.match["name"]) != self.key:
            return self.error(404, "Deployment not found")
        return Response(200, copy.deepcopy(self.deployment))

    def patch(self, req: Request) -> Response:
        if (req.match["owner"], req.match["name"]) != self.key:
            return self.error(404, "Deployment not found")
        body = req.body if isinstance(req.body, dict) else {}
        if not body or set(body) - {"hardware", "min_instances", "max_instances", "version"}:
            return self.error(422, "body may only hold hardware, min_instances, max_instances, version")
        conf = {**self.deployment["current_release"]["configuration"],
                **{k: v for k, v in body.items() if k != "version"}}
        if not 0 <= conf["min_instances"] <= conf["max_instances"]:
            return self.error(422, "min_instances must be between 0 and max_instances")
        release = {**self.deployment["current_release"], "number": next(self._numbers), "configuration": conf}
        self.deployment["current_release"] = release
        return Response(200, copy.deepcopy(self.deployment))


class BasetenFake(FakeApi):
    """api.baseten.co/v1 management API: deployment GET and autoscaling_settings PATCH."""

    SETTINGS = {"min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target",
                "target_utilization_percentage", "target_in_flight_tokens"}

    def __init__(self, model_id: str = "abc123", deployment_id: str = "def456", min_replica: int = 0,
                 max_replica: int = 7, scale_down_delay: int = 900) -> None:
        super().__init__(f"Api-Key {TOKEN}")
        self.model_id, self.deployment_id = model_id, deployment_id
        self.settings = {"min_replica": min_replica, "max_replica": max_replica, "autoscaling_window": 60,
                         "scale_down_delay": scale_down_delay, "concurrency_target": 1,
                         "target_utilization_percentage": 70}
        self.warm = Warmup(min_replica)
        base = r"/v1/models/(?P<model>[^/]+)/deployments/(?P<dep>[^/]+)"
        self.route("GET", base, self.get)
        self.route("PATCH", base + "/autoscaling_settings", self.patch)

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"error": message, "error_code": f"E{status}", "detail": message})

    def _known(self, req: Request) -> bool:
        return req.match["model"] == self.model_id and req.match["dep"] in (self.deployment_id, "production")

    def get(self, req: Request) -> Response:
        if not self._known(req):
            return self.error(404, "Deployment not found")
        ready = self.warm.ready()
        return Response(200, {
            "id": self.deployment_id, "created_at": "2024-05-01T00:00:00Z", "name": "deployment-1",
            "model_id": self.model_id, "is_production": True, "is_development": False,
            "status": "ACTIVE" if ready else "SCALED_TO_ZERO", "active_replica_count": ready,
            "autoscaling_settings": dict(self.settings), "instance_type_name": "1x L4",
            "environment": "production", "request_backpressure_settings": {"policy": "QUEUE_ON_FULL"}})

    def patch(self, req: Request) -> Response:
        if not self._known(req):
            return self.error(404, "Deployment not found")
        body = req.body if isinstance(req.body, dict) else {}
        if set(body) - self.SETTINGS:
            return self.error(400, f"unknown settings {sorted(set(body) - self.SETTINGS)}")
        merged = {**self.settings, **{k: v for k, v in body.items() if v is not None}}
        if merged["min_replica"] > merged["max_replica"]:
            return self.error(400, "min_replica cannot exceed max_replica")
        if merged == self.settings:
            return Response(200, {"status": "UNCHANGED", "message": "settings unchanged"})
        self.settings = merged
        self.warm.set(merged["min_replica"])
        return Response(200, {"status": "ACCEPTED", "message": "autoscaling settings updated"})
