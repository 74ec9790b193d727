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
