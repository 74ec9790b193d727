"""A real Prometheus server (the `prometheus` binary) on 127.0.0.1 scraping a test exporter
in the test process, on simulated time.

The exporter serves its counters with explicit time stamps (the exposition format allows
them; Prometheus honours them by default) and moves its clock `step_s` forward at each
scrape, so a test drives minutes of traffic in seconds and knows, to the second, which
minute each request falls in. Tests wait on events: `wait_scraped(t)` polls the Prometheus
API until the sample stamped `t` is queryable.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

POLL_S = 0.05
TIMEOUT_S = 120.0  # generous: the machine is shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout_s: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


class SimExporter:
    """Counters `test_requests_total` and `test_cold_starts_total` on simulated time. `at(t, ...)`
    schedules an increment (or a reset: the exporting process restarted) at simulated time t;
    each scrape moves the clock `step_s` on, applies what is due, and serves the values
    stamped with the new time."""

    def __init__(self, start: datetime, step_s: int = 2) -> None:
        self.clock = start
        self.step = timedelta(seconds=step_s)
        self.requests = 0
        self.cold = 0
        self.plan: list[tuple[datetime, str, int]] = []
        self.served: list[tuple[datetime, int, int]] = []
        self.limit: datetime | None = None  # the clock stops here (scrapes repeat the last sample)
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = exporter.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def at(self, t: datetime, what: str, n: int = 0) -> None:
        with self.lock:
            self.plan.append((t, what, n))

    def jump(self, seconds: int) -> None:
        """Move the clock without serving (time passing while nobody scrapes)."""
        with self.lock:
            self.clock += timedelta(seconds=seconds)

    def scrape(self) -> str:
        with self.lock:
            if self.limit is None or self.clock + self.step <= self.limit:
                self.clock += self.step
            for item in sorted(p for p in self.plan if p[0] <= self.clock):
                self.plan.remove(item)
                _, what, n = item
                if what == "requests":
                    self.requests += n
                elif what == "cold":
                    self.cold += n
                elif what == "reset":
                    self.requests = self.cold = 0
            self.served.append((self.clock, self.requests, self.cold))
            ms = int(self.clock.timestamp() * 1000)
            return ("# TYPE test_requests_total counter\n"
                    f"test_requests_total {self.requests} {ms}\n"
                    "# TYPE test_cold_starts_total counter\n"
                    f"test_cold_starts_total {self.cold} {ms}\n")

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class PrometheusServer:
    def __init__(self, workdir: Path, targets: list[str], scrape_interval: str = "100ms", *,
                 web_config: str | None = None, ca_file: str | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise RuntimeError("the prometheus binary is not installed (apt-get install prometheus; .ci/run does)")
        self.dir = workdir
        self.data = workdir / "data"
        self.port = free_port()
        self.web_config = None
        if web_config is not None:
            self.web_config = workdir / "web.yml"
            self.web_config.write_text(web_config)
        self.url = f"{'https' if ca_file else 'http'}://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        targets_yaml = ", ".join(f'"{t}"' for t in targets)
        self.config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: test\n"
            "    honor_timestamps: true\n"
            f"    static_configs: [{{targets: [{targets_yaml}]}}]\n")
        self.proc: subprocess.Popen | None = None
        import ssl
        self.client = httpx.Client(timeout=10, verify=ssl.create_default_context(cafile=ca_file), auth=auth)

    def start(self) -> "PrometheusServer":
        log = open(self.dir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
             "--log.level=warn", *([f"--web.config.file={self.web_config}"] if self.web_config else [])],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_for(self._ready, "prometheus to be ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}: "
                                 + (self.dir / "prometheus.log").read_text()[-2000:])
        try:
            return self.client.get(self.url + "/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def query(self, expr: str, at: datetime) -> list:
        r = self.client.get(self.url + "/api/v1/query", params={"query": expr, "time": f"{at.timestamp():.3f}"})
        r.raise_for_status()
        return r.json()["data"]["result"]

    def wait_scraped(self, t: datetime, metric: str = "test_requests_total") -> None:
        """Until the sample stamped t (or later) is queryable."""
        def seen():
            res = self.query(f"timestamp({metric})", t)
            return bool(res) and float(res[0]["value"][1]) >= t.timestamp() - 1e-3
        wait_for(seen, f"prometheus to have {metric} at {t:%H:%M:%S}")

    def close(self) -> None:
        self.stop()
        self.client.close()


def utc_minute(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(second=0, microsecond=0)


def write_config(tmp_path: Path, url: str, query: str, *, shared: str = "", endpoint: str = "",
                 top: str = "") -> Path:
    """A prewarm.toml with one endpoint, chat, fed by the prometheus at `url` (SQLite store)."""
    path = tmp_path / "prewarm.toml"
    path.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'prewarm.db'}"
{top}
[source]
kind = "prometheus"
url = "{url}"
{shared}
[[endpoints]]
name = "chat"
[endpoints.source]
query = '{query}'
{endpoint}
""")
    return path
