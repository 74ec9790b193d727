"""RunPod, Hugging Face Inference Endpoints, Replicate and Baseten against local fakes of their
REST APIs: real HTTP (httpx for RunPod and HF, the vendors' official clients for Replicate and
Baseten), end state asserted on the fake's side."""
from __future__ import annotations

import logging
import sys

import pytest
from pydantic import ValidationError

from prewarm.providers import registry
from prewarm.providers.base import EndpointRef, ProviderError
from fake_http import FakeTime, warmups_held
from fake_vendors import TOKEN

FAST = {"retry_deadline_s": 5.0, "timeout_s": 5.0}


def make(kind: str, fake, ref: EndpointRef | None = None, *, time: FakeTime | None = None, **keys):
    urls = {"runpod": {"rest_url": f"{fake.url}/v1", "serverless_url": f"{fake.url}/v2"},
            "hf-endpoints": {"api_url": f"{fake.url}/v2"},
            "replicate": {"api_url": fake.url},  # the SDKs add /v1 themselves
            "baseten": {"api_url": fake.url}}[kind]
    base = {"runpod": {"endpoint_id": "jpnw0v75y3qoql"},
            "hf-endpoints": {"namespace": "acme", "endpoint_name": "chat"},
            "replicate": {"owner": "acme", "deployment": "image-gen"},
            "baseten": {"model_id": "abc123", "deployment": "def456"}}[kind]
    raw = {"kind": kind, **base, **urls, **FAST, **keys}
    if time is None:
        return registry.create(raw, ref or EndpointRef("chat", 0, 10))
    cls = registry.load_class(kind)  # every HTTP provider takes the clock and sleep its retries use
    return cls(cls.Config.model_validate(raw), ref or EndpointRef("chat", 0, 10), clock=time.clock,
               sleep=time.sleep)


def desired_on_server(kind: str, fake) -> int:
    if kind == "runpod":
        return fake.endpoints["jpnw0v75y3qoql"]["workersMin"]
    if kind == "hf-endpoints":
        return fake.endpoint["compute"]["scaling"]["minReplica"]
    if kind == "replicate":
        return fake.deployment["current_release"]["configuration"]["min_instances"]
    return fake.settings["min_replica"]


WRITE = {"runpod": ("PATCH", "/v1/endpoints"), "hf-endpoints": ("PUT", "/v2/endpoint"),
         "replicate": ("PATCH", "/v1/deployments"), "baseten": ("PATCH", "autoscaling_settings")}
FIXTURE = {"runpod": "runpod_api", "hf-endpoints": "hf_api", "replicate": "replicate_api",
           "baseten": "baseten_api"}
KINDS = list(FIXTURE)


@pytest.fixture(params=KINDS)
def kind_and_fake(request):
    return request.param, request.getfixturevalue(FIXTURE[request.param])


def writes(kind, fake):
    method, path = WRITE[kind]
    return fake.calls(method, path)


def test_apply_sets_target_and_is_idempotent(kind_and_fake):
    kind, fake = kind_and_fake
    provider = make(kind, fake)
    first = provider.apply(3)
    assert (first.changed, first.previous, first.target) == (True, 0, 3)
    assert desired_on_server(kind, fake) == 3
    second = provider.apply(3)
    assert (second.changed, second.previous) == (False, 3)
    assert len(writes(kind, fake)) == 1  # read first; equal -> no second write
    assert provider.read().desired == 3
    provider.close()


def test_target_is_clamped_before_any_call(kind_and_fake):
    kind, fake = kind_and_fake
    provider = make(kind, fake, EndpointRef("chat", min_workers=1, max_workers=2))
    assert provider.apply(9).target == 2
    assert desired_on_server(kind, fake) == 2
    assert provider.apply(0).target == 1
    assert desired_on_server(kind, fake) == 1


def test_target_above_vendor_maximum_is_cut_to_it_and_reported(kind_and_fake):
    kind, fake = kind_and_fake
    provider = make(kind, fake, EndpointRef("chat", 0, 100))
    result = provider.apply(50)
    vendor_max = {"runpod": 3, "hf-endpoints": 4, "replicate": 5, "baseten": 7}[kind]
    assert result.target == vendor_max and result.detail["limited_by_provider_max"] == vendor_max
    assert desired_on_server(kind, fake) == vendor_max


def test_throttling_is_retried_honouring_retry_after_and_applied_once(kind_and_fake):
    kind, fake = kind_and_fake
    method, path = WRITE[kind]
    fake.fail_next(method, path, 429, fake.error(429, "Request was throttled").body,
                   headers={"Retry-After": "1"})
    waits = FakeTime()
    provider = make(kind, fake, time=waits)
    assert provider.apply(2).changed
    assert len(waits.slept) == 1 and waits.slept[0] >= 1.0  # waited as long as the server asked
    assert len(writes(kind, fake)) == 2  # the throttled attempt + the one that landed
    assert desired_on_server(kind, fake) == 2


