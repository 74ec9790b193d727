"""Break-even advisor: the cheapest of persistent, hybrid and on-demand at the target."""
from __future__ import annotations

import json

import pytest

from prewarm.backtest.advisor import Prices, advise_from_points
from prewarm.backtest.frontier import Point

from .test_backtest import ALIBABA, cli

WEEK_H = 168.0
POINTS = [
    Point(0, 30, 0.40, 20.0), Point(0, 3600, 0.03, 150.0), Point(0, 14400, 0.015, 230.0),
    Point(1, 30, 0.05, 170.0), Point(1, 3600, 0.012, 240.0), Point(2, 30, 0.004, 336.5),
]


def test_advice_follows_prices_and_target():
    same = advise_from_points(POINTS, WEEK_H, Prices(1.0, 1.0), 0.02)
    assert same.best.kind == "on-demand" and (same.best.floor, same.best.keepalive_s) == (0, 14400)
    assert same.options["hybrid"].cost == pytest.approx(240.0)
    assert same.options["persistent"].cold_rate == 0.004
    # Serverless seconds at 3x a reserved worker: the always-on floor pays for itself.
    dear = advise_from_points(POINTS, WEEK_H, Prices(on_demand_per_hour=3.0, persistent_per_hour=1.0), 0.02)
    assert dear.best.kind == "persistent"
    assert dear.options["hybrid"].cost == pytest.approx(168.0 + 72.0 * 3.0)
    assert dear.options["on-demand"].cost == pytest.approx(690.0)
    # A stricter target leaves only the persistent pool; an impossible one, none.
    assert advise_from_points(POINTS, WEEK_H, Prices(), 0.005).best.kind == "persistent"
    none = advise_from_points(POINTS, WEEK_H, Prices(), 0.001)
    assert none.best is None and set(none.as_dict()["options"].values()) == {None}
    with pytest.raises(ValueError):
        advise_from_points(POINTS, WEEK_H, Prices(), 0.0)


def test_cli_advise_json():
    r = cli("backtest", str(ALIBABA / "requests.csv"), "--endpoint", "M0004", "--from", "2024-11-28T00:00:00Z",
            "--to", "2024-11-30T00:00:00Z", "--advise", "--json", "--price", "2", "--persistent-price", "1",
            "--cold-start", "30s")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    advice = data["advice"]["M0004"]
    assert data["prices"] == {"on_demand_per_hour": 2.0, "persistent_per_hour": 1.0}
    assert advice["advice"] in ("persistent", "hybrid", "on-demand")
    met = {k: o for k, o in advice["options"].items() if o}
    assert met and advice["options"][advice["advice"]]["cost"] == min(o["cost"] for o in met.values())
    assert all(o["cold_rate"] <= 0.02 for o in met.values())
