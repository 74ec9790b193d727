"""Helpers for the daemon tests: configs, plans, the `faulty` provider's files, processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from waiting import wait_for  # noqa: F401 - the daemon tests import it from here

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "plugin"
REPO = HERE.parents[1]
PREWARM = [sys.executable, "-c", "from prewarm.cli.main import main; main()"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def write_config(path: Path, db_url: str, endpoints: list[dict], *, daemon: dict | None = None,
                 metrics: str | None = None, extra: str = "") -> Path:
    """A prewarm.toml. endpoints: dicts with name, dir (faulty provider), and capacity keys."""
    d = {"cycle_interval": "60s", "reconcile_interval": "30s", "leader_takeover": "3s", **(daemon or {})}
    lines = [f'[store]\nurl = "{db_url}"\n', "[daemon]"]
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in d.items()]
    lines.append(f'\n[metrics]\naddress = "{metrics or "127.0.0.1:9464"}"\nenabled = {"true" if metrics else "false"}\n')
    lines.append(extra)
    for ep in endpoints:
        lines.append(f'[[endpoints]]\nname = "{ep["name"]}"')
        lines.append(f'[endpoints.provider]\nkind = "faulty"\ndir = "{ep["dir"]}"')
        lines.append("[endpoints.capacity]")
        for k in ("max_workers", "min_workers", "cold_start_s", "concurrency", "service_time_s"):
            if k in ep:
                lines.append(f"{k} = {ep[k]}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def seed_plan(store, endpoint: str, issued_at: datetime, steps: list[tuple[datetime, int]],
              why: str = "forecast") -> int:
    return store.save_plan(endpoint, issued_at, issued_at + timedelta(hours=6), "test",
                           [{"at": at, "warm_workers": n, "reason": {"why": why, "need_at": at.isoformat()}}
                            for at, n in steps])


class Faulty:
    """The faulty provider's files, seen from the test."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def target(self, endpoint: str) -> int:
        f = self.dir / f"{endpoint}.state.json"
        return int(json.loads(f.read_text())["target"]) if f.exists() else 0

    def set_target(self, endpoint: str, n: int) -> None:
        (self.dir / f"{endpoint}.state.json").write_text(json.dumps({"target": n}))

    def calls(self, verb: str | None = None, result: str | None = None) -> list[dict]:
        f = self.dir / "calls.jsonl"
        rows = [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
        return [r for r in rows if (verb is None or r["verb"] == verb) and (result is None or r["result"] == result)]

    def changes(self, endpoint: str | None = None) -> list[dict]:
        """Applies that changed the target: what a real provider would have been told to do."""
        return [r for r in self.calls("apply", "done") if r["changed"] and (endpoint is None or r["endpoint"] == endpoint)]

    def control(self, **kw) -> None:
        f = self.dir / "control.json"
        doc = json.loads(f.read_text()) if f.exists() else {}
        doc.update(kw)
        f.write_text(json.dumps(doc))


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN), e.get("PYTHONPATH")]))
    e.pop("NOTIFY_SOCKET", None)
    return e


def spawn(config: Path, *args: str, log: Path, extra_env: dict | None = None, cwd: Path | None = None):
    fh = open(log, "ab")
    return subprocess.Popen([*PREWARM, "--config", str(config), "--log-level", "info", *args],
                            stdout=fh, stderr=subprocess.STDOUT, env={**env(), **(extra_env or {})},
                            cwd=cwd or config.parent)


def fresh_pg(url: str) -> str:
    """Empty the session's PostgreSQL (or MariaDB) test database and bring it to the schema head."""
    from prewarm.store import migrate

    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as c:
        if engine.dialect.name in ("mysql", "mariadb"):
            c.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        meta.drop_all(c)
        c.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate.upgrade(engine)
    engine.dispose()
    return url


def proxied(url: str):
    """A TcpProxy in front of the server database at `url`, and the URL through it."""
    from sqlalchemy.engine import make_url

    from tcpproxy import TcpProxy

    u = make_url(url)
    proxy = TcpProxy(u.host, u.port or (5432 if u.get_backend_name() == "postgresql" else 3306))
    return proxy, u.set(port=proxy.port).render_as_string(hide_password=False)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def actions(store, endpoint: str | None = None) -> list[dict]:
    return store.actions(endpoint)
