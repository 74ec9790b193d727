"""Forecasters are found through the `prewarm.forecasters` entry point group and imported
only when used (statsforecast costs about 2 s to import)."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .base import Forecaster

GROUP = "prewarm.forecasters"


class UnknownForecaster(LookupError):
    pass


@lru_cache(maxsize=1)
def available() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def create(name: str, **params: Any) -> Forecaster:
    eps = available()
    if name not in eps:
        raise UnknownForecaster(f"unknown forecaster {name!r} (installed: {', '.join(sorted(eps))})")
    return eps[name].load()(**params)
