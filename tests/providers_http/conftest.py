"""Fixtures: each test gets a fresh fake vendor API on 127.0.0.1 and the token in the env."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the fakes live beside the tests

from fake_vendors import TOKEN, BasetenFake, HfEndpointsFake, ReplicateFake, RunPodFake  # noqa: E402


def _serve(fake, monkeypatch, env: str):
    monkeypatch.setenv(env, TOKEN)
    fake.start()
    return fake


@pytest.fixture
def runpod_api(monkeypatch):
    fake = _serve(RunPodFake(), monkeypatch, "RUNPOD_API_KEY")
    yield fake
    fake.stop()


@pytest.fixture
def hf_api(monkeypatch):
    fake = _serve(HfEndpointsFake(), monkeypatch, "HF_TOKEN")
    yield fake
    fake.stop()


@pytest.fixture
def replicate_api(monkeypatch):
    fake = _serve(ReplicateFake(), monkeypatch, "REPLICATE_API_TOKEN")
    yield fake
    fake.stop()


@pytest.fixture
def baseten_api(monkeypatch):
    fake = _serve(BasetenFake(), monkeypatch, "BASETEN_API_KEY")
    yield fake
    fake.stop()
