"""contrib/grafana/prewarm.json for real: a Prometheus server (Debian's `prometheus`, on
127.0.0.1, 1 s scrapes, the alert rules loaded) scrapes a running `prewarm run` (dry-run
provider, SQLite), and every PromQL expression of the dashboard, with $endpoint set, returns
data; the endpoint variable lists the endpoint. The file is what contrib/grafana/build.py
(grafana-foundation-sdk) prints."""
from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from daemon_helpers import REPO, free_port, spawn, wait_for
from demo_endpoints import endpoints_toml
from prewarm.demo import daily_rate
from prewarm.metrics import PENDING_METRICS, series_names
from prewarm.store import CountRow, Store

DASHBOARD = REPO / "contrib" / "grafana" / "prewarm.json"
RULES = REPO / "contrib" / "prometheus" / "prewarm-rules.yml"
ENDPOINT = "chat"
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval is at a 1 s scrape and a short range

CONFIG = """
[store]
url = "{url}"
[daemon]
cycle_interval = "3s"
reconcile_interval = "1s"
leader_takeover = "3s"
[metrics]
address = "127.0.0.1:{port}"
[forecast]
history = "3d"
horizon = "1h"
"""


SOURCE = '[source]\nkind = "prometheus"\nurl = "http://127.0.0.1:{port}"\n'
ENDPOINT_SOURCE = "[endpoints.source]\nquery = 'sum(increase(prewarm_provider_latency_seconds_count[1m]))'\n"


def source_errors(port: int) -> float:
    """prewarm_source_errors_total of the endpoint, from the daemon's /metrics (0 before it answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("prewarm_source_errors_total{") and f'endpoint="{ENDPOINT}"' in line)


def build_module():
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "contrib" / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expressions(board: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(board["panels"])
    return found


def test_the_dashboard_is_what_the_sdk_builds():
    assert DASHBOARD.read_text() == build_module().render(), \
        "run: python contrib/grafana/build.py > contrib/grafana/prewarm.json"


def test_the_dashboard_is_importable():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    names = {v["name"]: v for v in board["templating"]["list"]}
    assert names["endpoint"]["query"] == "label_values(prewarm_planned_warm_workers, endpoint)"
    assert names["datasource"]["type"] == "datasource" and names["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{p['title']}: off the 24-column grid"
        cell = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cell & cells, f"{p['title']} overlaps another panel"
        cells |= cell
        if p["type"] != "row":
            refs = [t["refId"] for t in p["targets"]]
            assert refs and all(refs) and len(refs) == len(set(refs)), f"{p['title']}: refIds"
            assert p["datasource"]["uid"] == "${datasource}"
    used = set(re.findall(r"\bprewarm_[a-z0-9_]+", "\n".join(expressions(board))))
    missing = used - series_names() - set(PENDING_METRICS)
    assert not missing, f"the dashboard reads metrics prewarm does not export: {sorted(missing)}"


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def finite(self, expr: str) -> list[dict]:
        """The series of an instant query that carry a number (NaN is no data)."""
        return [r for r in self.get("/api/v1/query", query=expr)["result"] if math.isfinite(float(r["value"][1]))]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def seed(store: Store, now: datetime) -> None:
    """Two days of the demo's daily shape with cold starts reported, up to now, and a forecast
    snapshot whose horizon has passed (a new daemon scores it in its first cycle)."""
    first = now.replace(second=0, microsecond=0) - timedelta(days=2)
    rows = [CountRow(ENDPOINT, t, round(daily_rate(t)) + 2, cold_starts=int(m % 10 == 0))
            for m in range(2 * 1440) for t in [first + timedelta(minutes=m)]]
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id(ENDPOINT), rows)
    issued = first + timedelta(days=1)
    store.save_forecast(ENDPOINT, issued, "seasonal-mean", 60, [
        {"ds": issued + timedelta(minutes=i), "mean": 10.0, "lo-80": 5.0, "hi-80": 15.0, "lo-95": 2.0, "hi-95": 20.0}
        for i in range(60)])


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path, procs):
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("prometheus is not installed (Debian package `prometheus`; .ci/run installs it)")
    url = f"sqlite:///{tmp_path / 'prewarm.db'}"
    store = Store(url)
    seed(store, datetime.now(timezone.utc))
    store.close()
    metrics_port, prom_port = free_port(), free_port()
    have = series_names()
    pending = {m for m in PENDING_METRICS if m not in have}
    cfg = tmp_path / "prewarm.toml"
    text = CONFIG.format(url=url, port=metrics_port) + endpoints_toml([ENDPOINT])
    if not pending:
        # With history sources (prewarm/sync.py): the endpoint also reads the test's Prometheus,
        # its query the daemon's own provider reads per minute. The daemon starts first, so its
        # first syncs fail (a real source error) and the later ones succeed (a lag).
        text = SOURCE.format(port=prom_port) + text + ENDPOINT_SOURCE
    cfg.write_text(text)
    procs.append(spawn(cfg, "run", log=tmp_path / "daemon.log"))
    if not pending:
        wait_for(lambda: source_errors(metrics_port) > 0, 120, poll=0.2, what="a failed sync before prometheus runs")
    (tmp_path / "prometheus.yml").write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "prewarm", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen([exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT)
    procs.append(prom)
    api = Prometheus(f"http://127.0.0.1:{prom_port}")
    wait_for(lambda: ready(f"{api.base}/-/ready"), 60, poll=0.2, what="prometheus to be ready")
    wait_for(lambda: api.finite('up{job="prewarm"} == 1'), 60, poll=0.5, what="prometheus to scrape the daemon")
    # The rules file loads in a real server too.
    groups = api.get("/api/v1/rules")["groups"]
    assert [g["name"] for g in groups] == ["prewarm"] and len(groups[0]["rules"]) == 7

    board = json.loads(DASHBOARD.read_text())
    wait_for(lambda: ENDPOINT in api.get("/api/v1/label/endpoint/values",
                                         **{"match[]": "prewarm_planned_warm_workers"}),
             180, poll=0.5, what="the endpoint variable's values")
    checked, skipped = [], []
    for expr in expressions(board):
        if any(m in expr for m in pending):
            skipped.append(expr)  # the history sources' metrics: checked once prewarm registers them
            continue
        query = expr.replace("$endpoint", ENDPOINT).replace("$__rate_interval", RATE_INTERVAL)
        wait_for(lambda q=query: api.finite(q), 180, poll=0.5, what=f"data for {query}")
        checked.append(expr)
    print(f"{len(checked)} dashboard queries returned data; waiting for metrics to exist: {skipped}")
    assert len(checked) >= 20
    # The numbers are this daemon's: the forecast band is a band, the provider holds the plan.
    band = {r["metric"]["band"]: float(r["value"][1]) for r in api.finite(
        f'prewarm_forecast_requests_per_minute{{endpoint="{ENDPOINT}"}}')}
    assert band["lo-80"] <= band["mean"] <= band["hi-80"]
    wait_for(lambda: api.finite(f'prewarm_provider_desired_workers{{endpoint="{ENDPOINT}"}} '
                                f'== prewarm_planned_warm_workers{{endpoint="{ENDPOINT}"}}'),
             60, poll=0.5, what="the provider to hold the planned target")
