"""Intermittent-demand models for sparse series (most steps zero): CrostonSBA, ADIDA,
IMAPA and TSB from statsforecast. They forecast a flat rate (size of a demand x its
probability) and have no intervals of their own: bands come from the calibration layer
(conformal ones with `calibration = "model"`).
They need no season, so they also serve short histories.
"""
from __future__ import annotations

from .sfbase import StatsForecastForecaster


class _Intermittent(StatsForecastForecaster):
    seasons_s = ()
    own_intervals = False


class CrostonSBAForecaster(_Intermittent):
    name = "croston-sba"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import CrostonSBA
        return CrostonSBA()


class ADIDAForecaster(_Intermittent):
    name = "adida"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import ADIDA
        return ADIDA()


class IMAPAForecaster(_Intermittent):
    name = "imapa"

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import IMAPA
        return IMAPA()


class TSBForecaster(_Intermittent):
    name = "tsb"

    def __init__(self, alpha_d: float = 0.2, alpha_p: float = 0.2, **params) -> None:
        super().__init__(alpha_d=alpha_d, alpha_p=alpha_p, **params)
        self.alpha_d, self.alpha_p = float(alpha_d), float(alpha_p)

    def build(self, season_steps, *, step_s, horizon):
        from statsforecast.models import TSB
        return TSB(alpha_d=self.alpha_d, alpha_p=self.alpha_p)
