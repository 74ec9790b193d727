"""SageMaker kinds: real-time instance counts against moto; serverless provisioned concurrency
and inference components against the local front (moto does not keep / answers 500)."""
from __future__ import annotations

import uuid

import pytest

from prewarm.providers.base import ProviderError

pytestmark = pytest.mark.moto


def variant(client, endpoint: str) -> dict:
    return client("sagemaker").describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]


def test_endpoint_instance_count(make_provider, front, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    result = provider.apply(3)
    assert (result.changed, result.previous, result.target) == (True, 1, 3)
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 3
    assert provider.wait_ready(3, timeout_s=5, poll_s=0.05).ready
    assert not provider.apply(3).changed
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 1


def test_endpoint_keeps_one_instance_at_zero(make_provider, front, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    provider.apply(2)
    result = provider.apply(0)
    assert result.target == 1 and result.detail["raised_to_api_minimum"] == 1
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 1


def test_endpoint_throttling_json_protocol_is_retried(make_provider, front, moto_client,
                                                      sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    front.fail("UpdateEndpointWeightsAndCapacities", times=2)  # 400 ThrottlingException
    front.fail("DescribeEndpoint", times=1, status=503, code="ServiceUnavailable")
    assert provider.apply(4).changed
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 3
    assert len(provider.sleep.delays) == 3
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 4


def test_unknown_variant_and_endpoint_are_not_retried(make_provider, front, sagemaker_endpoint):
    wrong_variant = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint,
                                  variant_name="blue")
    with pytest.raises(ProviderError) as err:
        wrong_variant.apply(2)
    assert err.value.code == "VariantNotFound" and not err.value.retryable
    missing = make_provider("aws-sagemaker-endpoint", endpoint_name="no-such-endpoint")
    with pytest.raises(ProviderError) as err:
        missing.read()
    assert err.value.code == "ValidationException" and not err.value.retryable
    assert "UpdateEndpointWeightsAndCapacities" not in front.ops and missing.sleep.delays == []


def test_serverless_provisioned_concurrency(make_provider, front, front_client, sagemaker_serverless):
    provider = make_provider("aws-sagemaker-serverless", endpoint_name=sagemaker_serverless)
    assert provider.read().desired == 1
    with front.held():  # the update stays in progress until the block ends
        result = provider.apply(5)
        assert result.changed and result.previous == 1
        got = variant(front_client, sagemaker_serverless)
        assert got["DesiredServerlessConfig"]["ProvisionedConcurrency"] == 5
        assert got["CurrentServerlessConfig"]["ProvisionedConcurrency"] == 1  # still updating
        assert not provider.wait_ready(5, timeout_s=0.3, poll_s=0.05).ready
    report = provider.wait_ready(5, timeout_s=10, poll_s=0.05)
    assert report.ready and report.state.detail["status"] == "InService"
    assert not provider.apply(5).changed
    assert provider.apply(0).target == 1  # the API's range is 1..200: keep 1 (fail warm)
    assert variant(front_client, sagemaker_serverless)["DesiredServerlessConfig"][
        "ProvisionedConcurrency"] == 1


def test_serverless_over_max_concurrency_is_a_validation_error(make_provider, front,
                                                               sagemaker_serverless):
    provider = make_provider("aws-sagemaker-serverless", endpoint_name=sagemaker_serverless)
    with pytest.raises(ProviderError) as err:
        provider.apply(25)  # the variant's MaxConcurrency is 20
    assert err.value.code == "ValidationException" and not err.value.retryable
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 1


@pytest.fixture
def component(front_client, sagemaker_endpoint) -> str:
    name = f"ic-{uuid.uuid4().hex[:8]}"
    front_client("sagemaker").create_inference_component(
        InferenceComponentName=name, EndpointName=sagemaker_endpoint, VariantName="AllTraffic",
        Specification={"ModelName": sagemaker_endpoint,
                       "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024}},
        RuntimeConfig={"CopyCount": 1})
    return name


def test_component_copy_count_down_to_zero(make_provider, front, front_client, component,
                                           sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-component", component_name=component,
                             endpoint_name=sagemaker_endpoint)
    assert provider.wait_ready(1, timeout_s=10, poll_s=0.05).ready  # Creating -> InService
    assert provider.apply(3).changed
    runtime = front_client("sagemaker").describe_inference_component(
        InferenceComponentName=component)["RuntimeConfig"]
    assert runtime["DesiredCopyCount"] == 3
    assert provider.wait_ready(3, timeout_s=10, poll_s=0.05).ready
    assert not provider.apply(3).changed
    assert provider.apply(0).changed
    assert provider.wait_ready(0, timeout_s=10, poll_s=0.05).state.ready == 0
    assert front.ops.count("UpdateInferenceComponentRuntimeConfig") == 2


def test_component_on_another_endpoint_is_refused(make_provider, front, component):
    provider = make_provider("aws-sagemaker-component", component_name=component,
                             endpoint_name="some-other-endpoint")
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert err.value.code == "EndpointMismatch" and not err.value.retryable
    assert "UpdateInferenceComponentRuntimeConfig" not in front.ops
