"""`prewarm providers list`."""
from __future__ import annotations

import click

from .output import json_option


@click.group()
def providers() -> None:
    """Installed providers."""


@providers.command("list")
@json_option
def list_providers(as_json: bool) -> None:
    """List installed providers, their config keys and capabilities."""
    from ..providers import registry
    from ..providers.base import EndpointRef
    from .plugin_list import list_plugins

    list_plugins(registry.available(), as_json,
                 lambda name, cls: {"capabilities": _capabilities(cls, name, EndpointRef("example"))})


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