def test_server_errors_are_retried(kind_and_fake):
    kind, fake = kind_and_fake
    fake.fail_next("GET", "/", 503, fake.error(503, "upstream unavailable").body, times=2)
    provider = make(kind, fake)
    assert provider.apply(1).changed
    assert desired_on_server(kind, fake) == 1


def test_retry_after_beyond_deadline_gives_up_at_once(kind_and_fake):
    kind, fake = kind_and_fake
    fake.fail_next("GET", "/", 429, fake.error(429, "slow down").body, headers={"Retry-After": "120"})
    waits = FakeTime()
    provider = make(kind, fake, retry_deadline_s=3.0, time=waits)
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.retryable and info.value.code == "http-429"
    assert waits.slept == []  # not the 120 s the server asked for: given up at once


@pytest.mark.parametrize("kind", KINDS)
def test_auth_errors_are_not_retried_and_hide_the_token(kind, request, monkeypatch, caplog):
    fake = request.getfixturevalue(FIXTURE[kind])
    env = {"runpod": "RUNPOD_API_KEY", "hf-endpoints": "HF_TOKEN", "replicate": "REPLICATE_API_TOKEN",
           "baseten": "BASETEN_API_KEY"}[kind]
    monkeypatch.setenv(env, "wrong-token")
    caplog.set_level(logging.DEBUG)
    provider = make(kind, fake)
    with pytest.raises(ProviderError) as info:
        provider.apply(2)
    err = info.value
    assert (err.provider, err.endpoint, err.retryable, err.code) == (kind, "chat", False, "http-401")
    assert len(fake.log) == 1  # not retried
    assert desired_on_server(kind, fake) == 0
    monkeypatch.setenv(env, TOKEN)
    good = make(kind, fake)
    good.apply(1)
    for text in (repr(good), repr(good.config), str(good.__dict__), caplog.text, str(err)):
        assert TOKEN not in text


@pytest.mark.parametrize("kind", KINDS)
def test_missing_token_variable_is_a_config_error_naming_it(kind, request, monkeypatch):
    fake = request.getfixturevalue(FIXTURE[kind])
    with pytest.raises(ProviderError, match="MY_TOKEN_VAR") as info:
        monkeypatch.delenv("MY_TOKEN_VAR", raising=False)
        make(kind, fake, api_token_env="MY_TOKEN_VAR")
    assert info.value.code == "config" and not info.value.retryable


def test_not_found_is_not_retried(runpod_api):
    provider = make("runpod", runpod_api, endpoint_id="nope")
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.code == "http-404" and not info.value.retryable
    assert "endpoint not found" in str(info.value)
    assert len(runpod_api.log) == 1


def test_validation_error_from_the_api_is_not_retried(replicate_api):
    replicate_api.deployment["current_release"]["configuration"]["max_instances"] = -1  # broken on their side
    provider = make("replicate", replicate_api)
    with pytest.raises(ProviderError) as info:
        provider.apply(0 + 1)
    assert info.value.code == "http-422" and "min_instances" in str(info.value)
    assert len(replicate_api.calls("PATCH")) == 1


def test_connection_refused_is_retryable(runpod_api):
    provider = make("runpod", runpod_api, retry_deadline_s=0.5)
    runpod_api.stop()
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.retryable and info.value.code == "connection"


@pytest.mark.parametrize("kind,bad,key", [
    ("runpod", {"endpoint_id": ""}, "endpoint_id"),
    ("runpod", {"workers_min": 2}, "workers_min"),
    ("hf-endpoints", {"namespace": None}, "namespace"),
    ("replicate", {"timeout_s": 0}, "timeout_s"),
    ("baseten", {"deployment": 7}, "deployment"),
])
def test_bad_config_names_the_key(kind, bad, key, request):
    fake = request.getfixturevalue(FIXTURE[kind])
    with pytest.raises(ValidationError) as info:
        make(kind, fake, **bad)
    assert key in str(info.value)


