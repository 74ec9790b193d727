import datetime as dt

import pandas as pd
import pytest

from prewarm.config import ForecastSettings, Settings
from prewarm.errors import ConfigError
from prewarm.forecast_events import ForecastEvent, apply_events
from prewarm.forecasting import forecast_endpoints

FRAME = pd.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4,
                      "ds": list(pd.date_range("2025-03-01 08:00", periods=4, freq="15min")) * 2,
                      "mean": [10.0] * 8, "lo-80": [5.0] * 8, "hi-80": [15.0] * 8})


def test_scale_and_replace_within_window_only():
    launch = ForecastEvent(name="launch", start="2025-03-01T09:15:00+01:00", end="2025-03-01T08:45:00Z",
                           scale=3, endpoints=("a",))
    freeze = ForecastEvent(name="freeze", start="2025-03-01T08:30:00Z", end="2025-03-01T09:00:00Z", value=2.0)
    out, applied = apply_events(FRAME, [launch, freeze], 900)
    a, b = out[out["unique_id"] == "a"], out[out["unique_id"] == "b"]
    assert a["mean"].tolist() == [10.0, 30.0, 30.0, 30.0]  # 08:15-08:45 UTC x3, then replaced
    assert a["hi-80"].tolist()[1] == 45.0
    assert b["mean"].tolist() == [10.0, 10.0, 30.0, 30.0]  # 2 per minute x 15 minutes, b not launched
    assert b["lo-80"].tolist()[2] == b["hi-80"].tolist()[2] == 30.0
    assert applied == {"a": ["launch", "freeze"], "b": ["freeze"]}


@pytest.mark.parametrize("event, message", [
    ({"name": "x", "start": "2025-01-02", "end": "2025-01-01", "scale": 2}, "not after start"),
    ({"name": "x", "start": "2025-01-01", "end": "2025-01-02"}, "exactly one of scale or value"),
    ({"name": "x", "start": "2025-01-01", "end": "2025-01-02", "scale": 2, "value": 1}, "exactly one"),
    ({"name": "x", "start": "soon", "end": "2025-01-02", "scale": 2}, "ISO-8601"),
])
def test_bad_events_are_named_in_config_errors(tmp_path, event, message):
    from prewarm import config

    path = tmp_path / "prewarm.toml"
    start = event["start"]
    body = "\n".join(f'{k} = {v!r}'.replace("'", '"') for k, v in event.items() if k != "start")
    path.write_text(f'[[forecast.events]]\nstart = "{start}"\n{body}\n')
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path)
    assert "forecast.events.0" in str(info.value)


def test_events_reach_the_demand_and_say_so(nasa):
    now = dt.datetime(1995, 7, 20, tzinfo=dt.timezone.utc)
    event = {"name": "launch", "start": "1995-07-20T01:00:00Z", "end": "1995-07-20T02:00:00Z", "scale": 10}
    plain = ForecastSettings(resolution="fixed", step_s=300)
    withev = ForecastSettings.model_validate({**plain.model_dump(), "events": [event]})
    a = forecast_endpoints(nasa, plain, now=now).forecasts["nasa-ksc-www"]
    b = forecast_endpoints(nasa, withev, now=now).forecasts["nasa-ksc-www"]
    assert b.events == ("launch",) and a.events == ()
    assert b.demand.mean[60] == pytest.approx(10 * a.demand.mean[60])
    assert b.demand.mean[59] == a.demand.mean[59] and b.demand.mean[120] == a.demand.mean[120]
    assert isinstance(Settings().forecast.events, tuple)
