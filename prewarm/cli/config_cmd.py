"""`prewarm config check`: validate a config, its plugins and what it must reach, acting on
nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import click

from .common import utcnow
from .output import emit_json, json_option, table


@click.group("config")
def config() -> None:
    """Check the configuration."""


@dataclass
class Check:
    what: str
    target: str
    ok: bool
    detail: str
    bad_input: bool = False  # a config or plugin error (exit 2), not an unreachable service (exit 1)


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: show only its scheme
        return url.split(":", 1)[0] + ":..."


def _store_check(url: str) -> Check:
    import sqlalchemy as sa

    from ..store import make_engine, migrate

    shown = _safe_url(url)
    try:
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 - reported as the check's outcome
        return Check("store", shown, False, f"bad store URL: {type(exc).__name__}", bad_input=True)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    except sa.exc.SQLAlchemyError as exc:
        return Check("store", shown, False, f"cannot reach the database: {getattr(exc, 'orig', exc)}")
    finally:
        engine.dispose()
    if current == head:
        return Check("store", shown, True, f"reachable, schema {current}")
    return Check("store", shown, True, f"reachable, schema {current or 'empty'} (this prewarm needs {head}: "
                                       "created or upgraded at first use, or `prewarm db upgrade`)")


def _forecaster_check(settings, ep) -> Check:
    from ..forecasters import registry

    model = settings.forecast_for(ep).model
    known = registry.names()
    if model in known or model == "auto":
        return Check("forecaster", ep.name, True, model)
    return Check("forecaster", ep.name, False, f"unknown forecaster {model!r} (installed: {', '.join(known)})",
                 bad_input=True)


def _provider_checks(settings, ep, connect: bool) -> list[Check]:
    from ..providers import registry
    from ..providers.base import EndpointRef

    kind = ep.provider.get("kind")
    try:
        provider = registry.create(ep.provider, EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers))
    except registry.UnknownProvider as exc:
        return [Check("provider", ep.name, False, str(exc), bad_input=True)]
    except registry.ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return [Check("provider", ep.name, False, f"{kind}: {errs}", bad_input=True)]
    except ImportError as exc:
        return [Check("provider", ep.name, False, f"{kind}: {exc}", bad_input=True)]
    out = [Check("provider", ep.name, True, f"{kind}: config valid")]
    if connect:
        try:
            state = provider.read()
            out.append(Check("provider reach", ep.name, True,
                             f"{kind}: reachable, desired {state.desired}, ready {state.ready}"))
            # The provider's own look at the resource (Provider.check): a setup that cannot
            # work is an error (the daemon refuses to start on it), one another controller
            # also drives is a warning.
            for finding in provider.check():
                out.append(Check("provider setup", ep.name, finding.level != "error",
                                 f"{kind}: {finding.level}: {finding.message}", bad_input=finding.level == "error"))
        except Exception as exc:  # noqa: BLE001 - the check reports it
            out.append(Check("provider reach", ep.name, False, f"{kind}: {exc}"))
        finally:
            try:
                provider.close()
            except Exception:  # noqa: BLE001 - closing must not hide the outcome
                pass
    return out


def _history_check(ep) -> Check | None:
    if ep.history is None:
        return None
    from ..store.external import fetch_history

    now = utcnow()
    try:
        rows = fetch_history(ep.history.url, ep.history.query, endpoint=ep.name, start=now - timedelta(hours=1),
                             end=now)
    except Exception as exc:  # noqa: BLE001 - the check reports it
        return Check("history", ep.name, False, f"{_safe_url(ep.history.url)}: {type(exc).__name__}: "
                                                f"{getattr(exc, 'orig', exc)}")
    return Check("history", ep.name, True, f"{_safe_url(ep.history.url)}: query answers ({len(rows)} rows "
                                           "in the last hour)")


def run_checks(settings, connect: bool = True) -> list[Check]:
    checks: list[Check] = [Check("config", settings.config_file or "(embedded defaults)", True,
                                 f"valid, {len(settings.endpoints)} endpoint(s)")]
    if connect:
        checks.append(_store_check(settings.store.url))
    for ep in settings.endpoints:
        checks.append(_forecaster_check(settings, ep))
        checks.extend(_provider_checks(settings, ep, connect))
        if connect:
            hist = _history_check(ep)
            if hist is not None:
                checks.append(hist)
    return checks


@config.command()
@click.option("--offline", is_flag=True, help="Only validate: reach neither the store nor the providers.")
@json_option
@click.pass_context
def check(ctx, offline, as_json) -> None:
    """Validate the config without acting: its keys and values, each endpoint's forecaster
    and provider (the provider's own config schema), and, unless --offline, that the store,
    each provider (one read, no change, and the provider's own setup check: the one `prewarm
    run` refuses to start on) and each [endpoints.history] query answer with the configured
    credentials. Exit 0 when all pass, 2 when the config or a plugin is wrong,
    1 when something cannot be reached."""
    settings = ctx.obj.settings  # a config error exits 2 here, naming the key
    checks = run_checks(settings, connect=not offline)
    if as_json:
        emit_json([c.__dict__ for c in checks])
    else:
        table([[c.what, c.target, "ok" if c.ok else "FAIL", " ".join(c.detail.split())] for c in checks],
              ["check", "for", "result", "detail"])
    if any(c.bad_input for c in checks if not c.ok):
        ctx.exit(2)
    if not all(c.ok for c in checks):
        ctx.exit(1)
