import datetime as dt

import pandas as pd
import pytest

from prewarm.config import ForecastSettings
from prewarm.forecasters import registry
from prewarm.forecasting import forecast_endpoints, history_from_rows

NOW = dt.datetime(1995, 7, 20, 10, 7, tzinfo=dt.timezone.utc)


def test_at_uses_history_before_it_only(nasa):
    settings = ForecastSettings(resolution="fixed", step_s=300)
    a = forecast_endpoints(nasa, settings, now=NOW).forecasts["nasa-ksc-www"]
    future = nasa.copy()
    future.loc[future["ds"] >= "1995-07-20 10:07", "y"] *= 100  # what happened after NOW
    b = forecast_endpoints(future, settings, now=NOW).forecasts["nasa-ksc-www"]
    assert a.demand.mean == b.demand.mean
    assert a.demand.start == dt.datetime(1995, 7, 20, 10, 5, tzinfo=dt.timezone.utc)  # covers NOW
    assert len(a.demand) == 6 * 60 + 5


def test_failing_model_falls_back_and_says_so(nasa, monkeypatch):
    from prewarm.forecasters.base import Forecaster

    class Crashing(Forecaster):
        name = "crashing"

        def forecast(self, history, *, horizon, step_s, levels=(80, 95)):
            raise MemoryError("out of memory in fit")

    real = registry.forecaster_class
    monkeypatch.setattr(registry, "forecaster_class", lambda n: Crashing if n == "crashing" else real(n))
    run = forecast_endpoints(nasa, ForecastSettings(model="crashing", resolution="fixed", step_s=300), now=NOW)
    f = run.forecasts["nasa-ksc-www"]
    assert f.model == "seasonal-naive (fallback)" and "out of memory" in run.errors["nasa-ksc-www"]
    assert max(f.demand.mean) > 0


def test_rows_from_the_store_and_mixed_resolutions(alibaba, nasa):
    rows = {"sparse": [(t.to_pydatetime().replace(tzinfo=dt.timezone.utc), y)
                       for t, y in alibaba.loc[alibaba["unique_id"] == "M0003", ["ds", "y"]].itertuples(index=False)
                       if y > 0]}
    history = pd.concat([history_from_rows(rows), nasa], ignore_index=True)
    settings = ForecastSettings(gap_fill="zero")  # this store keeps only non-zero minutes
    run = forecast_endpoints(history, settings, now=dt.datetime(1995, 7, 20, tzinfo=dt.timezone.utc))
    assert run.forecasts["nasa-ksc-www"].step_s == 60
    assert "sparse" not in run.forecasts  # no history in the window: nothing to forecast
    run = forecast_endpoints(history, settings, now=dt.datetime(2024, 11, 29, tzinfo=dt.timezone.utc))
    f = run.forecasts["sparse"]
    assert f.step_s == 900 and f.demand.step_s == 60 and len(f.demand) == 360
