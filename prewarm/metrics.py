"""Prometheus metrics. The registry is passed in (tests build a fresh one); metrics are
recorded in the daemon process only."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.forecast = Gauge("prewarm_forecast_requests_per_minute",
                              "Forecast demand for the next step, by band", ["endpoint", "band"], registry=registry)
        self.planned = Gauge("prewarm_planned_warm_workers", "Warm workers the plan wants now",
                             ["endpoint"], registry=registry)
        self.actual = Gauge("prewarm_actual_warm_workers", "Warm workers the provider reports (ready)",
                            ["endpoint"], registry=registry)
        self.desired = Gauge("prewarm_provider_desired_workers", "Warm target the provider holds",
                             ["endpoint"], registry=registry)
        self.cold_rate = Gauge("prewarm_observed_cold_start_rate",
                               "Share of requests that waited over 2 s (rolling window, from ingested counts)",
                               ["endpoint"], registry=registry)
        self.actions = Counter("prewarm_actions_total", "Provider actions by result",
                               ["provider", "result"], registry=registry)
        self.provider_latency = Histogram("prewarm_provider_latency_seconds", "Provider call latency",
                                          ["provider", "verb"], registry=registry,
                                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.errors = Counter("prewarm_errors_total", "Failures by stage (history, forecast, plan, provider)",
                              ["stage", "endpoint"], registry=registry)
        self.cycle_duration = Histogram("prewarm_cycle_duration_seconds", "Duration of a forecast+plan cycle",
                                        registry=registry, buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
        self.last_success = Gauge("prewarm_last_successful_cycle_timestamp_seconds",
                                  "Unix time of the last cycle that planned every endpoint", registry=registry)
        self.leader = Gauge("prewarm_leader", "1 on the daemon that leads, 0 on a standby", registry=registry)
        self.plan_age = Gauge("prewarm_plan_age_seconds", "Age of the plan in force", ["endpoint"],
                              registry=registry)


class MetricsServer:
    """/metrics and /healthz on one port. /healthz fails (503) when `healthy()` is False."""

    def __init__(self, metrics: Metrics, address: str, healthy: Callable[[], tuple[bool, str]]) -> None:
        host, _, port = address.rpartition(":")
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                if self.path.startswith("/metrics"):
                    body, ctype, code = generate_latest(registry), CONTENT_TYPE_LATEST, 200
                elif self.path.startswith("/healthz"):
                    ok, why = healthy()
                    body, ctype, code = (why + "\n").encode(), "text/plain", 200 if ok else 503
                else:
                    body, ctype, code = b"see /metrics and /healthz\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the access log out of stderr
                pass

        self.httpd = ThreadingHTTPServer((host, int(port)), Handler)
        self.address = f"{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    def start(self) -> "MetricsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Heartbeat:
    """The loop beats; /healthz fails when the last beat is older than `stale_after` s."""

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()

    def check(self) -> tuple[bool, str]:
        age = self.clock() - self.last
        if age > self.stale_after:
            return False, f"loop stuck: last beat {age:.0f}s ago (limit {self.stale_after:.0f}s)"
        return True, f"ok: last beat {age:.0f}s ago"
