import datetime as dt

import pytest

from prewarm.config import ForecastSettings
from prewarm.forecasters.auto import ModelChoice, choose_models, pick
from prewarm.forecasting import forecast_endpoints

from .conftest import at_step

NOW = dt.datetime(2024, 11, 29, tzinfo=dt.timezone.utc)


def test_pick_prefers_calibrated_then_pinball_and_never_loses_to_the_baseline():
    scores = {"narrow": {"pinball": 1.0, "coverage-80": 0.55, "coverage-95": 0.7},
              "good": {"pinball": 1.5, "coverage-80": 0.78, "coverage-95": 0.93},
              "wide": {"pinball": 1.4, "coverage-80": 0.99, "coverage-95": 1.0}}
    assert pick(scores, (80, 95), 0.05) == "good"
    del scores["good"]
    assert pick(scores, (80, 95), 0.05) == "wide"  # closer to nominal than 'narrow'
    assert pick({}, (80, 95), 0.05) is None
    scores = {"seasonal-naive": {"pinball": 1.2, "coverage-80": 0.7, "coverage-95": 0.85},
              "good": {"pinball": 1.5, "coverage-80": 0.8, "coverage-95": 0.95}}
    assert pick(scores, (80, 95), 0.05) == "seasonal-naive"  # calibrated but worse: not taken
    scores["better"] = {"pinball": 1.1, "coverage-80": 0.81, "coverage-95": 0.94}
    assert pick(scores, (80, 95), 0.05) == "better"


def test_choice_on_sparse_alibaba_beats_seasonal_naive_in_cv(alibaba):
    history = at_step(alibaba[alibaba["unique_id"].isin(["M0002", "__all__"])
                              & (alibaba["ds"] < "2024-11-29")], 900)
    choices = choose_models(history, step_s=900, horizon=24, now=NOW, n_windows=4)
    for uid, choice in choices.items():
        # Never worse than seasonal naive on the windows it was chosen on: by construction.
        assert choice.scores[choice.model]["pinball"] <= choice.scores["seasonal-naive"]["pinball"]
        assert {"croston-sba", "tsb", "imapa", "adida"} <= set(choice.scores)  # sparse candidates
        assert choice.step_s == 900 and choice.chosen_at == NOW
        if choice.model != "seasonal-naive":  # calibrated on CV errors: stored with the choice
            assert set(choice.calibration) >= {"kappa", "hi-80", "hi-95"}


def test_choice_round_trips_through_its_row_and_goes_stale():
    choice = ModelChoice("e", "mstl", 300, NOW, {"conformal": True},
                         {"mstl": {"pinball": 1.0, "coverage-80": float("nan")}})
    again = ModelChoice.from_row("e", "mstl", 300, NOW, choice.scores_json())
    assert again.params == {"conformal": True} and again.scores["mstl"]["coverage-80"] is None
    assert again.calibration is None  # choices stored before the calibration layer still load
    assert not choice.is_stale(NOW + dt.timedelta(hours=23), 86400)
    assert choice.is_stale(NOW + dt.timedelta(hours=24), 86400)


def test_stored_choice_is_reused_until_the_refit_interval(alibaba):
    history = alibaba[alibaba["unique_id"] == "M0002"]
    settings = ForecastSettings(model="auto", refit_interval_s=3600)
    stored = {"M0002": ModelChoice("M0002", "tsb", 900, NOW - dt.timedelta(minutes=30))}
    run = forecast_endpoints(history, settings, now=NOW, choices=stored)
    assert run.new_choices == {} and run.forecasts["M0002"].model == "tsb"
    old = {"M0002": ModelChoice("M0002", "tsb", 900, NOW - dt.timedelta(hours=2))}
    run = forecast_endpoints(history, settings, now=NOW, choices=old)
    assert set(run.new_choices) == {"M0002"} and run.new_choices["M0002"].chosen_at == NOW
    assert run.forecasts["M0002"].model == run.new_choices["M0002"].model + "".join(
        f"+{k}" for k in run.new_choices["M0002"].params)


@pytest.mark.parametrize("minutes", [12, 20, 30, 45])
def test_auto_on_minutes_of_history_chooses_without_an_error(azure, minutes):
    """The Azure LLM code trace is under an hour long: at 20 minutes of history no candidate
    has a cross-validation window, and `auto` crashed on the empty frame (KeyError 'lo-80'),
    which the cycle counted as a forecaster error and answered with the fallback at every
    refresh. Too short to score is not a failure: the baseline is chosen, with no scores."""
    history = azure[azure["unique_id"] == "code"]
    origin = history["ds"].min() + dt.timedelta(minutes=minutes)
    now = origin.to_pydatetime().replace(tzinfo=dt.timezone.utc)
    settings = ForecastSettings(model="auto", step_s=60, horizon_s=300)
    run = forecast_endpoints(history, settings, now=now)
    assert run.errors == {}
    forecast = run.forecasts["code"]
    assert "fallback" not in forecast.model
    assert run.new_choices["code"].step_s == 60
    assert len(forecast.demand.series("hi-80")) >= 5
