"""The default forecaster `select`: per endpoint the candidate with the lowest rolling-origin
error, seasonal naive the floor; bands from its own out-of-sample errors. Synthetic stress
series whose right answer is known: the selection must follow them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prewarm.forecasters.select import SelectForecaster

STEP = 900
PER = 86400 // STEP
DAYS = 14


def frame(y, uid="ep", start="2025-03-03"):  # a Monday
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq=f"{STEP}s"),
                         "y": np.asarray(y, float)})


def daily_shape(n, peak=40.0, hour=14.0, width=3.0):
    hours = (np.arange(n) % PER) * STEP / 3600
    return 1.0 + peak * np.exp(-0.5 * ((hours - hour) / width) ** 2)


def choose(y, horizon=24, **params):
    model = SelectForecaster(**params)
    out = model.forecast(frame(y), horizon=horizon, step_s=STEP)
    return model.last_choices["ep"], out


def rng(seed=0):
    return np.random.default_rng(seed)


def test_stationary_noise_picks_the_mean_of_days_over_yesterday():
    n = DAYS * PER
    y = rng().poisson(daily_shape(n))
    choice, _ = choose(y)
    assert all(m.startswith("sm") for m in choice.models)
    assert choice.scores[choice.models[-1]] < 0.9 * choice.scores["sn"]  # averaging days halves the noise


def test_level_shift_is_followed_by_the_recent_level():
    """The level doubled two days ago: the week's mean lags it, yesterday or a level
    correction does not."""
    n = DAYS * PER - PER // 2  # the origin at noon: the forecast holds the afternoon peak
    lam = daily_shape(n) * np.where(np.arange(n) >= n - 2 * PER, 2.0, 1.0)
    y = rng(1).poisson(lam)
    choice, out = choose(y, horizon=16)
    assert "sm" not in choice.models
    assert min(choice.scores.values()) < choice.scores["sm"]
    truth = (daily_shape(n + 16)[n:] * 2.0)
    assert abs(out["mean"].sum() / truth.sum() - 1) < 0.15


def test_trend_is_followed():
    n = DAYS * PER
    lam = daily_shape(n) * np.linspace(1.0, 4.0, n)
    y = rng(2).poisson(lam)
    choice, _ = choose(y, horizon=4)
    assert all(m.endswith(("-level", "-day")) or m == "sn" for m in choice.models)
    assert "sm" not in choice.models


def test_weekly_pattern_picks_last_week_and_drops_it_when_the_pattern_goes():
    n = DAYS * PER
    weekday = (np.arange(n) // PER) % 7
    weekly = np.where(weekday >= 5, 0.1, 1.0)  # quiet weekends
    y = rng(3).poisson(daily_shape(n) * weekly)
    choice, _ = choose(y)
    # beyond the first hour last week's same day; within it last week or the recent level
    assert choice.models[-1] in ("snw", "snw-level", "mix-level")
    assert all(m.startswith("snw") or m.endswith("-level") for m in choice.models)
    # the pattern stops: the last week has no quiet weekend any more (every day busy)
    y2 = rng(4).poisson(daily_shape(n) * np.where(np.arange(n) >= n - 8 * PER, 1.0, weekly))
    choice2, _ = choose(y2)
    assert not any(m.startswith("snw") for m in choice2.models)


def test_daily_shape_that_drifts_picks_yesterday():
    """The peak moves an hour later every day: the week's mean smears it, yesterday has it."""
    n = DAYS * PER
    day = np.arange(n) // PER
    hours = (np.arange(n) % PER) * STEP / 3600
    lam = 1.0 + 60.0 * np.exp(-0.5 * ((hours - (4.0 + day)) / 1.0) ** 2)
    y = rng(5).poisson(lam)
    choice, _ = choose(y)
    assert all(m in ("sn", "sn-level") for m in choice.models)


