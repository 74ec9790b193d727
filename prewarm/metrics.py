"""Prometheus metrics. The registry is passed in (tests build a fresh one); metrics are
recorded in the daemon process only."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# The failure stages exported at 0 per endpoint (those the alert PrewarmProviderFailures reads;
# all seven stages would add 7 series an endpoint, 70,000 at 10,000 endpoints), and every
# result of prewarm_actions_total.
EXPOSED_STAGES = ("provider", "apply", "guard")  # counted from 0: their alerts see the first failure
ACTION_RESULTS = ("ok", "unchanged", "error", "cancelled")
# Read by contrib/ (the Grafana dashboard, the alert rules) before prewarm exports them: the
# history sources' metrics. Their tests skip a metric named here until it is registered.
PENDING_METRICS = ("prewarm_source_lag_seconds", "prewarm_source_errors_total")


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
        self.observed_requests = Gauge("prewarm_observed_requests_per_minute",
                                       "Actual requests per minute the planner last saw (largest count of the "
                                       "last 5 ingested minutes)", ["endpoint"], registry=registry)
        self.target_cold_rate = Gauge("prewarm_target_cold_start_rate",
                                      "Configured [planner] target_cold_rate (a ceiling)", ["endpoint"],
                                      registry=registry)
        self.actions = Counter("prewarm_actions_total", "Provider actions by result",
                               ["provider", "result"], registry=registry)
        self.provider_latency = Histogram("prewarm_provider_latency_seconds", "Provider call latency",
                                          ["provider", "verb"], registry=registry,
                                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.errors = Counter("prewarm_errors_total", "Failures by stage (store, history, forecast, plan, provider, apply, guard)",
                              ["stage", "endpoint"], registry=registry)
        self.cycle_duration = Histogram("prewarm_cycle_duration_seconds", "Duration of a forecast+plan cycle",
                                        registry=registry, buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
        self.last_success = Gauge("prewarm_last_successful_cycle_timestamp_seconds",
                                  "Unix time of the last cycle in which no endpoint failed (one without history yet is not a failure)", registry=registry)
        self.accuracy = Gauge("prewarm_forecast_accuracy",
                              "Score of the last scored forecast: mase, pinball, coverage_80, coverage_95",
                              ["endpoint", "score"], registry=registry)
        self.leader = Gauge("prewarm_leader", "1 on the daemon that leads, 0 on a standby", registry=registry)
        self.plan_age = Gauge("prewarm_plan_age_seconds", "Age of the plan in force", ["endpoint"],
                              registry=registry)
        # A refresh that keeps failing (or a hung refresh process) shows as a forecast that
        # ages past the refresh interval while plans stay fresh: alert on this, not on plan age.
        self.forecast_age = Gauge("prewarm_forecast_age_seconds",
                                  "Age of the forecast the last plan was made from", ["endpoint"],
                                  registry=registry)
        # Metrics sources (prewarm/sync.py): how far behind the stored history is, and failures.
        self.source_lag = Gauge("prewarm_source_lag_seconds",
                                "Seconds from the end of the last minute synced from the source to now",
                                ["endpoint"], registry=registry)
        self.source_errors = Counter("prewarm_source_errors_total", "Syncs from a metrics source that failed",
                                     ["endpoint", "source"], registry=registry)
        # The static guard (prewarm.static_guard): is the plan held at last week's best static
        # setting (its judgement found the plan alone worse there), and at what floor.
        self.static_guarded = Gauge("prewarm_static_guard_guarded",
                                    "1 while the plan is held at or above last week's best static setting "
                                    "(the static guard), 0 while it runs alone", ["endpoint"], registry=registry)
        self.static_floor = Gauge("prewarm_static_guard_floor_workers",
                                  "Always-on floor the static guard holds the plan at (0: none)", ["endpoint"],
                                  registry=registry)
        self.refresh_in_flight = Gauge("prewarm_refresh_in_flight",
                                       "Endpoints whose forecast refresh is running in a refresh process",
                                       registry=registry)

    def expose(self, endpoints: Iterable[tuple[str, str, float]]) -> None:
        """Export the configured endpoints' series before anything happens to them:
        (name, provider kind, target cold-start rate). A counter that first appears at 1 is
        invisible to rate() and increase(), so the first failure would raise no alert;
        initialised at 0, it is seen. Called at leading and at every reload."""
        for name, kind, target in endpoints:
            self.target_cold_rate.labels(name).set(target)
            for stage in EXPOSED_STAGES:
                self.errors.labels(stage, name)
            for result in ACTION_RESULTS:
                self.actions.labels(kind, result)


def series_names() -> set[str]:
    """Every series name prewarm exports (counters with _total, histograms with _bucket,
    _count and _sum): what contrib/'s dashboard and alert rules may read."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


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
    """Named beats, each with its own limit; /healthz fails when any expected beat is older
    than its limit. The daemon's jobs beat (reconcile, cycle), not the loop that serves
    /healthz, so a stuck job is seen even while the process answers."""

    def __init__(self, stale_after: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.limits: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._lock = threading.Lock()
        if stale_after is not None:
            self.expect("loop", stale_after)

    def expect(self, name: str, limit_s: float) -> None:
        """From now on, `name` must beat at least every `limit_s` seconds."""
        with self._lock:
            self.limits[name] = limit_s
            self.last.setdefault(name, self.clock())

    def forget(self, name: str) -> None:
        with self._lock:
            self.limits.pop(name, None)
            self.last.pop(name, None)

    def beat(self, name: str = "loop") -> None:
        with self._lock:
            self.last[name] = self.clock()

    def check(self) -> tuple[bool, str]:
        now = self.clock()
        with self._lock:
            ages = {name: now - self.last.get(name, now) for name in self.limits}
            stuck = [f"{name}: last beat {age:.0f}s ago (limit {self.limits[name]:.0f}s)"
                     for name, age in sorted(ages.items()) if age > self.limits[name]]
        if stuck:
            return False, "loop stuck: " + "; ".join(stuck)
        return True, "ok: " + ", ".join(f"{n} {a:.0f}s ago" for n, a in sorted(ages.items()))
