"""SageMaker kinds: real-time instance counts against moto; serverless provisioned concurrency
and inference components against the local front (moto does not keep / answers 500)."""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from prewarm.providers.base import EndpointRef, ProviderError, retry_call
from prewarm.providers.checks import check_endpoints

pytestmark = pytest.mark.moto


def variant(client, endpoint: str) -> dict:
    return client("sagemaker").describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]


def test_endpoint_instance_count(make_provider, front, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    result = provider.apply(3)
    assert (result.changed, result.previous, result.target) == (True, 1, 3)
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 3
    assert provider.wait_ready(3, timeout_s=30, poll_s=0.05).ready
    assert not provider.apply(3).changed
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 1


def test_endpoint_keeps_one_instance_at_zero(make_provider, front, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    provider.apply(2)
    assert provider.wait_ready(2, timeout_s=30, poll_s=0.05).ready  # Updating -> InService
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
    report = provider.wait_ready(5, timeout_s=30, poll_s=0.05)
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
    assert provider.wait_ready(1, timeout_s=30, poll_s=0.05).ready  # Creating -> InService
    assert provider.apply(3).changed
    runtime = front_client("sagemaker").describe_inference_component(
        InferenceComponentName=component)["RuntimeConfig"]
    assert runtime["DesiredCopyCount"] == 3
    assert provider.wait_ready(3, timeout_s=30, poll_s=0.05).ready
    assert not provider.apply(3).changed
    assert provider.apply(0).changed
    assert provider.wait_ready(0, timeout_s=30, poll_s=0.05).state.ready == 0
    assert front.ops.count("UpdateInferenceComponentRuntimeConfig") == 2


def test_component_on_another_endpoint_is_refused(make_provider, front, component):
    provider = make_provider("aws-sagemaker-component", component_name=component,
                             endpoint_name="some-other-endpoint")
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert err.value.code == "EndpointMismatch" and not err.value.retryable
    assert "UpdateInferenceComponentRuntimeConfig" not in front.ops


# -- an endpoint that is Updating (item: no write while a change runs, no raise lost) ----------
def test_a_new_target_during_an_update_is_not_sent_and_goes_once_in_service(
        make_provider, front, front_client, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    with front.held():
        assert provider.apply(3).changed
        assert provider.read().detail["status"] == "Updating"
        # SageMaker refuses a change now, as the front does:
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            front_client("sagemaker").update_endpoint_weights_and_capacities(
                EndpointName=sagemaker_endpoint,
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 4}])
        with pytest.raises(ProviderError) as err:
            provider.apply(5)
        assert (err.value.code, err.value.retryable) == ("EndpointUpdating", True)
        assert not provider.apply(3).changed  # the target in progress: nothing to do
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 2  # ours + the refused one

    # What the daemon does (apply.py): retry the retryable error; once the update completes
    # (here: the hold ends at the first backoff) the latest target is sent.
    with front.held():
        def backoff(delay: float) -> None:
            front.settling.set()
        provider.apply(3)  # in progress still (held again)
        result = retry_call(lambda: provider.apply(5), deadline_s=600, sleep=backoff)
    assert result.changed and result.target == 5
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 5


def test_an_operators_update_endpoint_holds_prewarm_back(make_provider, front, front_client,
                                                         moto_client, sagemaker_endpoint):
    sm = moto_client("sagemaker")
    config = sm.describe_endpoint(EndpointName=sagemaker_endpoint)["EndpointConfigName"]
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    with front.held():
        front_client("sagemaker").update_endpoint(EndpointName=sagemaker_endpoint,
                                                  EndpointConfigName=config)
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            front_client("sagemaker").update_endpoint(EndpointName=sagemaker_endpoint,
                                                      EndpointConfigName=config)
        with pytest.raises(ProviderError) as err:
            provider.apply(2)
        assert err.value.retryable and "Updating" in str(err.value)
        assert "UpdateEndpointWeightsAndCapacities" not in front.ops
    assert provider.wait_ready(1, timeout_s=30, poll_s=0.05).ready
    assert provider.apply(2).changed


def test_the_in_progress_refusal_itself_is_retried(make_provider, front, moto_client,
                                                   sagemaker_endpoint):
    # Another writer started an update between our read and our write.
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint)
    front.fail("UpdateEndpointWeightsAndCapacities", times=1, code="ValidationException",
               message=f'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:'
                       f'123456789012:endpoint/{sagemaker_endpoint}".')
    assert provider.apply(2).changed
    assert front.ops.count("UpdateEndpointWeightsAndCapacities") == 2
    assert variant(moto_client, sagemaker_endpoint)["DesiredInstanceCount"] == 2


