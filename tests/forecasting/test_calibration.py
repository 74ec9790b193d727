"""The level-scaled calibration layer: bands that shrink at night and widen at the peak,
calibrated on real traffic, stored with a choice and reused."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from prewarm.config import ForecastSettings
from prewarm.demo import daily_rate
from prewarm.forecasters import calibration as cal
from prewarm.forecasters import registry
from prewarm.forecasters.accuracy import score
from prewarm.forecasters.auto import AutoForecaster, ModelChoice
from prewarm.forecasting import forecast_endpoints, forecast_in_batches

from .conftest import at_step

UTC = dt.timezone.utc


def demo_history(days: int = 4) -> pd.DataFrame:
    """`prewarm demo`'s traffic: 0.05 req/min at night, a 40 req/min peak at 14:00 UTC."""
    minutes = pd.date_range("2026-11-23", periods=days * 1440, freq="60s")
    rates = np.array([daily_rate(t) for t in minutes.to_pydatetime()])
    return pd.DataFrame({"unique_id": "demo-chat", "ds": minutes,
                         "y": np.random.default_rng(7).poisson(rates).astype(float)})


DEMO = ForecastSettings(model="seasonal-naive", step_s=300, history_s=4 * 86400, horizon_s=1800)


def test_demo_night_band_is_the_poisson_quantile_not_the_peak_width():
    history = demo_history()
    now = dt.datetime(2026, 11, 27, 3, tzinfo=UTC)
    calibrated = forecast_endpoints(history, DEMO, now=now).forecasts["demo-chat"]
    raw = forecast_endpoints(history, DEMO, now=now,
                             model_params={"calibration": "model"}).forecasts["demo-chat"]
    night = 0.05 * 5  # requests per 5-minute step at 03:00
    assert calibrated.frame["hi-80"].max() <= cal.poisson_quantile(night, 0.9) + 1
    assert max(calibrated.demand.series("hi-80")) < 1.0  # req/min: the planner holds ~nothing
    # statsforecast's own residual band is one width all day, set by the afternoon peak.
    assert max(raw.demand.series("hi-80")) > 4.0
    # The peak keeps a wide band: the width follows the level.
    peak = forecast_endpoints(history, DEMO, now=dt.datetime(2026, 11, 27, 13, 45, tzinfo=UTC))
    frame = peak.forecasts["demo-chat"].frame
    assert (frame["hi-80"] - frame["mean"]).max() > 10 * (calibrated.frame["hi-80"] - calibrated.frame["mean"]).max()


def test_coverage_on_the_last_days_of_nasa_is_near_nominal_and_beats_raw_pinball(nasa):
    history = at_step(nasa, 300)
    end = history["ds"].max().floor("6h")
    rows = {"level": [], "model": []}
    for i in range(28):  # rolling origin over the last week, 6 h ahead, no look-ahead (as the bench)
        origin = end - pd.Timedelta(hours=6 * (28 - i))
        past = history[history["ds"] < origin]
        for kind in rows:
            out = registry.create("seasonal-naive", calibration=kind).forecast(past, horizon=72, step_s=300)
            rows[kind].append(out)
    scores = {kind: score(pd.concat(parts).merge(history, on=["unique_id", "ds"]))["nasa-ksc-www"]
              for kind, parts in rows.items()}
    level = scores["level"]
    assert abs(level["coverage-80"] - 0.8) <= 0.05 and abs(level["coverage-95"] - 0.95) <= 0.05
    assert level["pinball"] < scores["model"]["pinball"]


def test_scale_shape_follows_how_errors_grow_with_the_level():
    rng = np.random.default_rng(3)
    ds = pd.date_range("2025-01-01", periods=7 * 288, freq="300s")
    rate = 2 + 200 * np.exp(-((ds.hour + ds.minute / 60 - 14) ** 2) / 8)
    history = pd.DataFrame({"unique_id": np.repeat(["poisson", "swings"], len(ds)),
                            "ds": np.tile(ds, 2), "y": np.tile(rate, 2)})
    profile = cal.LevelProfile.from_history(history, 300)
    noise = {"poisson": rng.poisson(rate) - rate, "swings": rate * rng.normal(0, 0.3, len(ds))}
    errors = pd.DataFrame({"unique_id": np.repeat(list(noise), len(ds)), "ds": np.tile(ds, 2),
                           "mean": np.tile(rate, 2), "y": np.tile(rate, 2) + np.concatenate(list(noise.values()))})
    fitted = cal.fit(errors, profile, (80, 95)).z
    assert fitted.loc["poisson", "kappa"] <= 0.003  # variance ~ level
    assert fitted.loc["swings", "kappa"] >= 0.03  # variance ~ level^2
    band = cal.apply(errors.assign(mean=np.tile(rate, 2)), cal.Calibration(fitted), profile, (80,))
    inside = (band["y"] <= band["hi-80"]) & (band["y"] >= band["lo-80"])
    busy = np.tile(rate, 2) > 100
    for quiet_or_busy in (busy, ~busy):  # calibrated at the peak and in the lull alike
        assert 0.7 <= inside[quiet_or_busy].mean() <= 0.92


def test_stored_calibration_is_used_and_round_trips(alibaba):
    history = at_step(alibaba[(alibaba["unique_id"] == "M0002") & (alibaba["ds"] < "2024-11-28")], 900)
    model = registry.create("tsb")
    base = model.forecast(history, horizon=8, step_s=900)
    row = model.last_calibration.to_dict("M0002")
    assert set(row) == {"kappa", "lo-80", "hi-80", "lo-95", "hi-95"}
    now = dt.datetime(2024, 11, 28, tzinfo=UTC)
    wide = {k: (v * 3 if k != "kappa" else v) for k, v in row.items()}
    choice = ModelChoice.from_row("M0002", "tsb", 900, now,
                                  ModelChoice("M0002", "tsb", 900, now, calibration=wide).scores_json())
    assert choice.calibration == pytest.approx(wide)
    fresh = AutoForecaster().forecast(history, horizon=8, step_s=900, choices={"M0002": choice})
    assert fresh["hi-95"].tolist() == base["hi-95"].tolist()  # re-calibrated by default
    out = AutoForecaster(reuse_calibration=True).forecast(history, horizon=8, step_s=900,
                                                          choices={"M0002": choice})
    assert out["mean"].tolist() == pytest.approx(base["mean"].tolist())
    assert (out["hi-95"] - out["mean"]).sum() > 2 * (base["hi-95"] - base["mean"]).sum()


def test_forecast_in_batches_matches_one_call(alibaba):
    ids = ["M0001", "M0002", "M0003"]
    settings = ForecastSettings(model="seasonal-naive")
    now = dt.datetime(2024, 11, 28, 6, tzinfo=UTC)
    whole = forecast_endpoints(alibaba[alibaba["unique_id"].isin(ids)], settings, now=now)
    runs = list(forecast_in_batches(lambda batch: alibaba[alibaba["unique_id"].isin(batch)], ids,
                                    settings, now=now, batch_size=2))
    assert [sorted(r.forecasts) for r in runs] == [["M0001", "M0002"], ["M0003"]]
    for run in runs:
        for uid, f in run.forecasts.items():
            assert f.demand.mean == whole.forecasts[uid].demand.mean
            assert f.demand.bands["hi-80"] == whole.forecasts[uid].demand.bands["hi-80"]