def test_the_level_correction_fades_with_the_lead():
    """The last hour ran at twice the seasonal mean: the next step is scaled by the whole
    ratio, a step `level_fade_s` ahead by its square root, and six hours ahead almost not
    at all (a quiet or busy hour says little about the evening). None: the whole ratio at
    every lead, as before."""
    from prewarm.forecasters.select import _Bank

    n = DAYS * PER
    y = daily_shape(n)
    y[n - 4:] *= 2.0  # the last hour (4 steps of 15 min) at twice the usual
    leads = np.arange(25)  # 0 .. 6 h
    origin = np.array([n])
    faded = _Bank(y, n, PER, 7, 4, 0.0, 4.0, fade=10800 / STEP)
    whole = _Bank(y, n, PER, 7, 4, 0.0, 4.0)
    sm = whole.forecast("sm", origin, leads)[0]
    ratio = whole.forecast("sm-level", origin, leads)[0] / sm
    np.testing.assert_allclose(ratio, ratio[0])  # no fade: one ratio for every lead
    assert ratio[0] > 1.3  # the last hour's steps were doubled, the week's mean only partly
    got = faded.forecast("sm-level", origin, leads)[0] / sm
    np.testing.assert_allclose(got, ratio[0] ** (0.5 ** (leads * STEP / 10800)))
    assert got[0] == pytest.approx(ratio[0]) and got[12] == pytest.approx(ratio[0] ** 0.5)
    assert got[24] < 1 + (ratio[0] - 1) / 3
    # the mix of sm-level and snw-level fades alike; sm-day (the last day's level) does not
    day = faded.forecast("sm-day", origin, leads)[0] / sm
    np.testing.assert_allclose(day, day[0])
    # the default's half-life (chosen on the tuning parts, docs/forecasting.md)
    assert SelectForecaster().level_fade_s == 10800
    with pytest.raises(ValueError, match="level_fade_s"):
        SelectForecaster(level_fade_s=0)


def test_seasonal_naive_is_the_floor():
    """An exactly repeating day: nothing beats yesterday, and the choice stays there."""
    n = DAYS * PER
    y = np.round(daily_shape(n) + 5 * (1 + np.sin(np.arange(n) % PER)))
    y[: 5 * PER] *= 3  # older days differ: averaging them or last week only adds error
    choice, out = choose(y)
    assert choice.model == "sn"
    np.testing.assert_allclose(out["mean"].to_numpy(), y[n - PER:n - PER + 24])


def test_margin_keeps_the_baseline_unless_clearly_beaten():
    n = DAYS * PER
    y = rng(6).poisson(daily_shape(n))
    choice, _ = choose(y, margin=0.99)
    assert choice.model == "sn"


def test_bands_come_from_own_errors_smooth_narrow_bursty_wide():
    n = DAYS * PER
    smooth = rng(7).poisson(daily_shape(n, peak=400.0))
    bursty = smooth * rng(8).choice([0.0, 3.0], size=n, p=[2 / 3, 1 / 3])
    model = SelectForecaster()
    both = pd.concat([frame(smooth, "smooth"), frame(bursty, "bursty")])
    out = model.forecast(both[both["ds"] < both["ds"].max() - pd.Timedelta(hours=12)], horizon=16, step_s=STEP)
    width = (out["hi-80"] - out["lo-80"]).groupby(out["unique_id"]).mean()
    assert width["bursty"] > 3 * width["smooth"]


def test_bands_cover_near_nominal_out_of_sample():
    """Rolling origins on a noisy daily series: the 80% and 95% bands cover within 5 points."""
    n = 21 * PER
    y = rng(9).negative_binomial(5, 5 / (5 + daily_shape(n)))
    inside = {80: [], 95: []}
    for origin in range(14 * PER, n - 24, 13):
        out = SelectForecaster().forecast(frame(y[:origin]), horizon=24, step_s=STEP)
        actual = y[origin:origin + 24]
        for lv in inside:
            inside[lv].append((actual >= out[f"lo-{lv}"].to_numpy()) & (actual <= out[f"hi-{lv}"].to_numpy()))
    assert abs(np.mean(inside[80]) - 0.80) <= 0.05
    assert abs(np.mean(inside[95]) - 0.95) <= 0.05


def test_under_a_day_of_history_uses_the_average_or_the_recent_level():
    y = np.linspace(100, 300, 60)  # an hour at one minute, climbing
    model = SelectForecaster()
    out = model.forecast(pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2025-01-01", periods=60, freq="60s"),
                                       "y": y}), horizon=5, step_s=60)
    assert model.last_choices["a"].model == "recent"
    assert out["mean"].iloc[0] > y.mean()
    one = SelectForecaster().forecast(pd.DataFrame({"unique_id": "b", "ds": [pd.Timestamp("2025-01-01")],
                                                    "y": [3.0]}), horizon=4, step_s=60)
    assert (one["mean"] == 3.0).all() and (one["hi-95"] >= 3.0).all()


def test_uses_only_the_history_it_is_given():
    """The forecast from a prefix is the same whatever followed it."""
    n = DAYS * PER
    y = rng(10).poisson(daily_shape(n)).astype(float)
    a = SelectForecaster().forecast(frame(y[: n - PER]), horizon=24, step_s=STEP)
    y2 = y.copy()
    y2[n - PER:] = 1000
    b = SelectForecaster().forecast(frame(y2)[: n - PER], horizon=24, step_s=STEP)
    pd.testing.assert_frame_equal(a, b)


def test_unknown_candidate_and_missing_baseline_are_refused():
    with pytest.raises(ValueError, match="unknown candidates"):
        SelectForecaster(candidates=("sn", "prophet"))
    with pytest.raises(ValueError, match="baseline"):
        SelectForecaster(candidates=("sm",))


