import numpy as np
import pandas as pd
import pytest

from prewarm.forecasters.resolution import aggregate, choose_step, disaggregate, split_step
from prewarm.forecasting import to_demand


def test_step_follows_sparsity_of_real_traces(nasa, alibaba):
    assert choose_step(nasa) == {"nasa-ksc-www": 60}  # busy every minute
    steps = choose_step(alibaba)
    assert steps["M0003"] == 900  # 97% of minutes empty
    assert all(s in (300, 900) for s in steps.values())  # none is forecast per minute


def test_aggregate_sums_and_drops_partial_bins(nasa):
    part = nasa[(nasa["ds"] >= "1995-07-03 00:02") & (nasa["ds"] < "1995-07-03 01:03")]
    five = aggregate(part, 60, 300)
    assert five["ds"].min() == pd.Timestamp("1995-07-03 00:05")
    assert five["ds"].max() == pd.Timestamp("1995-07-03 00:55")
    expected = part[(part["ds"] >= "1995-07-03 00:05") & (part["ds"] < "1995-07-03 00:10")]["y"].sum()
    assert five["y"].iloc[0] == expected
    with pytest.raises(ValueError, match="not a multiple"):
        aggregate(part, 60, 90)


def test_split_keeps_mean_and_narrows_band_by_sqrt():
    mean, bands = split_step(np.array([10.0]), {"hi-80": np.array([14.0])}, np.array([0.25]))
    assert mean[0] == 2.5
    assert bands["hi-80"][0] == pytest.approx(2.5 + 4 * 0.5)


def test_to_demand_gives_per_minute_rates():
    frame = pd.DataFrame({"unique_id": "e", "ds": pd.date_range("2024-01-01", periods=2, freq="15min"),
                          "mean": [30.0, 0.0], "lo-80": [15.0, 0.0], "hi-80": [45.0, 3.0]})
    demand = to_demand(frame, 900, model="m")["e"]
    assert demand.step_s == 60 and len(demand) == 30
    assert demand.mean[0] == pytest.approx(2.0)  # 30 per 15 minutes
    assert sum(demand.mean) == pytest.approx(30.0)
    assert demand.series("hi-80")[0] == pytest.approx(2.0 + 15 / np.sqrt(15))
    assert demand.start.tzinfo is not None and demand.model == "m"
    fine = disaggregate(frame, 900, 300)
    assert fine.groupby(fine["ds"].dt.floor("15min"))["mean"].sum().tolist() == [30.0, 0.0]
