"""Config: validated at load, errors name the file, the key and what was expected."""
from __future__ import annotations

import pytest

from prewarm import config
from prewarm.errors import ConfigError

GOOD = """
[store]
url = "sqlite:///x.db"
[planner]
scale_in_delay = "5m"
[[endpoints]]
name = "chat"
planner = { speculative = false, scale_in_delay = "2m" }
[endpoints.capacity]
service_time = "23s"
cold_start = "1m"
max_workers = 4
[endpoints.provider]
kind = "dry-run"
initial = 1
"""


def write(tmp_path, text):
    p = tmp_path / "prewarm.toml"
    p.write_text(text)
    return p


def test_good_file_with_durations_and_overrides(tmp_path):
    s = config.load(write(tmp_path, GOOD), env={})
    ep = s.endpoint("chat")
    assert ep.capacity.service_time_s == 23 and ep.capacity.cold_start_s == 60
    assert s.planner.scale_in_delay_s == 300
    per = s.planner_for(ep)
    assert per.speculative is False and per.scale_in_delay_s == 120


def test_durations_take_strings_and_numbers_and_an_override_keeps_its_type(tmp_path):
    text = GOOD + '\n[daemon]\ncycle_interval = 90\nreconcile_interval_s = 7.5\n[forecast]\nstep = "5m"\n'
    s = config.load(write(tmp_path, text.replace('planner = {', 'forecast = { horizon = "1h" }\nplanner = {')),
                    env={"PREWARM_PLANNER__SPECULATIVE": "false"})
    assert s.daemon.cycle_interval_s == 90 and s.daemon.reconcile_interval_s == 7.5
    assert s.forecast.step_s == 300 and s.planner.speculative is False
    assert s.forecast_for(s.endpoint("chat")).horizon_s == 3600
    assert s.planner.smoothing_choices == (3600.0, 7200.0, 10800.0)  # the default
    s = config.load(write(tmp_path, text.replace('[planner]', '[planner]\nsmoothing_choices = ["3h", 1800, "1h"]')),
                    env={})
    assert s.planner.smoothing_choices == (1800.0, 3600.0, 10800.0)


