"""An endpoint's settings as the planner's inputs: its capacity model and its policy."""
from __future__ import annotations

from .coldstart import lead_seconds
from .config import EndpointSettings, Settings
from .planner.model import CapacityModel, PolicySettings


def capacity_model(ep: EndpointSettings, measured: list[float] | None = None) -> CapacityModel:
    """The endpoint's capacity model; with cold_start_learn, the lead is a percentile of the
    measured times to ready once there are enough of them."""
    from .readiness import learned_lead

    c = ep.capacity
    lead = lead_seconds(c.cold_start_s, c.cold_start_dist, c.cold_start_percentile)
    if c.cold_start_learn and measured:
        lead = learned_lead(measured, c.cold_start_percentile) or lead
    return CapacityModel(concurrency=c.concurrency, service_time_s=c.service_time_s,
                         cold_start_s=lead,
                         min_workers=c.min_workers, max_workers=c.max_workers,
                         price_per_worker_hour=c.price_per_worker_hour)


def policy_settings(settings: Settings, ep: EndpointSettings, capacity: CapacityModel | None = None) -> PolicySettings:
    from .policy import policy_from_settings
    return policy_from_settings(settings.planner_for(ep), capacity or capacity_model(ep))
