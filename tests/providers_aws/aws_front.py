"""A local HTTP front before moto that implements the AWS operations moto 5.2.5 lacks, as the
AWS API reference describes them, and forwards every other request to moto unchanged.

Implemented here (moto answers 404 / does not persist / answers 500 for these):
- Lambda (rest-json): PutProvisionedConcurrencyConfig (PUT, 202), GetProvisionedConcurrencyConfig
  (GET, 200), DeleteProvisionedConcurrencyConfig (DELETE, 204) on
  /2019-09-30/functions/{FunctionName}/provisioned-concurrency?Qualifier=...; the function and
  qualifier are checked against moto (GetFunction). Status IN_PROGRESS -> READY after
  `ready_delay_s`; functions in `failing_functions` go to FAILED.
- SageMaker (awsJson1_1): UpdateEndpointWeightsAndCapacities carrying ServerlessUpdateConfig
  (stored here, overlaid on moto's DescribeEndpoint: Desired/CurrentServerlessConfig and
  EndpointStatus Updating -> InService), and Create/Describe/UpdateRuntimeConfig of
  inference components.

Also: every request is logged by operation name (`ops`), and `fail(operation, times)` makes the
next answers to an operation an error in that service's protocol shape (default: throttling:
Lambda 429 TooManyRequestsException, JSON services 400 ThrottlingException, EC2 Auto Scaling
400 Throttling in an XML ErrorResponse).
"""
from __future__ import annotations

import copy
import http.client
import json
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