@pytest.mark.parametrize("text, key, expected", [
    (GOOD.replace('max_workers = 4', 'max_workers = "four"'), "endpoints.0.capacity.max_workers", "valid integer"),
    (GOOD.replace('cold_start = "1m"', 'cold_start = "soon"'), "endpoints.0.capacity", "duration"),
    (GOOD.replace('initial = 1', 'initial = 1\nregion = "x"'), "endpoints[0] (chat).provider.region", "Extra inputs"),
    (GOOD.replace('kind = "dry-run"', 'kind = "nimbus"'), "endpoints[0] (chat).provider.kind", "unknown provider kind 'nimbus'"),
    (GOOD.replace('[planner]', '[planner]\nquantile = "p90"'), "planner.quantile", "hi-80"),
    (GOOD + '\n[metrics]\naddress = "nowhere"\n', "metrics.address", "HOST:PORT"),
    (GOOD.replace('planner = { speculative = false', 'planner = { speculative = "maybe"'),
     "endpoints.chat.planner.speculative", "boolean"),
    (GOOD + GOOD[GOOD.index("[[endpoints]]"):], "endpoints", "appears twice"),
    # Intervals and delays that would spin the scheduler or mean nothing.
    (GOOD + '\n[daemon]\ncycle_interval = "0s"\n', "daemon.cycle_interval_s", "greater than 0"),
    (GOOD + '\n[daemon]\nreconcile_interval_s = -30\n', "daemon.reconcile_interval_s", "greater than 0"),
    (GOOD + '\n[daemon]\nretention = "0s"\n', "daemon.retention_s", "greater than 0"),
    (GOOD + '\n[forecast]\nhorizon = "0s"\n', "forecast.horizon_s", "greater than 0"),
    (GOOD + '\n[forecast]\nstep = "7m"\n', "forecast.step_s", "divide a day"),
    (GOOD + '\n[forecast]\nstep_s = 90\n', "forecast.step_s", "whole minutes"),
    (GOOD.replace('scale_in_delay = "5m"', 'scale_in_delay_s = -1'), "planner.scale_in_delay_s", "greater than or equal to 0"),
    # Strict types: no value of another kind is coerced (true was 1 s, "off" was false).
    (GOOD + '\n[daemon]\ncycle_interval = true\n', "daemon.cycle_interval", "expected a duration"),
    (GOOD.replace('scale_in_delay = "5m"', 'speculative = "off"'), "planner.speculative", "valid boolean"),
    (GOOD.replace('scale_in_delay = "5m"', 'floor = true'), "planner.floor", "valid integer"),
    (GOOD.replace('max_workers = 4', 'max_workers = "4"'), "endpoints.0.capacity.max_workers", "valid integer"),
    (GOOD + '\n[metrics]\nenabled = 1\n', "metrics.enabled", "valid boolean"),
    (GOOD + '\n[daemon]\nrefresh_processes = 1.5\n', "daemon.refresh_processes", "valid integer"),
    (GOOD + '\n[forecast]\nlevels = [80, true]\n', "forecast.levels", "integers"),
    (GOOD.replace('[planner]', '[planner]\nsmoothing_choices = ["1h", "60m"]'), "planner.smoothing_choices",
     "listed twice"),
    (GOOD.replace('[planner]', '[planner]\nsmoothing_choices = ["1h", "soon"]'), "planner.smoothing_choices",
     "expected a duration"),
    (GOOD.replace('[planner]', '[planner]\nsmoothing_choices = "2h"'), "planner.smoothing_choices",
     "a list of durations"),
    # A provider's own schema: provisioned concurrency exists on an alias or a published version only.
    (GOOD.replace('kind = "dry-run"\ninitial = 1', 'kind = "aws-lambda"\nfunction_name = "chat"\nqualifier = "$LATEST"'),
     "endpoints[0] (chat).provider.qualifier", "cannot be set on $LATEST (the unpublished version): publish a version"),
    # Plugin names are checked at load against the installed entry points.
    (GOOD + '\n[forecast]\nmodel = "seasonal-meen"\n', "forecast.model",
     "unknown forecaster 'seasonal-meen' (installed: "),
    (GOOD.replace('planner = {', 'forecast = { model = "nope" }\nplanner = {'), "endpoints[0] (chat).forecast.model",
     "unknown forecaster 'nope'"),
])
def test_bad_file_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path, env={})
    msg = str(err.value)
    assert str(path) in msg and key in msg and expected in msg, msg
    assert err.value.exit_code == 2


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[store\n"), env={})
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "nope.toml", env={})


def test_environment_overrides_and_secrets(tmp_path):
    text = GOOD.replace('url = "sqlite:///x.db"', 'url = "postgresql://app:${DB_PASSWORD}@db/prewarm"')
    s = config.load(write(tmp_path, text), env={"DB_PASSWORD": "s3cret", "PREWARM_METRICS__ADDRESS": "0.0.0.0:9000",
                                                 "PREWARM_PLANNER__SPECULATIVE": "false"})
    assert s.store.url == "postgresql://app:s3cret@db/prewarm"
    assert s.metrics.address == "0.0.0.0:9000" and s.planner.speculative is False
    with pytest.raises(ConfigError, match="DB_PASSWORD is not set"):
        config.load(write(tmp_path, text), env={})


def test_no_file_gives_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = config.load(env={})
    assert s.store.url == "sqlite:///prewarm.db" and s.endpoints == ()


def test_history_query_must_bind_start_and_end(tmp_path):
    text = GOOD + '\n[endpoints.history]\nurl = "sqlite:///h.db"\nquery = "select ts, requests from t"\n'
    with pytest.raises(ConfigError, match=r"endpoints.0.history.query: .*:start, :end"):
        config.load(write(tmp_path, text), env={})
