"""The daemon asks a provider only for what it can carry out (Capabilities), and a target in
place is not applied again: issue 10 item 5. Driven on simulated time, 30 s reconciles."""
from __future__ import annotations

from datetime import timedelta

import pytest

from daemon_helpers import utc, write_config
from prewarm import config
from prewarm.apply import carried_idle
from prewarm.daemon import Daemon
from prewarm.daemon_sim import SimulatedScheduler
from prewarm.providers.base import Capabilities
from prewarm.store import Store

T0 = utc(2026, 3, 2, 8)
MODAL = {"idle_timeout": True, "idle_timeout_min_s": 2, "idle_timeout_max_s": 3600}
HF = {"idle_timeout": True, "idle_timeout_min_s": 60, "idle_timeout_step_s": 60, "idle_timeout_at_zero_only": True}


@pytest.mark.parametrize("caps, control, plan, asked", [
    # No idle timeout (the AWS adapters, local, Replicate): none is asked for, and a provider
    # that reports none is not re-applied every pass.
    ({}, {}, [(0, 2, 600.0)], [(2, None)]),
    # Modal: scaledown_window 2..3600 s.
    (MODAL, {}, [(0, 2, 7200.0)], [(2, 3600.0)]),
    # HF Endpoints: whole minutes, only with minReplica 0.
    (HF, {}, [(0, 2, 90.0), (2, 0, 90.0)], [(2, None), (0, 120.0)]),
    # A platform coarser than it says: asked once, what it kept is taken as its answer.
    ({"idle_timeout": True}, {"idle_multiple": 60}, [(0, 2, 90.0)], [(2, 90.0)]),
], ids=["none", "modal-range", "hf-at-zero", "coarser"])
def test_the_daemon_asks_only_what_the_provider_can_do_once(tmp_path, faulty, caps, control, plan, asked):
    url = f"sqlite:///{tmp_path / 'prewarm.db'}"
    faulty.control(capabilities=caps, **control)
    store = Store(url)
    store.save_plan("api", T0, T0 + timedelta(hours=6), "test",
                    [{"at": T0 + timedelta(minutes=m), "warm_workers": n, "idle_timeout_s": idle,
                      "reason": {"why": "forecast"}} for m, n, idle in plan])
    settings = config.load(write_config(tmp_path / "prewarm.toml", url, [{"name": "api", "dir": faulty.dir}],
                                        daemon={"cycle_interval": "1h"}))
    sim = SimulatedScheduler(T0)
    daemon = Daemon(settings, clock=sim.clock, scheduler_factory=lambda: sim, store=store)
    try:
        daemon._lead()
        sim.run_until(T0 + timedelta(minutes=10))  # 20 reconcile passes
        assert [(c["target"], c["idle_timeout_s"]) for c in faulty.calls("apply", "started")] == asked
        assert [a["result"] for a in store.actions("api")] == ["ok"] * len(asked), "no 'unchanged' row per pass"
        assert not sim.errors
    finally:
        daemon._step_down()
        store.close()


def test_carried_idle_follows_the_capabilities():
    assert carried_idle(Capabilities(), 2, 600.0) is None
    assert carried_idle(Capabilities(idle_timeout=True), 2, None) is None
    assert carried_idle(Capabilities(idle_timeout=True), 2, 90.2) == 91.0, "whole seconds, rounded up"
    modal = Capabilities(**MODAL)
    assert (carried_idle(modal, 1, 7200.0), carried_idle(modal, 1, 0.5)) == (3600.0, 2.0)
    hf = Capabilities(**HF)
    assert (carried_idle(hf, 1, 90.0), carried_idle(hf, 0, 90.0), carried_idle(hf, 0, 120.0)) == (None, 120.0, 120.0)
