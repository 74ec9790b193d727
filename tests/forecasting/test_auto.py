import datetime as dt

import pytest

from prewarm.config import ForecastSettings
from prewarm.forecasters.auto import ModelChoice, choose_models, pick
from prewarm.forecasting import forecast_endpoints

from .conftest import at_step

NOW = dt.datetime(2024, 11, 29, tzinfo=dt.timezone.utc)


def test_pick_prefers_calibrated_then_pinball():
    scores = {"narrow": {"pinball": 1.0, "coverage-80": 0.55, "coverage-95": 0.7},
              "good": {"pinball": 1.5, "coverage-80": 0.78, "coverage-95": 0.93},
              "wide": {"pinball": 1.4, "coverage-80": 0.99, "coverage-95": 1.0}}
    assert pick(scores, (80, 95), 0.05) == "good"
    del scores["good"]
    assert pick(scores, (80, 95), 0.05) == "wide"  # closer to nominal than 'narrow'
    assert pick({}, (80, 95), 0.05) is None


def test_choice_on_sparse_alibaba_beats_seasonal_naive_in_cv(alibaba):
    history = at_step(alibaba[alibaba["unique_id"].isin(["M0002", "__all__"])
                              & (alibaba["ds"] < "2024-11-29")], 900)
    choices = choose_models(history, step_s=900, horizon=24, now=NOW, n_windows=4)
    for uid, choice in choices.items():
        chosen = choice.scores[next(k for k in choice.scores if k.startswith(choice.model)
                                    and ("conformal" in k) == bool(choice.params))]
        assert chosen["pinball"] <= choice.scores["seasonal-naive"]["pinball"] * 1.25
        assert {"croston-sba", "tsb", "imapa", "adida"} <= set(choice.scores)  # sparse candidates
        assert choice.step_s == 900 and choice.chosen_at == NOW


def test_choice_round_trips_through_its_row_and_goes_stale():
    choice = ModelChoice("e", "mstl", 300, NOW, {"conformal": True},
                         {"mstl": {"pinball": 1.0, "coverage-80": float("nan")}})
    again = ModelChoice.from_row("e", "mstl", 300, NOW, choice.scores_json())
    assert again.params == {"conformal": True} and again.scores["mstl"]["coverage-80"] is None
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
