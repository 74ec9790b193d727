"""The modal provider with the real `modal` client against a local gRPC fake of Modal's
control plane (the RPCs from modal_proto, served by grpclib on 127.0.0.1)."""
from __future__ import annotations

import logging
import sys

import pytest
from pydantic import ValidationError

from prewarm.providers import registry
from prewarm.providers.base import EndpointRef, ProviderError

pytest.importorskip("modal")  # installed by the test extra; the provider needs prewarm[modal]
from grpclib import Status  # noqa: E402
from fake_modal import TOKEN_ID, TOKEN_SECRET, ModalFake  # noqa: E402
from fake_http import warmups_held  # noqa: E402


@pytest.fixture
def modal_api(monkeypatch):
    fake = ModalFake().start()
    monkeypatch.setenv("MODAL_SERVER_URL", fake.url)
    monkeypatch.setenv("MODAL_TOKEN_ID", TOKEN_ID)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", TOKEN_SECRET)
    yield fake
    fake.stop()


def make(ref=None, **keys):
    raw = {"kind": "modal", "app_name": "llm", "function_name": "generate", "retry_deadline_s": 5.0, **keys}
    return registry.create(raw, ref or EndpointRef("chat", 0, 10))


def test_min_containers_and_scaledown_window_idempotent(modal_api):
    provider = make()
    with warmups_held():  # the new containers stay unready until the block ends
        result = provider.apply(2, idle_timeout_s=120)
        assert (result.changed, result.previous, result.target, result.idle_timeout_s) == (True, 0, 2, 120.0)
        assert modal_api.settings["min_containers"] == 2 and modal_api.settings["scaledown_window"] == 120
        assert not provider.apply(2, idle_timeout_s=120).changed
        assert modal_api.updates == [{"min_containers": 2, "scaledown_window": 120}]  # one write
        pending = provider.wait_ready(2, timeout_s=0.3, poll_s=0.05)
        assert not pending.ready and pending.state.ready == 0  # it waits for readiness
    report = provider.wait_ready(2, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 2
    # Only the window differs: the update carries only it; an out-of-range window is bounded.
    provider.apply(2, idle_timeout_s=7200)
    assert modal_api.updates[-1] == {"scaledown_window": 3600}
    provider.close()


def test_clamped_and_limited_by_max_containers(modal_api):
    assert make(EndpointRef("chat", 1, 3)).apply(0).target == 1
    assert modal_api.settings["min_containers"] == 1
    result = make(EndpointRef("chat", 0, 100)).apply(50)
    assert result.target == 6 and result.detail["limited_by_provider_max"] == 6
    assert modal_api.settings["min_containers"] == 6


def test_resource_exhausted_is_retried_and_applied_once(modal_api):
    modal_api.faults.append(("FunctionUpdateSchedulingParams", Status.RESOURCE_EXHAUSTED))
    assert make().apply(3).changed
    assert modal_api.settings["min_containers"] == 3
    assert modal_api.calls.count("FunctionUpdateSchedulingParams") == 2
    assert len(modal_api.updates) == 1


def test_bad_token_is_an_auth_error_not_retried(modal_api, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "wrong")
    with pytest.raises(ProviderError) as info:
        make().read()
    err = info.value
    assert (err.provider, err.retryable, err.code) == ("modal", False, "modal-AuthError")
    assert modal_api.calls == []  # refused before any RPC ran; and not retried
    assert TOKEN_SECRET not in caplog.text + str(err)


def test_unknown_function_is_not_retried(modal_api):
    provider = make(function_name="nope")
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.code == "modal-NotFoundError" and not info.value.retryable
    assert modal_api.calls == ["FunctionGet"]


def test_half_a_token_pair_and_bad_config(modal_api, monkeypatch):
    monkeypatch.delenv("MODAL_TOKEN_SECRET")
    with pytest.raises(ProviderError, match="MODAL_TOKEN_SECRET"):
        make()
    with pytest.raises(ValidationError, match="min_containers"):
        make(min_containers=1)
    with pytest.raises(ValidationError, match="function_name"):
        registry.create({"kind": "modal", "app_name": "llm"}, EndpointRef("chat"))


def test_missing_package_is_named(modal_api, monkeypatch):
    monkeypatch.setitem(sys.modules, "modal", None)
    with pytest.raises(ProviderError, match=r"prewarm\[modal\]"):
        make()
