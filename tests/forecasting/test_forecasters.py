"""Every registered forecaster on real traffic: shape, columns, bands ordered, non-negative,
short histories, the fallback."""
import pandas as pd
import pytest

from prewarm.forecasters import registry
from prewarm.forecasters.base import ForecastError

from .conftest import at_step

MODELS = ["seasonal-naive", "seasonal-naive-weekly", "mstl", "autoets", "autotheta", "autoarima",
          "croston-sba", "adida", "imapa", "tsb"]


def check_frame(out, ids, horizon, step_s, last):
    assert list(out.columns[:3]) == ["unique_id", "ds", "mean"]
    assert set(out["unique_id"]) == set(ids)
    assert (out.groupby("unique_id").size() == horizon).all()
    first = out.groupby("unique_id")["ds"].min()
    for uid in ids:
        assert first[uid] == last[uid] + pd.Timedelta(seconds=step_s)
    values = out[["mean", "lo-80", "hi-80", "lo-95", "hi-95"]]
    assert values.notna().all().all() and (values >= 0).all().all()
    assert (out["lo-80"] <= out["mean"]).all() and (out["mean"] <= out["hi-80"]).all()


def test_registry_lists_all_models_and_names_unknown():
    assert set(MODELS) | {"auto"} <= set(registry.names())
    with pytest.raises(registry.UnknownForecaster, match="installed: .*mstl"):
        registry.create("prophet")


@pytest.mark.parametrize("name", MODELS)
def test_forecaster_on_nasa_and_alibaba(name, nasa, alibaba):
    dense = at_step(nasa[nasa["ds"] < "1995-07-17 05:07"], 900)
    sparse = at_step(alibaba[alibaba["unique_id"].isin(["M0002", "M0003"])], 900)
    history = pd.concat([dense, sparse], ignore_index=True)
    # Two calibration windows (default 8): the shape is under test here, not the bands.
    out = registry.create(name, calibration_windows=2).forecast(history, horizon=24, step_s=900)
    check_frame(out, ["nasa-ksc-www", "M0002", "M0003"], 24, 900, history.groupby("unique_id")["ds"].max())


@pytest.mark.parametrize("name", ["mstl", "autoets", "croston-sba", "seasonal-naive-weekly"])
def test_short_history_still_forecasts(name, nasa):
    # 30 hours: under two days, under two weeks; new endpoints look like this.
    history = at_step(nasa[(nasa["ds"] >= "1995-07-10") & (nasa["ds"] < "1995-07-11 06:00")], 300)
    out = registry.create(name).forecast(history, horizon=12, step_s=300)
    check_frame(out, ["nasa-ksc-www"], 12, 300, history.groupby("unique_id")["ds"].max())
    level = history["y"].mean()
    assert 0.3 * level < out["mean"].mean() < 3 * level


class _Exploding:
    """A statsforecast-style model that fails on every series (fault injection)."""

    def __new__(cls):
        from statsforecast.models import SeasonalNaive

        class Exploding(SeasonalNaive):
            def forecast(self, y, h, X=None, X_future=None, level=None, fitted=False):
                raise FloatingPointError("optimiser diverged")

            def fit(self, *args, **kwargs):
                raise FloatingPointError("optimiser diverged")

        return Exploding(season_length=4, alias="Exploding")


@pytest.mark.parametrize("failure", ["raises", "returns-nan"])
def test_model_failure_falls_back_to_seasonal_naive(failure, nasa):
    history = at_step(nasa[nasa["ds"] < "1995-07-08"], 900)
    from statsforecast.models import SeasonalNaive

    from prewarm.forecasters.sfbase import StatsForecastForecaster

    class Broken(StatsForecastForecaster):
        name = "broken"

        def build(self, season_steps, *, step_s, horizon):
            if failure == "raises":
                return _Exploding()
            return SeasonalNaive(season_length=10**6)  # longer than the history: NaN, no error

    out = Broken().forecast(history, horizon=8, step_s=900)
    daily = history.set_index("ds")["y"]
    expect = daily[out["ds"] - pd.Timedelta(days=1)].to_numpy()  # SeasonalNaive(1 day) fallback
    assert out["mean"].tolist() == pytest.approx(expect.tolist())
    assert (out["hi-80"] > out["mean"]).any()


def test_missing_values_are_refused_with_a_clear_error(nasa):
    history = at_step(nasa[nasa["ds"] < "1995-07-04"], 900)
    history.loc[3, "y"] = float("nan")
    with pytest.raises(ForecastError, match="fill gaps"):
        registry.create("mstl").forecast(history, horizon=4, step_s=900)
