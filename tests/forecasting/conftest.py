"""Real traces as long frames (unique_id, ds naive UTC, y per minute), read once."""
from __future__ import annotations

from pathlib import Path

import pytest

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"


@pytest.fixture(scope="session")
def nasa():
    from prewarm.forecasting import history_from_csv
    return history_from_csv(str(TRACES / "nasa_http_1995" / "per_minute.csv"))


@pytest.fixture(scope="session")
def alibaba():
    from prewarm.forecasting import history_from_csv
    return history_from_csv(str(TRACES / "alibaba_genai_2026" / "per_minute.csv"))


@pytest.fixture(scope="session")
def azure():
    from prewarm.forecasting import history_from_csv
    return history_from_csv(str(TRACES / "azure_llm_2023" / "per_minute.csv"))


def at_step(frame, step_s):
    from prewarm.forecasters.resolution import aggregate
    return aggregate(frame, 60, step_s)