def test_forecast_endpoints_names_the_choice():
    import datetime as dt

    from prewarm.config import ForecastSettings
    from prewarm.forecasting import forecast_endpoints

    n = 10 * 1440
    minutes = pd.date_range("2025-03-03", periods=n, freq="60s")
    lam = np.repeat(daily_shape(10 * PER), 15)[:n] / 3
    history = pd.DataFrame({"unique_id": "chat", "ds": minutes, "y": rng(11).poisson(lam).astype(float)})
    now = (minutes[-1] + pd.Timedelta(minutes=1)).to_pydatetime().replace(tzinfo=dt.timezone.utc)
    run = forecast_endpoints(history, ForecastSettings(model="select", horizon_s=3600), now=now)
    assert run.forecasts["chat"].model.startswith("select:")
    assert not run.errors


def test_blend_with_the_baseline_is_the_weighted_mean_of_the_two():
    n = DAYS * PER
    y = rng(12).poisson(daily_shape(n)).astype(float)
    alone_choice, alone = choose(y, blend_shares=(1.0,))
    half_choice, half = choose(y, blend_shares=(0.5,))
    assert alone_choice.model != "sn" and half_choice.model == f"{alone_choice.model}*0.5+sn"
    sn = y[n - PER:n - PER + 24]
    np.testing.assert_allclose(half["mean"].to_numpy(), 0.5 * alone["mean"].to_numpy() + 0.5 * sn)


def test_lead_buckets_choose_per_bucket():
    n = DAYS * PER
    y = rng(13).poisson(daily_shape(n) * np.linspace(1.0, 3.0, n))
    choice, out = choose(y, lead_buckets_s=(3600, 3 * 3600))
    assert len(choice.models) == 3 and len(out) == 24


def minutes(y, uid="young"):
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2025-01-01", periods=len(y), freq="60s"),
                         "y": np.asarray(y, float)})


def rolling_short(series, horizon, first=10):
    """Every origin k >= first of each short series: select's and the historic average's
    absolute errors, and whether each band held the actuals."""
    err_select, err_mean, inside = 0.0, 0.0, {80: [], 95: []}
    for y in series:
        for k in range(first, len(y) - horizon + 1):
            out = SelectForecaster().forecast(minutes(y[:k]), horizon=horizon, step_s=60)
            actual = y[k:k + horizon]
            err_select += np.abs(actual - out["mean"].to_numpy()).sum()
            err_mean += np.abs(actual - y[:k].mean()).sum()
            for lv in inside:
                inside[lv].extend((actual >= out[f"lo-{lv}"].to_numpy()) & (actual <= out[f"hi-{lv}"].to_numpy()))
    return err_select / err_mean, {lv: float(np.mean(v)) for lv, v in inside.items()}


def test_young_series_does_not_leave_the_average_without_evidence():
    """Stationary counts, an hour of one-minute points: the recent mean wins on some noisy
    origins by chance; without a paired test over non-overlapping blocks of origins the
    choice followed it and lost to the historic average (1.00002x on this set)."""
    r = rng(20)
    series = [r.poisson(30, 60).astype(float) for _ in range(25)]
    ratio, _ = rolling_short(series, 5)
    assert ratio <= 1.0


def test_young_series_follows_a_clear_trend():
    y = np.linspace(100, 400, 40)
    out = SelectForecaster().forecast(minutes(y), horizon=5, step_s=60)
    assert out["mean"].iloc[0] > y.mean() * 1.2


def test_young_series_bands_cover_near_nominal():
    """Short Poisson series: a conformal quantile of a few dozen overlapping errors cannot
    reach past their largest (95% covered ~85%); the small-sample t-bound fixes it."""
    r = rng(21)
    series = [r.poisson(30, 40).astype(float) for _ in range(25)]
    _, cover = rolling_short(series, 5)
    assert abs(cover[80] - 0.80) <= 0.06
    assert abs(cover[95] - 0.95) <= 0.04


def test_young_bursty_series_without_errors_gets_its_own_dispersion():
    """15 minutes of a bursty endpoint, a 15-minute horizon: no origin to cross-validate,
    so the bands are the default's, widened to the history's own dispersion."""
    y = np.array([63, 0, 0, 531, 166, 151, 15, 42, 38, 476, 403, 81, 0, 0, 585], float)
    out = SelectForecaster().forecast(minutes(y), horizon=15, step_s=60)
    narrow = SelectForecaster(dispersion_fallback=False).forecast(minutes(y), horizon=15, step_s=60)
    assert (out["hi-80"] >= np.quantile(y, 0.8)).all()
    assert (out["hi-80"] - out["lo-80"]).mean() > 1.5 * (narrow["hi-80"] - narrow["lo-80"]).mean()
