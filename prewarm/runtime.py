"""What a cycle needs and keeps between cycles: settings, the store, providers (created on
first use), metrics, and the runtime caches (forecasts, burstiness, snapshot bookkeeping)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from .config import EndpointSettings, Settings
from .providers import registry as provider_registry
from .providers.base import EndpointRef, Provider
from .store import Store

log = logging.getLogger("prewarm.cycle")


@dataclass
class CachedForecast:
    """A forecast kept in the runtime between refreshes; cycles re-plan from it sliced to now."""
    forecast: Any  # EndpointForecast: demand as arrays, no model frame
    settings: Any  # the ForecastSettings it was made with (a change makes it due)
    made_at: datetime
    due: datetime  # next refresh
    usable_until: datetime  # it covers `horizon` from now until then


class Runtime:
    """What a cycle needs: settings, the store, providers (created on first use), metrics."""

    def __init__(self, settings: Settings, store: Store | None = None, metrics=None) -> None:
        self.settings = settings
        self.store = store or Store(settings.store.url, echo=settings.store.echo)
        self.metrics = metrics
        self.providers: dict[str, Provider] = {}
        self.last_prune: datetime | None = None
        # Kept between cycles (in memory: a new runtime starts from the store and refreshes
        # every forecast at its first cycle): forecasts by endpoint, the last snapshot time,
        # snapshots waiting to be scored, the tuner's last check that found nothing.
        self.forecasts: dict[str, CachedForecast] = {}
        # Per-minute burstiness of the day before each endpoint's last hourly boundary, and
        # that boundary: cron runs and the daemon measure the same window, so agree.
        self.dispersion: dict[str, float | None] = {}
        self.dispersion_end: dict[str, datetime] = {}
        self.last_snapshot: dict[str, datetime | None] = {}
        self.unscored: dict[str, list[datetime]] = {}
        self.tune_checked: dict[str, tuple[dict, datetime]] = {}
        # With [daemon] refresh_processes, the daemon refreshes forecasts in a pool of processes
        # (prewarm.refresh_pool) and its cycles only plan; None refreshes in the cycle.
        self.refresh_pool = None
        # The daemon measures each scale-out's time to ready in the background; a one-shot
        # `prewarm once` exits before that could finish, so it does not.
        self.watch_readiness = False

    def provider(self, ep: EndpointSettings) -> Provider:
        if ep.name not in self.providers:
            ref = EndpointRef(ep.name, ep.capacity.min_workers, ep.capacity.max_workers)
            self.providers[ep.name] = provider_registry.create(ep.provider, ref)
        return self.providers[ep.name]

    def endpoints(self, names: Iterable[str] | None = None) -> list[EndpointSettings]:
        if names is None:
            return list(self.settings.endpoints)
        return [self.settings.endpoint(n) for n in names]

    def close_refresh_pool(self) -> None:
        if self.refresh_pool is not None:
            self.refresh_pool.close()
            self.refresh_pool = None

    def close(self) -> None:
        self.close_refresh_pool()
        for p in self.providers.values():
            try:
                p.close()
            except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                log.debug("closing provider failed", exc_info=True)
        self.store.close()

    def _error(self, stage: str, endpoint: str) -> None:
        if self.metrics:
            self.metrics.errors.labels(stage, endpoint).inc()
