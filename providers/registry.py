"""Providers are found through the `prewarm.providers` entry point group and imported only
when used, so a missing optional SDK breaks only the provider that needs it."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from .base import EndpointRef, Provider

GROUP = "prewarm.providers"


class UnknownProvider(LookupError):
    pass


@lru_cache(maxsize=1)
def available() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_class(kind: str) -> type[Provider]:
    eps = available()
    if kind not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise UnknownProvider(f"unknown provider kind {kind!r} (installed: {known})")
    return eps[kind].load()


def validate_config(kind: str, raw: dict[str, Any]):
    """Validate a raw `[endpoints.provider]` table with the provider's own schema.
    Raises pydantic.ValidationError (locations relative to the provider table)."""
    cls = load_class(kind)
    return cls.Config.model_validate(raw)


def create(raw: dict[str, Any], endpoint: EndpointRef) -> Provider:
    kind = raw.get("kind")
    cls = load_class(kind)
    config = cls.Config.model_validate(raw)
    return cls(config, endpoint)


__all__ = ["GROUP", "available", "load_class", "validate_config", "create", "UnknownProvider",
           "ValidationError"]
