"""Gaps, outages, all-zero days, outliers and DST, on the real traces."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from prewarm.config import ForecastSettings
from prewarm.forecasters import registry
from prewarm.forecasters.preprocess import fill_gaps, winsorise
from prewarm.forecasting import forecast_endpoints

from .conftest import at_step

UTC = dt.timezone.utc


def test_multi_day_hole_is_imputed_from_last_week(nasa):
    # The NASA log stops on 07-28 13:32 (the server went down for days): forecasting on
    # 07-31 sees a 3.4-day hole at the end of its history.
    now = dt.datetime(1995, 7, 31, 12, tzinfo=UTC)
    run = forecast_endpoints(nasa, ForecastSettings(resolution="fixed", step_s=300), now=now)
    f = run.forecasts["nasa-ksc-www"]
    assert f.demand.start == now
    assert min(f.demand.mean) > 5  # not the zeros of the hole
    dense = fill_gaps(nasa, 60, end=pd.Timestamp("1995-07-31 12:00"))
    hole = dense[dense["imputed"]]
    assert hole["ds"].min() == pd.Timestamp("1995-07-28 17:33")  # 13:33 at -04:00
    week_ago = dense.set_index("ds")["y"][hole["ds"] - pd.Timedelta(days=7)]
    assert np.array_equal(hole["y"].to_numpy(), week_ago.to_numpy())


def test_outage_of_zeros_in_a_busy_series_is_not_demand(nasa):
    broken = nasa.copy()
    outage = (broken["ds"] >= "1995-07-18 00:00") & (broken["ds"] < "1995-07-19 00:00")
    broken.loc[outage, "y"] = 0.0  # a collector that wrote zeros for a day
    dense = fill_gaps(broken, 60, how="zero")
    assert dense.loc[dense["ds"].between("1995-07-18 00:00", "1995-07-18 23:59"), "imputed"].all()
    now = dt.datetime(1995, 7, 19, tzinfo=UTC)
    f = forecast_endpoints(broken, ForecastSettings(resolution="fixed", step_s=300,
                                                   gap_fill="zero"), now=now).forecasts["nasa-ksc-www"]
    assert np.mean(f.demand.mean) > 0.5 * nasa[nasa["ds"] >= "1995-07-17"]["y"].mean()


def test_all_zero_days_of_a_sparse_series_stay_zero(alibaba):
    m3 = alibaba[alibaba["unique_id"] == "M0003"]
    daily = m3.groupby(m3["ds"].dt.floor("D"))["y"].sum()
    assert (daily == 0).any(), "M0003 has days without a request"
    dense = fill_gaps(m3, 60, how="zero")
    assert not dense["imputed"].any()  # sparse: a quiet day is real
    out = registry.create("croston-sba").forecast(at_step(m3, 900), horizon=24, step_s=900)
    assert out[["mean", "hi-95"]].notna().all().all() and (out["hi-95"] >= 0).all()


def test_one_off_spike_does_not_come_back_tomorrow_at_full_height(nasa):
    history = at_step(nasa[nasa["ds"] < "1995-07-20"], 300)
    spiked = history.copy()
    at = spiked.index[spiked["ds"] == pd.Timestamp("1995-07-19 15:00")][0]
    normal = spiked.loc[at, "y"]
    spiked.loc[at, "y"] = 50 * normal
    assert winsorise(spiked)["y"].max() < 3 * history["y"].quantile(0.99)
    out = registry.create("seasonal-naive").forecast(spiked, horizon=288, step_s=300)
    tomorrow = out.set_index("ds").loc[pd.Timestamp("1995-07-20 15:00")]
    # Capped at 1.5 x the series' own 99th percentile: back at a busy peak's height at
    # most (here 3.6 x the usual value at that hour), not at 50 x.
    assert tomorrow["mean"] <= 1.5 * spiked["y"][spiked["y"] > 0].quantile(0.99) + 1e-6
    assert tomorrow["mean"] < 0.1 * 50 * normal
    assert out["mean"].drop(out.index[out["ds"] == pd.Timestamp("1995-07-20 15:00")]).max() \
        <= history["y"].max()


def _around_dst(nasa, switch_day):
    """NASA's local wall-clock pattern (its tuning part) re-dated to the ten days before and
    four after a US DST switch, as an endpoint in New York would see it in UTC: the peak moves
    by an hour on that day. The history before 03:00 local on the switch day, and the day after."""
    local = nasa[nasa["ds"] < "1995-07-15 04:00"].copy()
    local["ds"] = local["ds"] - pd.Timedelta(hours=4)  # back to EDT wall time
    first = pd.Timestamp(switch_day) - pd.Timedelta(days=10)
    local["ds"] = local["ds"] - local["ds"].min() + first
    utc = local.assign(ds=local["ds"].dt.tz_localize("America/New_York", ambiguous="NaT",
                                                     nonexistent="NaT").dt.tz_convert("UTC").dt.tz_localize(None))
    utc = utc.dropna(subset=["ds"]).drop_duplicates(["unique_id", "ds"])
    now = (pd.Timestamp(switch_day) + pd.Timedelta(hours=3)).tz_localize("America/New_York").tz_convert("UTC")
    history = utc[utc["ds"] < now.tz_localize(None)]
    actual = utc[(utc["ds"] >= now.tz_localize(None)) & (utc["ds"] < now.tz_localize(None) + pd.Timedelta(days=1))]
    return history, actual, now


def _hourly_mae(history, actual, now, model, zone, horizon_s):
    settings = ForecastSettings(model=model, resolution="fixed", step_s=300, horizon_s=horizon_s, timezone=zone)
    f = forecast_endpoints(history, settings, now=now.to_pydatetime()).forecasts["nasa-ksc-www"]
    steps = int(horizon_s // 60)
    assert len(f.demand) == steps and f.demand.step_s == 60
    assert all(np.isfinite(f.demand.mean)) and min(f.demand.mean) >= 0
    got = pd.Series(f.demand.mean, index=pd.date_range(now.tz_localize(None), periods=steps, freq="60s"))
    hourly = lambda s: s.groupby(s.index.floor("h")).mean()  # noqa: E731
    truth = hourly(actual.set_index("ds")["y"])
    truth = truth[truth.index < now.tz_localize(None) + pd.Timedelta(seconds=horizon_s)]
    return float((hourly(got).reindex(truth.index) - truth).abs().mean())


@pytest.mark.parametrize("switch_day", ["2024-11-03", "2025-03-09"])  # US fall-back, spring-forward
def test_dst_switch_keeps_the_daily_season_on_local_clocks(nasa, switch_day):
    history, actual, now = _around_dst(nasa, switch_day)
    # seasonal naive: the same model in both zones (the default `select` may choose a
    # different candidate in each, which is not what this compares)
    errors = {zone: _hourly_mae(history, actual, now, "seasonal-naive", zone, 86400)
              for zone in (None, "America/New_York")}
    assert errors["America/New_York"] < errors[None]


@pytest.mark.parametrize("switch_day", ["2024-11-03", "2025-03-09"])
@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_default_is_no_worse_than_yesterday_across_a_dst_switch(nasa, switch_day, zone):
    """Ten days of history, origin 03:00 on the switch day, the planner's longest horizon
    (6 h): `select` picks a level-corrected weekly mix on two days of weekly evidence; the
    night hour before the origin ran at about 0.6 of that mix. When that ratio scaled all
    six hours, select lost to seasonal naive (hourly MAE 12.5 against 7.9 in local time on the
    fall-back day); the correction now fades with the lead (docs/forecasting.md)."""
    history, actual, now = _around_dst(nasa, switch_day)
    default = _hourly_mae(history, actual, now, "select", zone, 6 * 3600)
    yesterday = _hourly_mae(history, actual, now, "seasonal-naive", zone, 6 * 3600)
    assert default <= yesterday