PC_PATH = re.compile(r"^/2019-09-30/functions/(?P<fn>[^/]+)/provisioned-concurrency$")
ACCOUNT = "123456789012"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Fault:
    operation: str
    times: int
    status: int | None = None
    code: str | None = None
    message: str = "Rate exceeded"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AwsFront:
    def __init__(self, moto_host: str, moto_port: int, *, ready_delay_s: float = 0.3) -> None:
        self.moto = (moto_host, moto_port)
        self.ready_delay_s = ready_delay_s
        self.account_unreserved_limit = 1000  # Lambda refuses PC that would exceed it
        self.failing_functions: set[str] = set()
        self.ops: list[str] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        # Cleared by `held()`: pending changes stay pending until it ends, so a test can see a
        # wait that waits without racing the clock.
        self.settling = threading.Event()
        self.settling.set()
        self.lambda_pc: dict[tuple[str, str], dict[str, Any]] = {}
        self.sm_endpoints: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = front.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle and test controls ------------------------------------------------------------
    def start(self) -> "AwsFront":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, operation: str, times: int = 1, *, status: int | None = None,
             code: str | None = None, message: str = "Rate exceeded") -> None:
        with self.lock:
            self.faults.append(Fault(operation, times, status, code, message))

    def reset_log(self) -> None:
        with self.lock:
            self.ops.clear()
            self.faults.clear()

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        protocol, operation = self.identify(method, path, headers, body)
        with self.lock:
            self.ops.append(operation)
            fault = next((f for f in self.faults if f.operation == operation and f.times > 0), None)
            if fault:
                fault.times -= 1
        if fault:
            return self.error(protocol, *self.fault_shape(protocol, fault))
        try:
            local = self.local_operation(protocol, operation, method, path, headers, body)
            if local is not None:
                return local
        except ApiError as exc:
            return self.error(protocol, exc.status, exc.code, exc.message)
        return self.forward(method, path, headers, body)

    @staticmethod
    def identify(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
        lower = {k.lower(): v for k, v in headers.items()}
        if "x-amz-target" in lower:
            return "json", lower["x-amz-target"].rsplit(".", 1)[-1]
        url = urlsplit(path)
        match = PC_PATH.match(url.path)
        if match:
            verb = {"PUT": "Put", "GET": "Get", "DELETE": "Delete"}.get(method, method)
            return "rest-json", f"{verb}ProvisionedConcurrencyConfig"
        if url.path.startswith(("/2015-03-31/", "/2019-09-30/", "/2017-10-31/")):
            return "rest-json", f"lambda:{method} {url.path}"
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        return "query", action or f"{method} {url.path}"

    @staticmethod
    def fault_shape(protocol: str, fault: Fault) -> tuple[int, str, str]:
        default = {"rest-json": (429, "TooManyRequestsException"),
                   "json": (400, "ThrottlingException"), "query": (400, "Throttling")}[protocol]
        return fault.status or default[0], fault.code or default[1], fault.message

    @staticmethod
    def error(protocol: str, status: int, code: str, message: str) -> Answer:
        request_id = str(uuid.uuid4())
        if protocol == "rest-json":
            body = {"Type": "User", "message": message}
            if code == "TooManyRequestsException":
                body["Reason"] = "CallerRateLimitExceeded"
            return Answer(status, json.dumps(body).encode(),
                          {"Content-Type": "application/json", "x-amzn-ErrorType": code,
                           "x-amzn-RequestId": request_id})
        if protocol == "json":
            return Answer(status, json.dumps({"__type": code, "message": message}).encode(),
                          {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id})
        kind = "Receiver" if status >= 500 else "Sender"
        xml = (f'<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"><Error>'
               f"<Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
               f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return Answer(status, xml.encode(), {"Content-Type": "text/xml"})

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        conn = http.client.HTTPConnection(*self.moto, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            kept = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS}
            return Answer(resp.status, data, kept)
        finally:
            conn.close()

    def moto_json(self, headers: dict[str, str], target: str, payload: dict[str, Any]) -> Answer:
        """Ask moto a JSON-protocol question with the caller's (unchecked) signature headers."""
        sent = {k: v for k, v in headers.items() if k.lower() != "x-amz-target"}
        sent["X-Amz-Target"] = target
        return self.forward("POST", "/", sent, json.dumps(payload).encode())

    # -- implemented operations ----------------------------------------------------------------
    def local_operation(self, protocol: str, operation: str, method: str, path: str,
                        headers: dict[str, str], body: bytes) -> Answer | None:
        if protocol == "rest-json" and operation.endswith("ProvisionedConcurrencyConfig"):
            url = urlsplit(path)
            function = unquote(PC_PATH.match(url.path).group("fn"))
            qualifier = parse_qs(url.query).get("Qualifier", [""])[0]
            return self.lambda_pc_operation(method, function, qualifier, headers, body)
        if protocol != "json":
            return None
        request = json.loads(body or b"{}")
        if operation == "UpdateEndpointWeightsAndCapacities":
            return self.update_weights(request, headers, body)
        if operation == "UpdateEndpoint":
            return self.update_endpoint(request, headers)
        if operation == "DescribeEndpoint":
            return self.describe_endpoint(request, headers)
        handler = {"CreateInferenceComponent": self.create_component,
                   "DescribeInferenceComponent": self.describe_component,
                   "UpdateInferenceComponentRuntimeConfig": self.update_component}.get(operation)
        return handler(request, headers) if handler else None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Within this block no pending change completes, however long it has been pending."""
        self.settling.clear()
        try:
            yield
        finally:
            self.settling.set()

    def _settle(self, record: dict[str, Any]) -> None:
        """Advance a pending change once its time has come (status as AWS reports it)."""
        if not self.settling.is_set():
            return
        if record.get("ready_at") and time.monotonic() >= record["ready_at"]:
            record["ready_at"] = None
            record["settle"](record)

    # Lambda provisioned concurrency -------------------------------------------------------------
    def lambda_pc_operation(self, method: str, function: str, qualifier: str,
                            headers: dict[str, str], body: bytes) -> Answer:
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}:{qualifier}"
        if not qualifier:
            raise ApiError(400, "InvalidParameterValueException", "Qualifier is required")
        if qualifier == "$LATEST":
            raise ApiError(400, "InvalidParameterValueException",
                           "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        probe = self.forward("GET", f"/2015-03-31/functions/{function}?Qualifier={qualifier}", headers, b"")
        if probe.status == 404:
            raise ApiError(404, "ResourceNotFoundException", f"Function not found: {arn}")
        key = (function, qualifier)
        with self.lock:
            record = self.lambda_pc.get(key)
            if method == "GET":
                if record is None:
                    raise ApiError(404, "ProvisionedConcurrencyConfigNotFoundException",
                                   "No Provisioned Concurrency Config found for this function")
                self._settle(record)
                return self._json(200, self._pc_view(record))
            if method == "DELETE":
                if record is None:
                    raise ApiError(404, "ProvisionedConcurrencyConfigNotFoundException",
                                   "No Provisioned Concurrency Config found for this function")
                del self.lambda_pc[key]
                return Answer(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
            if method != "PUT":
                raise ApiError(405, "MethodNotAllowed", method)
            wanted = json.loads(body or b"{}").get("ProvisionedConcurrentExecutions")
            if not isinstance(wanted, int) or wanted < 1:
                raise ApiError(400, "InvalidParameterValueException",
                               "ProvisionedConcurrentExecutions must be at least 1")
            if wanted > self.account_unreserved_limit:
                raise ApiError(400, "InvalidParameterValueException",
                               "Requested Provisioned Concurrency should not be greater than the "
                               "reservedConcurrentExecution for function")
            failing = function in self.failing_functions
            record = record or {"allocated": 0}
            record.update(requested=wanted, status="IN_PROGRESS", reason=None,
                          modified=datetime.now(timezone.utc).isoformat(),
                          ready_at=time.monotonic() + self.ready_delay_s,
                          settle=(self._pc_failed if failing else self._pc_ready))
            self.lambda_pc[key] = record
            return self._json(202, self._pc_view(record))

    @staticmethod
    def _pc_ready(record: dict[str, Any]) -> None:
        record.update(status="READY", allocated=record["requested"])

    @staticmethod
    def _pc_failed(record: dict[str, Any]) -> None:
        record.update(status="FAILED", allocated=0, reason="FUNCTION_ERROR_INIT_FAILURE")

    @staticmethod
    def _pc_view(record: dict[str, Any]) -> dict[str, Any]:
        view = {"RequestedProvisionedConcurrentExecutions": record["requested"],
                "AvailableProvisionedConcurrentExecutions": record["allocated"],
                "AllocatedProvisionedConcurrentExecutions": record["allocated"],
                "Status": record["status"], "LastModified": record["modified"]}
        if record["reason"]:
            view["StatusReason"] = record["reason"]
        return view

    # SageMaker endpoints: capacity updates and the Updating status ----------------------------
    # moto applies UpdateEndpointWeightsAndCapacities at once, stays InService, does not keep
    # ServerlessUpdateConfig and has no UpdateEndpoint. The front keeps, per endpoint, what it
    # shows over moto's DescribeEndpoint (`shown`: variant fields) and what the update in
    # progress will show once it completes (`after`); while one is pending, EndpointStatus is
    # Updating and every capacity or config change is refused as SageMaker refuses it.
    def _moto_endpoint(self, name: str, headers: dict[str, str]) -> dict[str, Any]:
        answer = self.moto_json(headers, "SageMaker.DescribeEndpoint", {"EndpointName": name})
        if answer.status != 200:
            raise ApiError(400, "ValidationException",
                           f"Could not find endpoint \"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{name}\".")
        return json.loads(answer.body)

    def _endpoint_view(self, name: str, headers: dict[str, str]) -> dict[str, Any]:
        """moto's DescribeEndpoint with the front's overlay (call with the lock held)."""
        endpoint = self._moto_endpoint(name, headers)
        record = self.sm_endpoints.get(name)
        if record is None:
            return endpoint
        self._settle(record)
        for variant in endpoint.get("ProductionVariants", []):
            variant.update(copy.deepcopy(record["shown"].get(variant["VariantName"], {})))
        if record.get("config"):
            endpoint["EndpointConfigName"] = record["config"]
        if record["ready_at"] is not None:
            endpoint["EndpointStatus"] = "Updating"
        return endpoint

    @staticmethod
    def _refuse_in_progress(endpoint: dict[str, Any]) -> None:
        """SageMaker refuses a change while another runs ("Updating: UpdateEndpoint or
        UpdateEndpointWeightsAndCapacities is executing"; API_DescribeEndpoint)."""
        if endpoint.get("EndpointStatus") != "InService":
            raise ApiError(400, "ValidationException",
                           f"Cannot update in-progress endpoint \"{endpoint['EndpointArn']}\".")

    def _begin_update(self, name: str) -> dict[str, Any]:
        record = self.sm_endpoints.setdefault(name, {"shown": {}, "after": {}, "config": None,
                                                     "ready_at": None})
        record.update(ready_at=time.monotonic() + self.ready_delay_s, settle=self._endpoint_updated)
        return record

    @staticmethod
    def _endpoint_updated(record: dict[str, Any]) -> None:
        for variant, fields in record["after"].items():
            shown = record["shown"].setdefault(variant, {})
            for key, value in fields.items():
                if value is None:
                    shown.pop(key, None)
                else:
                    shown[key] = value
        record["after"] = {}
        record["config"] = record.pop("next_config", None) or record["config"]

    def update_weights(self, request: dict[str, Any], headers: dict[str, str], body: bytes) -> Answer:
        name = request.get("EndpointName", "")
        items = request.get("DesiredWeightsAndCapacities", [])
        with self.lock:
            endpoint = self._endpoint_view(name, headers)
            self._refuse_in_progress(endpoint)
            variants = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
            changes: dict[str, dict[str, Any]] = {}
            for item in items:
                variant = variants.get(item.get("VariantName"))
                if "ServerlessUpdateConfig" in item:
                    changes[item["VariantName"]] = self._serverless_change(name, item, variant)
                elif variant is not None and "DesiredInstanceCount" in item:
                    # moto sets Current = Desired at once: show the old count until it completes.
                    changes[item["VariantName"]] = {
                        "now": {"CurrentInstanceCount": variant.get("CurrentInstanceCount")},
                        "after": {"CurrentInstanceCount": None}}
            plain = [{k: v for k, v in i.items() if k != "ServerlessUpdateConfig"} for i in items]
            if any(set(i) - {"VariantName"} for i in plain):  # weights/instances: moto keeps them
                answer = self.moto_json(headers, "SageMaker.UpdateEndpointWeightsAndCapacities",
                                        {"EndpointName": name, "DesiredWeightsAndCapacities": plain})
                if answer.status != 200:
                    return answer
            record = self._begin_update(name)
            for variant, change in changes.items():
                record["shown"].setdefault(variant, {}).update(change["now"])
                record["after"].setdefault(variant, {}).update(change["after"])
        return self._json(200, {"EndpointArn": endpoint["EndpointArn"]})

    def _serverless_change(self, name: str, item: dict[str, Any],
                           variant: dict[str, Any] | None) -> dict[str, Any]:
        if variant is None or "CurrentServerlessConfig" not in variant:
            raise ApiError(400, "ValidationException",
                           f"The variant {item.get('VariantName')} is not a serverless variant "
                           f"of endpoint {name}.")
        current = variant["CurrentServerlessConfig"]
        desired = variant.get("DesiredServerlessConfig") or current
        update = item.get("ServerlessUpdateConfig") or {}
        max_conc = update.get("MaxConcurrency", desired["MaxConcurrency"])
        wanted = update.get("ProvisionedConcurrency")
        if wanted is not None and desired.get("ProvisionedConcurrency") is None:
            # Adding provisioned concurrency to a variant deployed without it takes a new
            # endpoint config and UpdateEndpoint (AWS developer guide, "Update a serverless
            # endpoint"); the wording of this message is the front's own.
            raise ApiError(400, "ValidationException",
                           f"Provisioned concurrency cannot be added to variant {item['VariantName']} "
                           "with UpdateEndpointWeightsAndCapacities: it was deployed without "
                           "provisioned concurrency. Use UpdateEndpoint with a new endpoint config.")
        if wanted is not None and not 1 <= wanted <= min(200, max_conc):
            raise ApiError(400, "ValidationException",
                           f"ProvisionedConcurrency {wanted} must be between 1 and "
                           f"MaxConcurrency ({max_conc}).")
        new = {**desired, "MaxConcurrency": max_conc}
        if wanted is not None:
            new["ProvisionedConcurrency"] = wanted
        return {"now": {"DesiredServerlessConfig": new, "CurrentServerlessConfig": current},
                "after": {"CurrentServerlessConfig": dict(new)}}

    def update_endpoint(self, request: dict[str, Any], headers: dict[str, str]) -> Answer:
        """UpdateEndpoint (moto has none): deploys another endpoint config; Updating meanwhile."""
        name, config_name = request.get("EndpointName", ""), request.get("EndpointConfigName", "")
        answer = self.moto_json(headers, "SageMaker.DescribeEndpointConfig",
                                {"EndpointConfigName": config_name})
        if answer.status != 200:
            raise ApiError(400, "ValidationException",
                           f"Could not find endpoint configuration \"arn:aws:sagemaker:us-east-1:"
                           f"{ACCOUNT}:endpoint-config/{config_name}\".")
        config = json.loads(answer.body)
        with self.lock:
            endpoint = self._endpoint_view(name, headers)
            self._refuse_in_progress(endpoint)
            record = self._begin_update(name)
            record["next_config"] = config_name
            for variant in config.get("ProductionVariants", []):
                after: dict[str, Any] = {}
                if variant.get("ServerlessConfig"):
                    after["CurrentServerlessConfig"] = dict(variant["ServerlessConfig"])
                    after["DesiredServerlessConfig"] = dict(variant["ServerlessConfig"])
                else:
                    count = variant.get("InitialInstanceCount")
                    after.update(CurrentInstanceCount=count, DesiredInstanceCount=count)
                record["after"][variant["VariantName"]] = after
        return self._json(200, {"EndpointArn": endpoint["EndpointArn"]})

    def describe_endpoint(self, request: dict[str, Any], headers: dict[str, str]) -> Answer | None:
        name = request.get("EndpointName", "")
        with self.lock:
            if name not in self.sm_endpoints:
                return None  # plain moto answer
            return self._json(200, self._endpoint_view(name, headers))

    # SageMaker inference components -----------------------------------------------------------
    def create_component(self, request: dict[str, Any], headers: dict[str, str]) -> Answer:
        name = request.get("InferenceComponentName", "")
        endpoint = self._moto_endpoint(request.get("EndpointName", ""), headers)
        copies = (request.get("RuntimeConfig") or {}).get("CopyCount")
        if not isinstance(copies, int) or copies < 0:
            raise ApiError(400, "ValidationException", "RuntimeConfig.CopyCount is required")
        with self.lock:
            if name in self.components:
                raise ApiError(400, "ValidationException",
                               f"Cannot create already existing inference component \"{name}\".")
            arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:inference-component/{name}"
            now = datetime.now(timezone.utc).timestamp()
            self.components[name] = {
                "InferenceComponentName": name, "InferenceComponentArn": arn,
                "EndpointName": endpoint["EndpointName"], "EndpointArn": endpoint["EndpointArn"],
                "VariantName": request.get("VariantName"), "CreationTime": now,
                "LastModifiedTime": now, "InferenceComponentStatus": "Creating",
                "desired": copies, "current": 0,
                "ready_at": time.monotonic() + self.ready_delay_s, "settle": self._component_ready}
        return self._json(200, {"InferenceComponentArn": arn})

    @staticmethod
    def _component_ready(record: dict[str, Any]) -> None:
        record.update(current=record["desired"], InferenceComponentStatus="InService")

    def _component(self, name: str) -> dict[str, Any]:
        record = self.components.get(name)
        if record is None:
            raise ApiError(400, "ValidationException",
                           f"Could not find inference component \"arn:aws:sagemaker:us-east-1:"
                           f"{ACCOUNT}:inference-component/{name}\".")
        return record

    def describe_component(self, request: dict[str, Any], headers: dict[str, str]) -> Answer:
        with self.lock:
            record = self._component(request.get("InferenceComponentName", ""))
            self._settle(record)
            view = {k: v for k, v in record.items() if k[0].isupper()}
            view["RuntimeConfig"] = {"DesiredCopyCount": record["desired"],
                                     "CurrentCopyCount": record["current"]}
        return self._json(200, view)

    def update_component(self, request: dict[str, Any], headers: dict[str, str]) -> Answer:
        copies = (request.get("DesiredRuntimeConfig") or {}).get("CopyCount")
        with self.lock:
            record = self._component(request.get("InferenceComponentName", ""))
            if not isinstance(copies, int) or copies < 0:
                raise ApiError(400, "ValidationException", "DesiredRuntimeConfig.CopyCount must be >= 0")
            record.update(desired=copies, InferenceComponentStatus="Updating",
                          LastModifiedTime=datetime.now(timezone.utc).timestamp(),
                          ready_at=time.monotonic() + self.ready_delay_s, settle=self._component_ready)
        return self._json(200, {"InferenceComponentArn": record["InferenceComponentArn"]})

    @staticmethod
    def _json(status: int, payload: dict[str, Any]) -> Answer:
        content_type = "application/x-amz-json-1.1"
        return Answer(status, json.dumps(payload).encode(),
                      {"Content-Type": content_type, "x-amzn-RequestId": str(uuid.uuid4())})
