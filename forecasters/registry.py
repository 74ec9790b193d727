"""Forecasters by name, from the `prewarm.forecasters` entry points (third parties add
their own the same way)."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from .base import Forecaster


class UnknownForecaster(ValueError):
    pass


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="prewarm.forecasters")}


def names() -> list[str]:
    return sorted(_entry_points())


def forecaster_class(name: str) -> type[Forecaster]:
    eps = _entry_points()
    if name not in eps:
        raise UnknownForecaster(f"unknown forecaster {name!r} (installed: {', '.join(sorted(eps)) or 'none'})")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Forecaster)):
        raise UnknownForecaster(f"entry point {name!r} is not a Forecaster subclass: {cls!r}")
    return cls


def create(name: str, **params: Any) -> Forecaster:
    try:
        return forecaster_class(name)(**params)
    except TypeError as exc:
        raise UnknownForecaster(f"forecaster {name!r} does not take these parameters: {exc}") from None
