"""ConditionLog: a failure met on every poll is logged when it starts, then at most once per
interval with the count of repeats, and once when it ends."""
from __future__ import annotations

import logging

from prewarm.logs import ConditionLog


def test_a_repeated_failure_is_logged_on_change_and_then_once_a_minute(caplog):
    now = [0.0]
    cond = ConditionLog(logging.getLogger("prewarm.test"), every_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="prewarm.test"):
        for _ in range(50):  # every 1.2 s for a minute
            cond.failing(logging.WARNING, "leader lock: %s", "connection refused")
            now[0] += 1.2
        cond.failing(logging.WARNING, "leader lock: %s", "connection refused")
        cond.ok("leader lock: the database answers again")
        cond.ok("leader lock: the database answers again")  # no change: nothing
        cond.failing(logging.WARNING, "leader lock: %s", "timeout")  # a new outage: logged at once
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "leader lock: connection refused",
        "leader lock: connection refused (still failing after 60s; 49 repeats not logged)",
        "leader lock: the database answers again (after 51 failures over 60s)",
        "leader lock: timeout",
    ]


def test_the_daemon_logs_one_info_line_per_cycle():
    from prewarm.daemon import cycle_summary
    from prewarm.outcomes import EndpointOutcome
    from prewarm.planner.model import EndpointPlan
    from datetime import datetime, timezone

    plan = EndpointPlan("a", datetime(2026, 1, 1, tzinfo=timezone.utc), ())
    outcomes = {"a": EndpointOutcome("a", plan=plan), "b": EndpointOutcome("b", error="no history", no_history=True),
                "c": EndpointOutcome("c", error="forecaster failed"), "d": EndpointOutcome("d", plan=plan)}
    assert cycle_summary(outcomes, 1.234) == \
        "cycle: 2 of 4 endpoints planned, 1 without history yet, 1 failed (c) in 1.2 s"
    assert cycle_summary({"a": outcomes["a"]}, 0.05) == "cycle: 1 of 1 endpoints planned in 0.1 s"
