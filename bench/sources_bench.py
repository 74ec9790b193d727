"""Metrics sources at fleet scale: N endpoints (default 1,000) fed from one real Prometheus.

1. Data: 14 days of a counter per endpoint (`requests_total{endpoint="e0001"}`, a sample every
   30 s, a daily peak), written as OpenMetrics and loaded into a fresh Prometheus data
   directory with `promtool tsdb create-blocks-from openmetrics` (done once per --workdir).
2. Backfill: `prewarm sync` of every endpoint on first sight, 14 days each (two query_range
   pages of a week at a 60 s step) into an SQLite store (or --url). Target: < 5 minutes.
3. Every minute: the syncs that follow (each endpoint reads its revise window again, 10
   minutes, plus the new minute), `--minutes` of them, one simulated minute apart. Target:
   < 10 s of CPU a sync for 1,000 endpoints.

CPU is the prewarm process's (all threads); Prometheus's own CPU is reported apart.

    nice -n 10 .venv/bin/python bench/sources_bench.py [--endpoints 1000] [--days 14] [--minutes 3]
        [--workdir /tmp/prewarm-sources-bench] [--url sqlite:///...]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sources"))
from promtest import free_port, wait_for  # noqa: E402  (the tests' Prometheus helpers)

STEP_S = 30


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate(workdir: Path, n: int, days: int, end: datetime) -> dict:
    """OpenMetrics for n counters over `days` to `end`; then promtool builds TSDB blocks."""
    import numpy as np

    data = workdir / "data"
    marker = workdir / "generated.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta["n"] == n and meta["days"] == days:
            return meta
    shutil.rmtree(data, ignore_errors=True)
    started = time.monotonic()
    t_end = int(end.timestamp()) // 60 * 60
    t_start = t_end - days * 86400
    times = np.arange(t_start, t_end, STEP_S)
    hours = (times % 86400) / 3600.0
    rng = np.random.default_rng(7)
    om = workdir / "data.om"
    with open(om, "w") as f:
        f.write("# HELP requests Requests served.\n# TYPE requests counter\n")
        for i in range(n):
            peak, hour, width = rng.uniform(1, 300), rng.uniform(6, 20), rng.uniform(0.5, 3)
            rate_per_step = (peak * np.exp(-((hours - hour) / width) ** 2) + 1.0) * STEP_S / 60
            counts = rng.poisson(rate_per_step)
            values = np.cumsum(counts)
            label = f'requests_total{{endpoint="e{i:04d}"}} '
            f.write("".join(f"{label}{v} {t}\n" for v, t in zip(values.tolist(), times.tolist())))
        f.write("# EOF\n")
    generated_s = time.monotonic() - started
    started = time.monotonic()
    subprocess.run([shutil.which("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                    "--max-block-duration=360h", str(om), str(data)], check=True, stdout=subprocess.DEVNULL)
    blocks_s = time.monotonic() - started
    om.unlink()
    meta = {"n": n, "days": days, "start": t_start, "end": t_end, "samples": int(n * len(times)),
            "generate_s": round(generated_s, 1), "promtool_s": round(blocks_s, 1)}
    marker.write_text(json.dumps(meta))
    return meta


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = workdir / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        log = open(workdir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
             "--log.level=warn"], stdout=log, stderr=log, start_new_session=True)
        import httpx

        def ready():
            try:
                return httpx.get(self.url + "/-/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(ready, "prometheus", timeout_s=600)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)


def write_config(workdir: Path, url: str, store_url: str, n: int, days: int) -> Path:
    lines = [f'[store]\nurl = "{store_url}"\n', f'[forecast]\nhistory = "{days}d"\n',
             f'[source]\nkind = "prometheus"\nurl = "{url}"\ntimeout = "60s"\n']
    for i in range(n):
        lines.append(f'[[endpoints]]\nname = "e{i:04d}"\n[endpoints.source]\n'
                     f"query = 'sum(increase(requests_total{{endpoint=\"e{i:04d}\"}}[1m]))'\n")
    path = workdir / "prewarm.toml"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--minutes", type=int, default=3, help="per-minute syncs to time after the backfill")
    ap.add_argument("--workdir", default="/tmp/prewarm-sources-bench")
    ap.add_argument("--url", help="store URL (default: a fresh SQLite file in the workdir)")
    args = ap.parse_args()

    from prewarm import config
    from prewarm.store import Store
    from prewarm.sync import Syncer

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    meta = generate(workdir, args.endpoints, args.days, datetime.now(timezone.utc))
    print(json.dumps({"data": meta}))
    end = datetime.fromtimestamp(meta["end"], timezone.utc)
    server = Server(workdir)
    db = workdir / "prewarm.db"
    if args.url is None:
        db.unlink(missing_ok=True)
    store_url = args.url or f"sqlite:///{db}"
    try:
        settings = config.load(write_config(workdir, server.url, store_url, args.endpoints, args.days))
        store = Store(store_url)
        syncer = Syncer(settings, store)
        # "now" is the end of the generated data plus the source's delay: the backfill reads
        # [end - days, end), exactly the generated span.
        now = end + timedelta(seconds=60)
        cpu0, wall0, prom0 = time.process_time(), time.monotonic(), server.cpu_s()
        results = syncer.run(now)
        backfill = {"endpoints": len(results), "errors": sum(1 for r in results.values() if r.error),
                    "rows": sum(r.inserted for r in results.values()),
                    "wall_s": round(time.monotonic() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1),
                    "prometheus_cpu_s": round(server.cpu_s() - prom0, 1), "rss_mb": round(rss_mb())}
        print(json.dumps({"backfill": backfill}))
        for k in range(1, args.minutes + 1):
            cpu0, wall0, prom0 = time.process_time(), time.monotonic(), server.cpu_s()
            results = syncer.run(now + timedelta(minutes=k))
            print(json.dumps({"minute": {
                "k": k, "endpoints": len(results), "errors": sum(1 for r in results.values() if r.error),
                "minutes_read": sum(int((r.end - r.start).total_seconds() // 60) for r in results.values()),
                "wall_s": round(time.monotonic() - wall0, 2), "cpu_s": round(time.process_time() - cpu0, 2),
                "prometheus_cpu_s": round(server.cpu_s() - prom0, 2), "rss_mb": round(rss_mb())}}))
        syncer.close()
        store.close()
    finally:
        server.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"peak_rss_mb": round(usage.ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
