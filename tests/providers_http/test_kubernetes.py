"""The kubernetes provider with the real `kubernetes` client against a local API server fake."""
from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import ValidationError

from prewarm.providers import registry
from prewarm.providers.base import EndpointRef, ProviderError
from fake_kube import KUBE_TOKEN, KubeFake
from fake_http import FakeTime, warmups_held

SCALE = "/apis/apps/v1/namespaces/ml/deployments/chat/scale"


@pytest.fixture
def kube(monkeypatch):
    fake = KubeFake("ml")
    fake.add_workload("deployments", "chat", 1)
    fake.add_workload("statefulsets", "shard", 0)
    fake.add_workload("deployments", "chat-keda", 0)
    fake.add_scaledobject("chat-so", "chat-keda", maxReplicaCount=4)
    fake.add_knative_service("chat-kn", {"autoscaling.knative.dev/minScale": "0",
                                         "autoscaling.knative.dev/max-scale": "5"})
    monkeypatch.setenv("KUBE_TOKEN", KUBE_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(kube, tmp_path):
    """A kubeconfig whose current context has a bad token; the `fake` context is the right one."""
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({  # JSON is YAML
        "apiVersion": "v1", "kind": "Config", "current-context": "stale",
        "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
        "users": [{"name": "ok", "user": {"token": KUBE_TOKEN}}, {"name": "bad", "user": {"token": "expired"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ok"}},
                     {"name": "stale", "context": {"cluster": "fake", "user": "bad"}}]}))
    return str(path)


def make(kube, ref=None, *, time: FakeTime | None = None, **keys):
    raw = {"kind": "kubernetes", "namespace": "ml", "name": "chat", "server": kube.url,
           "token_env": "KUBE_TOKEN", "retry_deadline_s": 5.0, **keys}
    if time is None:
        return registry.create(raw, ref or EndpointRef("chat", 0, 10))
    cls = registry.load_class("kubernetes")
    return cls(cls.Config.model_validate(raw), ref or EndpointRef("chat", 0, 10), clock=time.clock,
               sleep=time.sleep)


def test_deployment_through_kubeconfig_context(kube, kubeconfig):
    provider = registry.create({"kind": "kubernetes", "namespace": "ml", "name": "chat",
                                "kubeconfig": kubeconfig, "context": "fake"}, EndpointRef("chat", 0, 10))
    assert provider.read().desired == 1
    with warmups_held():  # the new replicas stay unready until the block ends
        result = provider.apply(3)
        assert (result.changed, result.previous, result.target) == (True, 1, 3)
        assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 3
        patch = kube.calls("PATCH", "/scale")[0]
        assert patch.headers["Content-Type"] == "application/merge-patch+json"
        assert patch.body == {"spec": {"replicas": 3}}
        assert not provider.apply(3).changed
        assert len(kube.calls("PATCH")) == 1
        pending = provider.wait_ready(3, timeout_s=0.3, poll_s=0.05)
        assert not pending.ready and pending.state.ready == 1  # it waits for readiness
    report = provider.wait_ready(3, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 3
    provider.close()


def test_current_context_with_a_bad_token_is_an_auth_error_not_retried(kube, kubeconfig):
    provider = registry.create({"kind": "kubernetes", "namespace": "ml", "name": "chat",
                                "kubeconfig": kubeconfig}, EndpointRef("chat"))
    with pytest.raises(ProviderError) as info:
        provider.apply(2)
    assert (info.value.code, info.value.retryable, info.value.provider) == ("http-401", False, "kubernetes")
    assert len(kube.log) == 1
    assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 1


def test_statefulset_scale_and_clamp(kube):
    provider = make(kube, EndpointRef("chat", 1, 2), target="statefulset", name="shard")
    assert provider.apply(7).target == 2
    assert kube.workloads[("statefulsets", "shard")]["spec"]["replicas"] == 2
    assert provider.apply(0).target == 1
    assert kube.workloads[("statefulsets", "shard")]["spec"]["replicas"] == 1


def test_throttled_patch_is_retried_after_retry_after_and_lands_once(kube):
    kube.fail_next("PATCH", SCALE, 429, kube.error(429, "too many requests").body, headers={"Retry-After": "1"})
    waits = FakeTime()
    provider = make(kube, time=waits)
    assert provider.apply(2).changed
    assert len(waits.slept) == 1 and waits.slept[0] >= 1.0  # as long as Retry-After asked
    assert len(kube.calls("PATCH")) == 2
    assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 2


def test_conflict_and_server_errors_are_retried(kube):
    kube.fail_next("PATCH", SCALE, 409, kube.error(409, "the object has been modified").body)
    kube.fail_next("GET", SCALE, 500, kube.error(500, "etcd timeout").body)
    provider = make(kube)
    assert provider.apply(4).changed
    assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 4


def test_missing_object_is_not_retried(kube):
    provider = make(kube, name="nope")
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.code == "http-404" and not info.value.retryable and "not found" in str(info.value)
    assert len(kube.log) == 1


def test_connection_refused_is_retryable(kube):
    provider = make(kube, retry_deadline_s=0.3)
    kube.stop()
    with pytest.raises(ProviderError) as info:
        provider.read()
    assert info.value.retryable and info.value.code == "connection"


def test_keda_min_replica_count_and_cooldown(kube):
    provider = make(kube, target="keda", name="chat-so")
    before = provider.read()
    assert (before.desired, before.idle_timeout_s) == (0, 300.0)  # KEDA defaults
    result = provider.apply(2, idle_timeout_s=120)
    spec = kube.scaledobjects["chat-so"]["spec"]
    assert (spec["minReplicaCount"], spec["cooldownPeriod"], result.idle_timeout_s) == (2, 120, 120.0)
    assert spec["triggers"]  # a merge patch leaves the rest of the spec alone
    report = provider.wait_ready(2, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 2  # readiness of the scaled Deployment
    assert not provider.apply(2, idle_timeout_s=120).changed
    assert provider.apply(9).target == 4  # maxReplicaCount of the ScaledObject
    assert kube.scaledobjects["chat-so"]["spec"]["minReplicaCount"] == 4


def test_knative_min_scale_annotation_rolls_a_revision(kube):
    provider = make(kube, target="knative", name="chat-kn")
    assert provider.read().desired == 0
    result = provider.apply(2, idle_timeout_s=90)
    notes = kube.services["chat-kn"]["spec"]["template"]["metadata"]["annotations"]
    assert notes["autoscaling.knative.dev/min-scale"] == "2"
    assert "autoscaling.knative.dev/minScale" not in notes  # the legacy spelling is replaced
    assert notes["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] == "90s"
    assert result.idle_timeout_s == 90.0
    state = provider.read()
    assert state.detail["latestCreatedRevisionName"] == "chat-kn-00002"
    assert state.ready == 0  # the old revision still serves until the new one is ready
    report = provider.wait_ready(2, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.detail["latestReadyRevisionName"] == "chat-kn-00002"
    assert not provider.apply(2, idle_timeout_s=90).changed
    assert provider.apply(8).target == 5  # max-scale annotation
    assert kube.calls("PATCH")[0].headers["Content-Type"] == "application/merge-patch+json"


def test_token_never_in_repr_or_logs(kube, caplog):
    caplog.set_level(logging.DEBUG)
    provider = make(kube)
    provider.apply(2)
    kube.fail_next("GET", SCALE, 401, kube.error(401, "Unauthorized").body)
    with pytest.raises(ProviderError) as info:
        provider.read()
    for text in (repr(provider), repr(provider.config), caplog.text, str(info.value)):
        assert KUBE_TOKEN not in text


@pytest.mark.parametrize("keys,where", [
    ({"target": "daemonset"}, "target"),
    ({"server": "http://x", "kubeconfig": "/k"}, "server"),
    ({"server": None, "token_env": "T"}, "token_env"),
    ({"namespace": ""}, "namespace"),
    ({"replicas": 3}, "replicas"),
])
def test_bad_config_names_the_key(kube, keys, where):
    with pytest.raises(ValidationError) as info:
        make(kube, **keys)
    assert where in str(info.value)


def test_missing_token_variable_and_missing_package(kube, monkeypatch):
    monkeypatch.delenv("KUBE_TOKEN")
    with pytest.raises(ProviderError, match="KUBE_TOKEN"):
        make(kube)
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if the extra were not installed
    with pytest.raises(ProviderError, match=r"prewarm\[kubernetes\]") as info:
        make(kube)
    assert info.value.code == "missing-dependency"


# -- a Deployment with a HorizontalPodAutoscaler ----------------------------------------------
def test_deployment_with_an_hpa_is_refused_not_overwritten(kube):
    kube.add_hpa("chat-hpa", "chat", min_replicas=1, max_replicas=6, wants=1)
    provider = make(kube)
    (finding,) = provider.check()
    assert finding.level == "error" and "HorizontalPodAutoscaler ml/chat-hpa" in finding.message
    assert 'hpa = "min-replicas"' in finding.message
    with pytest.raises(ProviderError) as info:
        provider.apply(3)
    assert (info.value.code, info.value.retryable) == ("hpa", False)
    assert not kube.calls("PATCH")  # nothing written that the HPA would undo
    assert provider.read().detail["hpa"] == "chat-hpa"


def test_deployment_with_an_hpa_warms_through_min_replicas(kube):
    kube.add_hpa("chat-hpa", "chat", max_replicas=4, wants=1)  # minReplicas unset: 1
    provider = make(kube, hpa="min-replicas")
    assert provider.read().desired == 1
    result = provider.apply(3)
    assert (result.changed, result.previous, result.target) == (True, 1, 3)
    assert kube.hpas["chat-hpa"]["spec"]["minReplicas"] == 3
    assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 3  # the HPA's floor holds
    assert not kube.calls("PATCH", "/scale")
    assert provider.wait_ready(3, timeout_s=30, poll_s=0.05).ready
    assert not provider.apply(3).changed
    assert provider.apply(9).target == 4  # the HPA's maxReplicas
    low = provider.apply(0)  # the API refuses minReplicas 0 without the alpha gate: keep 1
    assert low.target == 1 and low.detail["raised_to_api_minimum"] == 1
    assert kube.hpas["chat-hpa"]["spec"]["minReplicas"] == 1


def test_the_fake_hpa_refuses_what_the_api_refuses(kube):
    kube.add_hpa("chat-hpa", "chat", max_replicas=4)
    path = "/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers/chat-hpa"
    from fake_http import Request
    for body, field in (({"spec": {"minReplicas": 0}}, "spec.minReplicas"),
                        ({"spec": {"minReplicas": 5}}, "spec.maxReplicas")):
        req = Request("PATCH", path, {"Content-Type": "application/merge-patch+json"}, body, b"")
        req.match = {"ns": "ml", "name": "chat-hpa"}
        answer = kube.patch_hpa(req)
        assert answer.status == 422 and field in answer.body["message"]


def test_hpa_option_is_refused_for_other_targets(kube):
    with pytest.raises(ValidationError, match="hpa"):
        make(kube, target="keda", name="chat-so", hpa="min-replicas")


# -- Knative traffic ---------------------------------------------------------------------------
def _pin(kube, service: str, traffic: list[dict]) -> None:
    provider = make(kube, target="knative", name=service)
    provider._service({"spec": {"traffic": traffic}})  # as an operator's kubectl patch would
    provider.close()


def test_knative_readiness_follows_the_revisions_that_get_traffic(kube):
    provider = make(kube, target="knative", name="chat-kn")
    provider.apply(2)
    assert provider.wait_ready(2, timeout_s=30, poll_s=0.05).ready  # chat-kn-00002 serves
    _pin(kube, "chat-kn", [{"revisionName": "chat-kn-00001", "percent": 100},
                           {"latestRevision": True, "percent": 0, "tag": "latest"}])
    state = provider.read()
    # All traffic goes to 00001 (min-scale 0: nothing warm), not to the latest ready 00002.
    assert state.detail["latestReadyRevisionName"] == "chat-kn-00002"
    assert state.detail["traffic"] == [{"revision": "chat-kn-00001", "percent": 100, "latest": False}]
    assert state.ready == 0
    (finding,) = provider.check()
    assert finding.level == "error" and "chat-kn-00001 (100%)" in finding.message
    before = len(kube.calls("PATCH"))
    with pytest.raises(ProviderError) as info:
        provider.apply(3)  # would warm a new revision that gets no traffic
    assert (info.value.code, info.value.retryable) == ("traffic-pinned", False)
    assert len(kube.calls("PATCH")) == before


def test_knative_split_traffic_counts_each_serving_revision(kube):
    provider = make(kube, target="knative", name="chat-kn")
    provider.apply(2)
    assert provider.wait_ready(2, timeout_s=30, poll_s=0.05).ready
    _pin(kube, "chat-kn", [{"revisionName": "chat-kn-00001", "percent": 20},
                           {"latestRevision": True, "percent": 80}])
    state = provider.read()
    assert {t["revision"]: t["percent"] for t in state.detail["traffic"]} == {
        "chat-kn-00001": 20, "chat-kn-00002": 80}
    assert state.ready == 2  # 00002's two replicas + 00001's none
    (finding,) = provider.check()
    assert finding.level == "warning" and "20%" in finding.message
    assert provider.apply(3).changed  # the latest revision still gets traffic: warm it


def test_the_fake_refuses_an_invalid_traffic_block(kube):
    provider = make(kube, target="knative", name="chat-kn")
    for traffic in ([{"latestRevision": True, "percent": 60}],
                    [{"latestRevision": True, "revisionName": "chat-kn-00001", "percent": 100}]):
        with pytest.raises(ProviderError) as info:
            provider._service({"spec": {"traffic": traffic}})
        assert info.value.code == "http-400" and "validation failed" in str(info.value)


def test_without_rbac_to_list_hpas_the_deployment_is_driven_and_check_warns(kube):
    kube.fail_next("GET", "/horizontalpodautoscalers", 403,
                   kube.error(403, 'horizontalpodautoscalers.autoscaling is forbidden: User "prewarm" '
                                   'cannot list resource "horizontalpodautoscalers"').body, times=2)
    provider = make(kube)
    (finding,) = provider.check()
    assert finding.level == "warning" and "grant list on horizontalpodautoscalers" in finding.message
    assert provider.apply(2).changed  # driven as before (fail warm: no refusal on a guess)
    assert kube.workloads[("deployments", "chat")]["spec"]["replicas"] == 2
