"""Sources are found through the `prewarm.sources` entry point group and imported only when
used, so a missing optional SDK breaks only the source that needs it."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from .base import Source

GROUP = "prewarm.sources"


class UnknownSource(LookupError):
    pass


@lru_cache(maxsize=1)
def available() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_class(kind: Any) -> type[Source]:
    eps = available()
    if not isinstance(kind, str) or kind not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise UnknownSource(f"unknown source kind {kind!r} (installed: {known})")
    cls = eps[kind].load()
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise UnknownSource(f"entry point {kind!r} is not a Source subclass: {cls!r}")
    return cls


def validate_config(raw: dict[str, Any]):
    """Validate a merged source table with the source's own schema. Raises UnknownSource or
    pydantic.ValidationError (locations relative to the source table)."""
    return load_class(raw.get("kind")).Config.model_validate(raw)


def create(raw: dict[str, Any], endpoint: str) -> Source:
    cls = load_class(raw.get("kind"))
    return cls(cls.Config.model_validate(raw), endpoint)


__all__ = ["GROUP", "available", "load_class", "validate_config", "create", "UnknownSource", "ValidationError"]
