"""Fixtures: each test gets a fresh fake vendor API on 127.0.0.1 and the token in the env."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the fakes live beside the tests

from fake_vendors import TOKEN, BasetenFake, HfEndpointsFake, ReplicateFake, RunPodFake  # noqa: E402


def _fixture(fake_cls, env: str):
    @pytest.fixture
    def serve(monkeypatch):
        monkeypatch.setenv(env, TOKEN)
        fake = fake_cls().start()
        yield fake
        fake.stop()
    return serve


runpod_api = _fixture(RunPodFake, "RUNPOD_API_KEY")
hf_api = _fixture(HfEndpointsFake, "HF_TOKEN")
replicate_api = _fixture(ReplicateFake, "REPLICATE_API_TOKEN")
baseten_api = _fixture(BasetenFake, "BASETEN_API_KEY")
