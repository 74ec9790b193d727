"""`prewarm demo` works end to end: real workers warmed ahead of the peak, and why."""
from __future__ import annotations

from prewarm.demo import run_demo


def test_demo_warms_ahead_of_the_morning_ramp_and_holds_a_speculative_worker(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", echo=lines.append, hours=9)
    text = "\n".join(lines)
    assert "speculative worker held" in text, text
    ramp = [line for line in lines if "started 10 min ahead (cold start)" in line and "ready in" in line]
    assert ramp, text  # a scale-out for the forecast, with real workers that became ready
    assert result["changes"] >= 2
    assert not list((tmp_path / "demo" / "workers" / "demo-chat").glob("worker-*.json"))  # all stopped
