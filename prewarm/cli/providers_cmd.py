"""`prewarm providers list`."""
from __future__ import annotations

import sys

import click

from .output import emit_json, json_option


@click.group()
def providers() -> None:
    """Installed providers."""


@providers.command("list")
@json_option
def list_providers(as_json: bool) -> None:
    """List installed providers, their config keys and capabilities."""
    from ..providers import registry
    from ..providers.base import EndpointRef

    doc = []
    for name, ep in sorted(registry.available().items()):
        item = {"kind": name, "module": ep.value}
        try:
            cls = ep.load()
            item["keys"] = cls.config_keys()
            item["capabilities"] = _capabilities(cls, name, EndpointRef("example"))
            item["doc"] = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n")[0]
        except Exception as exc:  # noqa: BLE001 - a broken plugin is listed with its error
            item["error"] = f"{type(exc).__name__}: {exc}"
        doc.append(item)
    if as_json:
        emit_json(doc)
        return
    for item in doc:
        click.echo(f"{item['kind']}  ({item['module']})")
        if "error" in item:
            click.echo(f"  cannot load: {item['error']}")
            continue
        if item.get("doc"):
            click.echo(f"  {item['doc']}")
        for key, desc in item["keys"].items():
            click.echo(f"  {key}: {desc}")
        if item["capabilities"]:
            caps = ", ".join(f"{k}={v}" for k, v in item["capabilities"].items() if v not in (None, ""))
            click.echo(f"  capabilities: {caps}")


def _capabilities(cls, name: str, ref) -> dict:
    """Capabilities of a provider built with its defaults (placeholders for required keys,
    no network call is made). Empty where the provider cannot be built that way."""
    from dataclasses import asdict
    try:
        required = {k: "example" for k, f in cls.Config.model_fields.items() if f.is_required()}
        config = cls.Config.model_construct(**{**required, "kind": name})
        provider = cls(config, ref)
        try:
            return asdict(provider.capabilities())
        finally:
            provider.close()
    except Exception:  # noqa: BLE001 - capabilities that need a live config are not listed
        return {}