def test_runpod_idle_timeout_and_readiness(runpod_api):
    provider = make("runpod", runpod_api)
    with warmups_held():  # the new workers stay unready until the block ends
        result = provider.apply(2, idle_timeout_s=30)
        assert result.idle_timeout_s == 30
        ep = runpod_api.endpoints["jpnw0v75y3qoql"]
        assert (ep["workersMin"], ep["idleTimeout"], ep["version"]) == (2, 30, 1)
        assert provider.read().ready == 0  # workers still starting
        assert not provider.wait_ready(2, timeout_s=0.3, poll_s=0.05).ready  # it waits for them
    report = provider.wait_ready(2, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 2
    # Only idleTimeout differs: one PATCH carrying only that field.
    provider.apply(2, idle_timeout_s=60)
    assert runpod_api.calls("PATCH")[-1].body == {"idleTimeout": 60}


def test_hf_resumes_a_paused_endpoint_and_sets_scale_to_zero_timeout(monkeypatch):
    from fake_vendors import HfEndpointsFake
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake = HfEndpointsFake(state="paused").start()
    try:
        provider = make("hf-endpoints", fake)
        assert provider.read().detail["state"] == "paused"
        result = provider.apply(1)
        assert result.changed and result.detail["resumed"]
        assert len(fake.calls("POST", "/resume")) == 1
        report = provider.wait_ready(1, timeout_s=30, poll_s=0.05)
        assert report.ready and report.state.detail["state"] == "running"
        # Back to zero with a 10-minute scale-to-zero delay, sent in whole minutes.
        result = provider.apply(0, idle_timeout_s=570)
        assert result.idle_timeout_s == 600
        assert fake.endpoint["compute"]["scaling"] == {"minReplica": 0, "maxReplica": 4, "scaleToZeroTimeout": 10}
        assert not provider.apply(0, idle_timeout_s=600).changed
        assert len(fake.calls("POST", "/resume")) == 1
    finally:
        fake.stop()


def test_replicate_creates_one_release_per_change_and_marks_readiness_unobservable(replicate_api):
    provider = make("replicate", replicate_api)
    result = provider.apply(2)
    assert result.detail["release"] == 2
    provider.apply(2)
    assert replicate_api.deployment["current_release"]["number"] == 2
    state = provider.read()
    assert state.detail["ready_observable"] is False
    assert replicate_api.calls("PATCH")[0].body == {"min_instances": 2}


def test_baseten_sets_min_replica_and_scale_down_delay(baseten_api):
    provider = make("baseten", baseten_api)
    result = provider.apply(1, idle_timeout_s=300)
    assert result.detail["update_status"] == "ACCEPTED"
    assert baseten_api.settings["min_replica"] == 1 and baseten_api.settings["scale_down_delay"] == 300
    assert baseten_api.calls("PATCH")[0].headers["Authorization"].startswith("Api-Key ")
    report = provider.wait_ready(1, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.detail["status"] == "ACTIVE"
    assert not provider.apply(1, idle_timeout_s=300).changed


def test_capabilities_and_config_keys_are_listed():
    for kind in KINDS:
        cls = registry.load_class(kind)
        keys = cls.config_keys()
        assert "api_token_env" in keys and "timeout_s" in keys
        assert cls.kind == kind


def test_replicate_goes_through_the_official_client_without_its_own_retries(replicate_api):
    # The official client sends its own User-Agent; its retry transport would re-send the GET
    # on 429 and sleep the whole Retry-After (120 s here) instead of giving up at once.
    replicate_api.fail_next("GET", "/", 429, replicate_api.error(429, "slow down").body,
                            headers={"Retry-After": "120"}, times=5)
    provider = make("replicate", replicate_api, retry_deadline_s=1.0)
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.code == "http-429" and "slow down" in str(info.value)
    assert len(replicate_api.log) == 1
    assert replicate_api.log[0].headers["User-Agent"].startswith("replicate-python/")


@pytest.mark.parametrize("kind", ["replicate", "baseten"])
def test_sdk_root_url_with_v1_suffix_is_refused_naming_the_key(kind, request):
    fake = request.getfixturevalue(FIXTURE[kind])
    with pytest.raises(ValidationError, match="api_url"):
        make(kind, fake, api_url=f"{fake.url}/v1")


def test_baseten_production_alias_uses_the_alias_paths(baseten_api):
    provider = make("baseten", baseten_api, deployment="production")
    assert provider.apply(2).changed
    assert baseten_api.settings["min_replica"] == 2
    assert baseten_api.calls("GET")[0].path == "/v1/models/abc123/deployments/production"
    assert baseten_api.calls("PATCH")[0].path == "/v1/models/abc123/deployments/production/autoscaling_settings"
    assert baseten_api.calls("PATCH")[0].body == {"min_replica": 2}  # only the field that changes


@pytest.mark.parametrize("kind,module,extra", [("replicate", "replicate", "replicate"),
                                               ("baseten", "baseten.client", "baseten")])
def test_missing_sdk_is_a_clear_error_naming_the_extra(kind, module, extra, request, monkeypatch):
    fake = request.getfixturevalue(FIXTURE[kind])
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when it is not installed
    with pytest.raises(ProviderError, match=rf"prewarm\[{extra}\]") as info:
        make(kind, fake)
    assert info.value.code == "missing-dependency" and not info.value.retryable
