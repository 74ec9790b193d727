"""Dry-run endpoints on generated demo traffic: the cycle tests plan one (chat), the refresh-pool
tests three. One endpoint block and one way to fill the store, so both plan the same thing."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prewarm.demo import generate
from prewarm.ingest import ingest_file

START = datetime(2026, 11, 23, tzinfo=timezone.utc)  # the demo traffic's first day

ENDPOINT = """
[[endpoints]]
name = "{name}"
[endpoints.capacity]
concurrency = 4
service_time = "20s"
cold_start = "10m"
max_workers = 6
[endpoints.provider]
kind = "dry-run"
"""


def endpoints_toml(names) -> str:
    return "".join(ENDPOINT.format(name=name) for name in names)


def ingest_demo_traffic(store, workdir: Path, names, days: int = 4) -> None:
    """`days` of demo traffic from START for each endpoint of `names`."""
    traffic = workdir / "demo-traffic.csv"
    generate(traffic, START, days=days)
    text = traffic.read_text()
    for name in names:
        path = workdir / f"{name}.csv"
        path.write_text(text.replace("demo-chat", name))
        ingest_file(store, path)