# -- a serverless variant deployed without provisioned concurrency ------------------------------
def test_serverless_without_provisioned_concurrency_is_refused_with_the_fix(
        make_provider, front, front_client, moto_client, sagemaker_serverless_on_demand):
    name = sagemaker_serverless_on_demand
    provider = make_provider("aws-sagemaker-serverless", endpoint_name=name)
    (finding,) = provider.check()
    assert finding.level == "error" and "UpdateEndpoint" in finding.message
    assert "ProvisionedConcurrency" in finding.message
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert (err.value.code, err.value.retryable) == ("NoProvisionedConcurrency", False)
    assert "UpdateEndpointWeightsAndCapacities" not in front.ops
    # AWS refuses it in place (the front too):
    with pytest.raises(ClientError) as refused:
        front_client("sagemaker").update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "ServerlessUpdateConfig": {"ProvisionedConcurrency": 2}}])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    report = check_endpoints([({"kind": "aws-sagemaker-serverless", "region": "us-east-1",
                                "endpoint_url": front.url, "endpoint_name": name},
                               EndpointRef("embed"))])
    assert not report.ok and "endpoint embed" in report.errors[0]

    # The fix the message gives: a config with provisioned concurrency, deployed once.
    sm = moto_client("sagemaker")
    model = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]["ModelName"]
    sm.create_endpoint_config(EndpointConfigName=name + "-pc", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "ServerlessConfig": {
            "MemorySizeInMB": 4096, "MaxConcurrency": 20, "ProvisionedConcurrency": 1}}])
    front_client("sagemaker").update_endpoint(EndpointName=name, EndpointConfigName=name + "-pc")
    assert provider.wait_ready(1, timeout_s=30, poll_s=0.05).ready
    assert provider.check() == []
    assert provider.apply(3).changed


def test_check_on_a_variant_with_instances_names_the_right_kind(make_provider, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-serverless", endpoint_name=sagemaker_endpoint)
    (finding,) = provider.check()
    assert "aws-sagemaker-endpoint" in finding.message


def _serverless_cli(tmp_path, front, name: str, *args: str):
    """`prewarm ARGS` on a config with the one serverless endpoint `embed` behind the front."""
    from click.testing import CliRunner

    from prewarm.cli.main import cli

    path = tmp_path / "prewarm.toml"
    path.write_text(f"""
[store]
url = "sqlite:///{tmp_path}/prewarm.db"
[metrics]
enabled = false
[[endpoints]]
name = "embed"
[endpoints.provider]
kind = "aws-sagemaker-serverless"
endpoint_name = "{name}"
region = "us-east-1"
endpoint_url = "{front.url}"
""")
    return CliRunner().invoke(cli, ["--config", str(path), *args])


def test_the_daemon_refuses_to_start_on_it_naming_the_fix(tmp_path, front,
                                                         sagemaker_serverless_on_demand):
    result = _serverless_cli(tmp_path, front, sagemaker_serverless_on_demand, "run")
    assert result.exit_code == 2, result.output
    assert "endpoint embed" in result.output and "UpdateEndpoint" in result.output
    assert front.ops == ["DescribeEndpoint"]  # looked, changed nothing


def test_config_check_reports_it_and_exits_2(tmp_path, front, sagemaker_serverless_on_demand):
    """`prewarm config check` asks the provider's own check too: the same refusal, before any run."""
    result = _serverless_cli(tmp_path, front, sagemaker_serverless_on_demand, "config", "check")
    assert result.exit_code == 2, result.output
    assert "provider setup" in result.output and "UpdateEndpoint" in result.output
    assert "UpdateEndpointWeightsAndCapacities" not in front.ops
