"""A local HTTP front before moto for CloudWatch's GetMetricData, doing what moto 5.2 does not
and the API reference says CloudWatch does; every other request goes to moto unchanged.

- At most 500 MetricDataQuery structures a call: more is refused (400, ValidationError),
  as the API reference's "as many as 500" limit.
- Paging: a call returns at most MaxDatapoints data points (default 100,800, the API's
  figure; `max_datapoints` lowers it so a test pages without 100,000 points), the queries cut
  short with StatusCode PartialData, and a NextToken that the next call must send back (an
  unknown token is refused: InvalidNextToken).

moto answers the whole call; the front slices its answer. Requests come in the protocol botocore
resolves for CloudWatch: awsJson1_0 (X-Amz-Target) with this botocore, Smithy RPC v2 CBOR
(/operation/GetMetricData) with newer ones; both are handled.
"""
from __future__ import annotations

import http.client
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.core import cbor

class _Codec:
    def __init__(self, dumps, loads, headers: dict[str, str]) -> None:
        self.dumps, self.loads, self.headers = dumps, loads, headers


CBOR = _Codec(cbor.dumps, cbor.loads, {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
JSON = _Codec(lambda v: json.dumps(v).encode(), json.loads, {"Content-Type": "application/x-amz-json-1.0"})
API_MAX_DATAPOINTS = 100_800
API_MAX_QUERIES = 500
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class CloudWatchFront:
    def __init__(self, moto_host: str, moto_port: int) -> None:
        self.moto = (moto_host, moto_port)
        self.max_datapoints = API_MAX_DATAPOINTS
        self.calls: list[dict[str, Any]] = []  # GetMetricData calls: queries, token, datapoints
        self.fail_next: list[tuple[int, str, str]] = []  # (status, code, message) for the next calls
        self.tokens: dict[str, tuple[int, dict]] = {}  # token -> (offset, moto's whole answer)
        self.lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
                if self.path.endswith("/operation/GetMetricData"):
                    status, out_headers, out = front.get_metric_data(self.path, headers, body, CBOR)
                elif target.endswith(".GetMetricData"):
                    status, out_headers, out = front.get_metric_data(self.path, headers, body, JSON)
                else:
                    status, out_headers, out = front.forward("POST", self.path, headers, body)
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        conn = http.client.HTTPConnection(*self.moto, timeout=60)
        try:
            conn.request(method, path, body=body, headers={k: v for k, v in headers.items() if k.lower() not in HOP})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k: v for k, v in resp.getheaders() if k.lower() not in HOP}, data
        finally:
            conn.close()

    @staticmethod
    def error(codec, status: int, code: str, message: str):
        body = codec.dumps({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message})
        return status, {**codec.headers, "x-amzn-query-error": f"{code};Sender"}, body

    def get_metric_data(self, path: str, headers: dict[str, str], body: bytes, codec):
        request = codec.loads(body) if body else {}
        queries = request.get("MetricDataQueries") or []
        token = request.pop("NextToken", None)
        limit = min(int(request.pop("MaxDatapoints", None) or API_MAX_DATAPOINTS), self.max_datapoints)
        with self.lock:
            if self.fail_next:
                return self.error(codec, *self.fail_next.pop(0))
            if len(queries) > API_MAX_QUERIES:
                return self.error(codec, 400, "ValidationError",
                                  f"1 validation error detected: Value at 'metricDataQueries' failed to satisfy "
                                  f"constraint: Member must have length less than or equal to {API_MAX_QUERIES}")
            if token is not None and token not in self.tokens:
                return self.error(codec, 400, "InvalidNextToken", "The service couldn't process the NextToken.")
            offset, whole = self.tokens.pop(token) if token is not None else (0, None)
        out_headers = dict(codec.headers)
        if whole is None:  # moto answers the whole call once; later pages are slices of it
            status, out_headers, data = self.forward("POST", path, headers, codec.dumps(request))
            if status != 200:
                return status, out_headers, data
            whole = codec.loads(data)
        answer = dict(whole)
        results = whole.get("MetricDataResults") or []
        total = sum(len(r.get("Timestamps") or []) for r in results)
        page, seen = [], 0
        for r in results:
            ts, vals = list(r.get("Timestamps") or []), list(r.get("Values") or [])
            lo = min(max(offset - seen, 0), len(ts))
            hi = min(max(offset + limit - seen, 0), len(ts))
            seen += len(ts)
            page.append({**r, "Timestamps": ts[lo:hi], "Values": vals[lo:hi],
                         "StatusCode": "PartialData" if hi < len(ts) else "Complete"})
        answer["MetricDataResults"] = page
        answer.pop("NextToken", None)
        if offset + limit < total:
            new = uuid.uuid4().hex
            with self.lock:
                self.tokens[new] = (offset + limit, whole)
            answer["NextToken"] = new
        with self.lock:
            self.calls.append({"queries": len(queries), "token": token is not None,
                               "datapoints": min(limit, max(total - offset, 0))})
        return 200, out_headers, codec.dumps(answer)
