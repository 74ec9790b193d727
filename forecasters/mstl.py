"""MSTL: daily and weekly seasons by STL decomposition, the trend by AutoETS.

STL's LOESS smoothers are evaluated at every point by default, which costs ~11 s per series
at 5 minutes and ~245 s at 1 minute (statsforecast 2.1.1, no numba). The `*_jump`
arguments evaluate them every n points and interpolate between: about a tenth of each
smoother's span keeps the decomposition the same to the eye and costs well under a second.
Its own intervals come from the trend model only and cover too little (68-72% at 95% on a
test day), so `mstl` gets the level-scaled calibration layer like every model
(`calibration.py`); `conformal = true` gives statsforecast's conformal intervals instead.
"""
from __future__ import annotations

from .preprocess import DAY_S, WEEK_S
from .sfbase import StatsForecastForecaster


def stl_jumps(season_steps: tuple[int, ...]) -> dict[str, int]:
    shortest = min(season_steps)
    jump = max(1, shortest // 10)
    # statsmodels' default trend span is ~1.5 x period and the low-pass span ~period.
    return dict(seasonal_jump=max(1, jump // 2), trend_jump=max(1, (3 * shortest // 2) // 10),
                low_pass_jump=jump)


class MSTLForecaster(StatsForecastForecaster):
    name = "mstl"
    seasons_s = (DAY_S, WEEK_S)

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import MSTL, AutoETS

        return MSTL(season_length=list(season_steps), trend_forecaster=AutoETS(model="ZZN"),
                    stl_kwargs=stl_jumps(season_steps))
