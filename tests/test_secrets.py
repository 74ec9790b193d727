"""Secrets never show: not in command output, not in config errors, not in logs."""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy.engine import make_url

from prewarm import redact
from prewarm.logs import setup_logging

from .test_cli import run

PASSWORD = "S3cr3t@db/x!"  # an @ and a / that a URL parser splits on


@pytest.fixture(autouse=True)
def _fresh():
    redact.forget_all()
    yield
    redact.forget_all()


def shown(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("text, expected", [
    ("postgresql://app:S3cr3t@db:5432/prewarm", "postgresql://app:***@db:5432/prewarm"),
    (f"got 'postgresql://app:{PASSWORD}@db.internal/prewarm')", "got 'postgresql://app:***@db.internal/prewarm')"),
    ("mysql+pymysql://reader:p%40ss@metrics/app and more", "mysql+pymysql://reader:***@metrics/app and more"),
    ("postgresql://app@db/prewarm http://host:8080/x sqlite:///prewarm.db",
     "postgresql://app@db/prewarm http://host:8080/x sqlite:///prewarm.db"),
])
def test_redact_masks_every_url_password_whole(text, expected):
    assert redact.redact(text) == expected


def test_url_renders_one_url_without_its_password():
    assert redact.url("postgresql://app:S3cr3t@db/prewarm") == "postgresql://app:***@db/prewarm"
    assert redact.url(f"postgresql://app:{PASSWORD}@db/prewarm") == "postgresql://app:***@db/prewarm"
    assert redact.url("sqlite:///prewarm.db") == "sqlite:///prewarm.db"


def test_init_prints_the_store_url_without_its_password(tmp_path, pg_url):
    url = make_url(pg_url).set(password="InitPw99").render_as_string(hide_password=False)  # trust auth ignores it
    upgrade = run("--db", url, "db", "upgrade", cwd=tmp_path, check=0)
    proc = run("--db", url, "init", cwd=tmp_path, check=0)
    assert "InitPw99" not in shown(upgrade) + shown(proc) and ":***@" in proc.stdout


@pytest.mark.parametrize("text, key", [
    ('[store]\nulr = "postgresql://postgres:${PGPASSWORD}@127.0.0.1/prewarm"\n', "store.ulr"),
    ('[[endpoints]]\nname = "chat"\n[endpoints.provider]\nkind = "dry-run"\ninitial = "${RUNPOD_API_KEY}"\n',
     "provider.initial"),
])
def test_a_config_error_never_echoes_an_expanded_secret(tmp_path, text, key):
    (tmp_path / "prewarm.toml").write_text(text)
    proc = run("plan", cwd=tmp_path, check=2, env={"PGPASSWORD": PASSWORD, "RUNPOD_API_KEY": "rp_tok_123456"})
    out = shown(proc)
    assert key in out and "(got '" in out, out
    for part in (PASSWORD, "S3cr3t", "db/x!", "rp_tok_123456"):
        assert part not in out, out


def test_a_bad_db_option_is_refused_without_its_password(tmp_path):
    proc = run("--db", f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/none", "once", cwd=tmp_path)
    assert proc.returncode in (1, 2) and all(p not in shown(proc) for p in ("S3cr3t", "db/x!")), shown(proc)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_mask_url_passwords_and_remembered_secrets(capsys, fmt):
    token = 'Qz"8\\kk'  # a quote and a backslash: escaped in JSON, so masked before encoding
    redact.remember(token)
    setup_logging("info", fmt)
    log = logging.getLogger("prewarm.test")
    log.warning("cannot reach %s", f"postgresql://app:{PASSWORD}@db/prewarm")
    try:
        raise RuntimeError(f"provider said: bad token {token}")
    except RuntimeError:
        log.exception("apply failed")
    err = capsys.readouterr().err
    for part in ("S3cr3t", "db/x!", token, json.dumps(token)[1:-1], "Qz"):
        assert part not in err, err
    assert "postgresql://app:***@db/prewarm" in err and "bad token ***" in err
    if fmt == "json":
        assert [json.loads(line)["level"] for line in err.splitlines()] == ["warning", "error"]


def test_a_provider_token_named_by_an_env_key_is_masked_in_table_and_json_output(tmp_path, capsys):
    from prewarm import config
    from prewarm.cli.output import emit_json, table

    token = 'rp_"Tok\\en_42'
    path = tmp_path / "prewarm.toml"
    path.write_text('[[endpoints]]\nname = "chat"\n[endpoints.provider]\nkind = "runpod"\nendpoint_id = "abc123"\n')
    config.load(path, env={"RUNPOD_API_KEY": token})  # the provider's default api_token_env
    emit_json({"error": f"401: bad key {token}"})
    table([["chat", f"401: bad key {token}"]], ["endpoint", "error"])
    out = capsys.readouterr().out
    assert "Tok" not in out and out.count("bad key ***") == 2, out


def test_the_report_page_masks_secrets_in_stored_errors():
    """`prewarm report` shows errors the store kept (a provider's, a judgement's): a URL's
    password and a remembered secret are masked there as in every other output."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from prewarm.report.data import GuardState
    from prewarm.report.html import actions_table, guard_section

    token = "tok-4f9a1c"
    redact.remember(token)
    at = datetime(2026, 3, 2, 1, tzinfo=timezone.utc)
    report = SimpleNamespace(
        start=datetime(2026, 3, 2, tzinfo=timezone.utc), end=datetime(2026, 3, 3, tzinfo=timezone.utc),
        actions=[{"ts": at, "verb": "apply", "requested": {"target": 2, "previous": 1}, "result": "error",
                  "error": f"403 from https://api.example/v1?token={token}"}],
        guard=GuardState("auto", [], None, failed_at=at, error=f"history: postgresql://app:{PASSWORD}@db/prewarm"))
    page = actions_table(report) + guard_section(report)
    assert token not in page and "S3cr3t" not in page
    assert "token=***" in page and "postgresql://app:***@db/prewarm" in page


def test_every_command_prints_through_the_redacting_echo():
    """The CLI's modules print only through prewarm.cli.output.echo (which masks secrets), never
    click.echo directly: a provider's or a source's error printed on a new path stays masked."""
    from pathlib import Path

    import prewarm.cli as cli_pkg

    offenders = [f"{p.name}:{n}" for p in sorted(Path(cli_pkg.__file__).parent.glob("*.py")) if p.name != "output.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if "click.echo" in line or "click.secho" in line]
    assert not offenders, f"print with prewarm.cli.output.echo: {offenders}"


def test_explain_masks_a_provider_token_in_the_last_action(tmp_path, monkeypatch):
    """End to end: the audit log keeps a provider's error as the provider gave it; `prewarm
    explain` prints it with the token the config named masked."""
    from datetime import datetime, timedelta, timezone

    from click.testing import CliRunner

    from prewarm.cli.main import cli
    from prewarm.store import Store

    token = "rp-Secret-Token-77"
    monkeypatch.setenv("RUNPOD_API_KEY", token)  # the runpod provider's default api_token_env
    url = f"sqlite:///{tmp_path / 'p.db'}"
    cfg = tmp_path / "prewarm.toml"
    cfg.write_text(f'[store]\nurl = "{url}"\n[[endpoints]]\nname = "chat"\n[endpoints.provider]\nkind = "runpod"\n'
                   'endpoint_id = "abc123"\n')
    t0 = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)
    store = Store(url)
    store.save_plan("chat", t0, t0 + timedelta(hours=1), "m", [{"at": t0, "warm_workers": 2, "reason": {"why": "forecast"}}])
    store.record_action("chat", ts=t0, provider="runpod", verb="apply", requested={"target": 2, "previous": 1},
                        result="error", error=f"401 Unauthorized: Authorization: Bearer {token}")
    store.close()
    done = CliRunner().invoke(cli, ["--config", str(cfg), "explain", "chat", "--at", "2026-03-02T08:01:00Z"],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "last action: apply to 2" in done.output and "Bearer ***" in done.output
    assert token not in done.output and "Secret-Token" not in done.output
