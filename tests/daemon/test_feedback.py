"""The cold-start feedback hook: observed cold-start rate from ingested counts -> the tuner."""
from __future__ import annotations

import types
from datetime import timedelta

from daemon_helpers import utc, write_config
from prewarm import config
from prewarm.cycle import Runtime, policy_settings
from prewarm.feedback import observed_stats, tuned_policy
from prewarm.store import CountRow, Store

T0 = utc(2026, 3, 2, 12)


def test_observed_cold_rate_drives_the_tuner_only_when_asked(tmp_path, sqlite_url, faulty):
    store = Store(sqlite_url)
    rows = [CountRow("api", T0 - timedelta(minutes=m), 100, cold_starts=10) for m in range(1, 61)]
    with store.begin() as c:
        store.insert_counts(c, store.endpoint_id("api"), rows)
    stats = observed_stats(store, "api", T0)
    assert (stats.requests, stats.cold_requests, stats.baseline_rpm) == (6000, 600, 100)
    settings = config.load(write_config(tmp_path / "p.toml", sqlite_url, [{"name": "api", "dir": faulty.dir}]))
    rt = Runtime(settings, store=store)
    ep = settings.endpoint("api")
    base = policy_settings(settings, ep)
    assert tuned_policy(rt, ep, base, T0) is base, "tuning is off unless the planner settings ask for it"

    # With auto_tune on (a key the planner settings do not have yet), a 10% cold rate against a
    # 2% target raises the value of an avoided cold start, and keeps raising it cycle after cycle.
    asked = types.SimpleNamespace(auto_tune=True)
    rt.settings = types.SimpleNamespace(planner_for=lambda _ep: asked)
    first = tuned_policy(rt, ep, base, T0)
    second = tuned_policy(rt, ep, base, T0)
    assert first.cold_start_value_s is not None and second.cold_start_value_s > first.cold_start_value_s
    store.close()
