"""Tests wait on events: poll a condition until it holds. The timeout only ends a test that
would otherwise hang; it is no bound on how fast anything is."""
from __future__ import annotations

import time


def wait_for(pred, timeout: float, poll: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
