"""The provider pages stay true: their config example loads, and their IAM policies allow every
AWS operation the provider really makes (direct mode, and scheduled mode) against moto/front."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from prewarm import config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers"
IAM_PREFIX = {"lambda": "lambda", "sagemaker": "sagemaker", "ecs": "ecs",
              "autoscaling": "autoscaling", "application-autoscaling": "application-autoscaling"}


def blocks(kind: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / f"{kind}.md").read_text(), re.S)


def allowed(policy: str) -> set[str]:
    out: set[str] = set()
    for statement in json.loads(policy)["Statement"]:
        actions = statement["Action"]
        out.update([actions] if isinstance(actions, str) else actions)
    return out


AAS_ACTIONS = {f"application-autoscaling:{op}" for op in (
    "DescribeScalableTargets", "RegisterScalableTarget", "DescribeScheduledActions",
    "PutScheduledAction", "DeleteScheduledAction")}
KINDS = ["aws-lambda", "aws-sagemaker-endpoint", "aws-sagemaker-serverless",
         "aws-sagemaker-component", "aws-ecs", "aws-asg"]


@pytest.mark.parametrize("kind", KINDS)
def test_config_example_loads(kind, tmp_path):
    (example,) = blocks(kind, "toml")
    path = tmp_path / "prewarm.toml"
    path.write_text(example)
    settings = config.load(path, env={})
    assert settings.endpoints[0].provider["kind"] == kind


def _keys(kind: str, request) -> dict:
    fixture = request.getfixturevalue
    if kind == "aws-lambda":
        return {"function_name": fixture("lambda_function"), "qualifier": "live"}
    if kind == "aws-sagemaker-endpoint":
        return {"endpoint_name": fixture("sagemaker_endpoint")}
    if kind == "aws-sagemaker-serverless":
        return {"endpoint_name": fixture("sagemaker_serverless")}
    if kind == "aws-sagemaker-component":
        name = f"ic-{uuid.uuid4().hex[:8]}"
        fixture("front_client")("sagemaker").create_inference_component(
            InferenceComponentName=name, EndpointName=fixture("sagemaker_endpoint"),
            VariantName="AllTraffic", Specification={"ModelName": "m"}, RuntimeConfig={"CopyCount": 1})
        return {"component_name": name}
    if kind == "aws-ecs":
        cluster, service = fixture("ecs_service")
        return {"cluster": cluster, "service": service}
    return {"group_name": fixture("asg_group"), "warm_pool_min_size": 1}


@pytest.mark.moto
@pytest.mark.parametrize("kind", KINDS)
def test_iam_policies_cover_every_call(kind, request, make_provider, front):
    keys = _keys(kind, request)
    direct_policy, scheduled_policy = (allowed(p) for p in blocks(kind, "json"))
    assert direct_policy <= scheduled_policy

    direct = make_provider(kind, **keys)
    direct.check()
    direct.apply(3), direct.apply(3), direct.wait_ready(3, timeout_s=30, poll_s=0.05), direct.apply(0)
    direct.wait_ready(0, timeout_s=30, poll_s=0.05)
    direct_calls = set(direct.service_calls)
    assert direct_calls
    assert {f"{IAM_PREFIX[s]}:{op}" for s, op in direct_calls} <= direct_policy

    if kind in ("aws-sagemaker-serverless", "aws-sagemaker-component"):
        # moto 5.2.5 refuses these two Application Auto Scaling dimensions: same code path as
        # the others, so check the policy has what the others need.
        assert AAS_ACTIONS <= scheduled_policy
        return
    scheduled = make_provider(kind, mode="scheduled", **keys)
    now = datetime(2031, 1, 1, tzinfo=timezone.utc)
    scheduled.apply_schedule([(now + timedelta(minutes=5), 2)], now=now)
    scheduled.apply_schedule([(now + timedelta(minutes=9), 2)], now=now)  # one put, one delete
    scheduled.apply(2)
    scheduled.wait_ready(2, timeout_s=30, poll_s=0.05)  # a SageMaker endpoint is Updating till then
    scheduled.apply(1)
    scheduled_calls = set(scheduled.service_calls)
    assert {"DeleteScheduledAction", "PutScheduledAction" if kind != "aws-asg"
            else "PutScheduledUpdateGroupAction"} <= {op for _, op in scheduled_calls}
    assert {f"{IAM_PREFIX[s]}:{op}" for s, op in scheduled_calls} <= scheduled_policy
