"""aws-lambda against the local front (provisioned concurrency) and moto (the function)."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from prewarm.providers.base import ProviderError

pytestmark = pytest.mark.moto

MUTATING = {"PutProvisionedConcurrencyConfig", "DeleteProvisionedConcurrencyConfig"}


def pc(front_client, function: str) -> dict:
    return front_client("lambda").get_provisioned_concurrency_config(FunctionName=function,
                                                                     Qualifier="live")


def test_apply_sets_provisioned_concurrency_and_waits_for_ready(make_provider, front, front_client,
                                                                  lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    with front.held():  # allocation stays IN_PROGRESS until the block ends
        result = provider.apply(3)
        assert (result.changed, result.previous, result.target) == (True, 0, 3)
        assert pc(front_client, lambda_function)["RequestedProvisionedConcurrentExecutions"] == 3
        pending = provider.wait_ready(3, timeout_s=0.3, poll_s=0.05)
        assert not pending.ready and pending.state.detail["status"] == "IN_PROGRESS"
        assert pending.state.ready == 0
    report = provider.wait_ready(3, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.detail["status"] == "READY"
    assert pc(front_client, lambda_function)["AllocatedProvisionedConcurrentExecutions"] == 3
    assert provider.read().ready == 3


def test_same_target_twice_is_one_change(make_provider, front, lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    assert provider.apply(3).changed
    second = provider.apply(3)
    assert not second.changed and second.previous == 3
    assert [op for op in front.ops if op in MUTATING] == ["PutProvisionedConcurrencyConfig"]


def test_zero_deletes_the_config(make_provider, front, front_client, lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    provider.apply(2)
    result = provider.apply(0)
    assert result.changed and result.target == 0
    with pytest.raises(ClientError) as err:
        pc(front_client, lambda_function)
    assert err.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert provider.read().desired == 0
    assert not provider.apply(0).changed
    assert front.ops.count("DeleteProvisionedConcurrencyConfig") == 1
    assert provider.wait_ready(0, timeout_s=1, poll_s=0.01).ready


def test_throttling_is_retried_and_applied_once(make_provider, front, front_client, lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    front.fail("PutProvisionedConcurrencyConfig", times=2)  # 429 TooManyRequestsException
    result = provider.apply(4)
    assert result.changed
    assert front.ops.count("PutProvisionedConcurrencyConfig") == 3  # two refused, one applied
    assert len(provider.sleep.delays) == 2  # jittered backoff between the attempts
    assert all(0 <= d <= 5 for d in provider.sleep.delays)
    assert pc(front_client, lambda_function)["RequestedProvisionedConcurrentExecutions"] == 4
    # botocore's own retries are off: the front saw exactly our attempts, no hidden ones.
    assert provider.calls.count("PutProvisionedConcurrencyConfig") == 3


def test_throttling_past_the_deadline_raises_retryable(make_provider, front, lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live",
                             retry_deadline_s=0.0)
    front.fail("GetProvisionedConcurrencyConfig", times=5)
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert err.value.retryable and err.value.code == "TooManyRequestsException"
    assert err.value.provider == "aws-lambda" and err.value.endpoint == provider.endpoint.name
    assert "PutProvisionedConcurrencyConfig" not in front.ops  # fail warm: nothing changed


def test_unknown_function_is_not_retried(make_provider, front):
    provider = make_provider("aws-lambda", function_name="no-such-function", qualifier="live")
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert not err.value.retryable and err.value.code == "ResourceNotFoundException"
    assert front.ops == ["GetProvisionedConcurrencyConfig"]
    assert provider.sleep.delays == []


def test_validation_error_is_not_retried(make_provider, front, lambda_function):
    front.account_unreserved_limit = 5
    try:
        provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
        with pytest.raises(ProviderError) as err:
            provider.apply(8)
    finally:
        front.account_unreserved_limit = 1000
    assert not err.value.retryable and err.value.code == "InvalidParameterValueException"
    assert front.ops.count("PutProvisionedConcurrencyConfig") == 1


def test_target_is_clamped_before_any_call(make_provider, front, front_client, lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live",
                             min_workers=1, max_workers=4)
    assert provider.apply(10).target == 4
    assert pc(front_client, lambda_function)["RequestedProvisionedConcurrentExecutions"] == 4
    assert provider.apply(0).target == 1  # the endpoint's floor, not a delete
    assert pc(front_client, lambda_function)["RequestedProvisionedConcurrentExecutions"] == 1
    assert "DeleteProvisionedConcurrencyConfig" not in front.ops


class PollClock:
    """Time that moves by what the wait sleeps (really sleeping it) and nothing else."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
        self.now += seconds


def test_failed_status_ends_the_wait_with_the_reason(make_provider, front, lambda_function):
    front.failing_functions.add(lambda_function)
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    provider.apply(2)
    polls = PollClock()
    report = provider.wait_ready(2, timeout_s=600, poll_s=0.05, clock=polls.clock, sleep=polls.sleep)
    # Ended by the FAILED status, not by the timeout: counted in polls, not the machine's seconds
    # (the front fails it 0.3 s after the put, so within 0.3 / 0.05 polls, however slow they are).
    assert not report.ready and report.seconds <= 0.3 + 0.05
    assert report.state.detail["failed"] == "FUNCTION_ERROR_INIT_FAILURE"
    # A FAILED config is rewritten on the next apply, even at the same number.
    front.failing_functions.clear()
    assert provider.apply(2).changed
    assert provider.wait_ready(2, timeout_s=30, poll_s=0.05).ready


def test_latest_is_refused_at_config_load_and_by_the_api(make_provider, front, lambda_function):
    with pytest.raises(ValidationError, match=r"cannot be set on \$LATEST"):
        make_provider("aws-lambda", function_name=lambda_function, qualifier="$LATEST")
    # The front refuses it as AWS does, for a config that got past the schema.
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live")
    provider.config = provider.config.model_copy(update={"qualifier": "$LATEST"})
    with pytest.raises(ProviderError) as err:
        provider.apply(1)
    assert not err.value.retryable and err.value.code == "InvalidParameterValueException"
