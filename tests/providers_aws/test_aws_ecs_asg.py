"""aws-ecs and aws-asg against moto (through the front, which only forwards and counts)."""
from __future__ import annotations

import pytest

from prewarm.providers.base import ProviderError

pytestmark = pytest.mark.moto


def service(moto_client, cluster: str, name: str) -> dict:
    return moto_client("ecs").describe_services(cluster=cluster, services=[name])["services"][0]


def group(moto_client, name: str) -> dict:
    return moto_client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def test_ecs_desired_count(make_provider, front, moto_client, ecs_service):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name)
    result = provider.apply(4)
    assert (result.changed, result.previous, result.target) == (True, 1, 4)
    assert service(moto_client, cluster, name)["desiredCount"] == 4
    report = provider.wait_ready(4, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 4
    assert not provider.apply(4).changed
    assert provider.apply(0).changed
    assert service(moto_client, cluster, name)["desiredCount"] == 0
    assert front.ops.count("UpdateService") == 2


def test_ecs_throttling_retried_once_applied(make_provider, front, moto_client, ecs_service):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name, max_workers=3)
    front.fail("UpdateService", times=3)
    result = provider.apply(9)
    assert result.target == 3  # clamped to the endpoint's max before any call
    assert front.ops.count("UpdateService") == 4
    assert service(moto_client, cluster, name)["desiredCount"] == 3


def test_ecs_missing_service_and_auth_errors_are_not_retried(make_provider, front, ecs_service):
    cluster, _ = ecs_service
    missing = make_provider("aws-ecs", cluster=cluster, service="nope")
    with pytest.raises(ProviderError) as err:
        missing.apply(1)
    assert err.value.code == "ServiceNotFound" and not err.value.retryable
    denied = make_provider("aws-ecs", cluster=cluster, service="nope")
    front.fail("DescribeServices", times=1, code="AccessDeniedException",
               message="User is not authorized to perform: ecs:DescribeServices")
    with pytest.raises(ProviderError) as err:
        denied.read()
    assert err.value.code == "AccessDeniedException" and not err.value.retryable
    assert denied.sleep.delays == [] and front.ops.count("DescribeServices") == 2


def test_asg_desired_capacity_and_ready_instances(make_provider, front, moto_client, asg_group):
    provider = make_provider("aws-asg", group_name=asg_group)
    assert provider.apply(3).changed
    assert group(moto_client, asg_group)["DesiredCapacity"] == 3
    report = provider.wait_ready(3, timeout_s=30, poll_s=0.05)
    assert report.ready and report.state.ready == 3
    assert not provider.apply(3).changed
    assert front.ops.count("SetDesiredCapacity") == 1


def test_asg_clamped_to_group_max_and_query_throttling(make_provider, front, moto_client, asg_group):
    provider = make_provider("aws-asg", group_name=asg_group)
    front.fail("SetDesiredCapacity", times=2)  # 400 <Code>Throttling</Code>
    result = provider.apply(10)  # the group's MaxSize is 6
    assert result.target == 6 and result.detail["fitted_to_resource_bounds"] == 6
    assert front.ops.count("SetDesiredCapacity") == 3
    assert group(moto_client, asg_group)["DesiredCapacity"] == 6


def test_asg_warm_pool(make_provider, front, moto_client, asg_group):
    provider = make_provider("aws-asg", group_name=asg_group, warm_pool_min_size=2)
    assert provider.apply(1).changed  # desired already 1: only the warm pool changes
    pool = moto_client("autoscaling").describe_warm_pool(AutoScalingGroupName=asg_group)
    assert pool["WarmPoolConfiguration"]["MinSize"] == 2
    # Without MaxGroupPreparedCapacity AWS would keep MaxSize - Desired (5) in the pool.
    assert pool["WarmPoolConfiguration"]["MaxGroupPreparedCapacity"] == 2
    assert pool["WarmPoolConfiguration"]["PoolState"] == "Stopped"  # AWS's default, new pool
    assert not provider.apply(1).changed
    assert front.ops.count("PutWarmPool") == 1 and "SetDesiredCapacity" not in front.ops
    assert provider.capabilities().typical_ready_s < 300


def test_asg_warm_pool_keeps_the_users_reuse_policy_and_state(make_provider, front, moto_client,
                                                              asg_group):
    asg = moto_client("autoscaling")
    asg.put_warm_pool(AutoScalingGroupName=asg_group, MinSize=1, PoolState="Hibernated",
                      InstanceReusePolicy={"ReuseOnScaleIn": True})
    provider = make_provider("aws-asg", group_name=asg_group, warm_pool_min_size=3)
    assert provider.apply(1).changed
    pool = asg.describe_warm_pool(AutoScalingGroupName=asg_group)["WarmPoolConfiguration"]
    assert (pool["MinSize"], pool["MaxGroupPreparedCapacity"]) == (3, 3)
    assert pool["PoolState"] == "Hibernated"  # not configured: the pool's own is kept
    assert pool["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    stopped = make_provider("aws-asg", group_name=asg_group, warm_pool_min_size=3,
                            warm_pool_state="Stopped")
    assert stopped.apply(1).changed  # configured: the state is set, the reuse policy kept
    pool = asg.describe_warm_pool(AutoScalingGroupName=asg_group)["WarmPoolConfiguration"]
    assert pool["PoolState"] == "Stopped" and pool["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    assert not stopped.apply(1).changed and front.ops.count("PutWarmPool") == 2


def test_asg_unknown_group(make_provider, front):
    provider = make_provider("aws-asg", group_name="no-such-group")
    with pytest.raises(ProviderError) as err:
        provider.apply(1)
    assert err.value.code == "GroupNotFound" and not err.value.retryable


def test_direct_mode_beside_a_target_tracking_policy_is_warned(make_provider, front, moto_client,
                                                               ecs_service):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name)
    assert provider.check() == []
    aas = moto_client("application-autoscaling")
    ids = {"ServiceNamespace": "ecs", "ResourceId": f"service/{cluster}/{name}",
           "ScalableDimension": "ecs:service:DesiredCount"}
    aas.register_scalable_target(**ids, MinCapacity=1, MaxCapacity=10)
    aas.put_scaling_policy(PolicyName="cpu70", PolicyType="TargetTrackingScaling", **ids,
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 70.0, "PredefinedMetricSpecification": {
                                   "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    (finding,) = provider.check()
    assert finding.level == "warning" and "cpu70 (TargetTrackingScaling)" in finding.message
    assert 'mode = "scheduled"' in finding.message
    scheduled = make_provider("aws-ecs", cluster=cluster, service=name, mode="scheduled")
    assert scheduled.check() == []  # the floor is what prewarm moves: no fight
    assert not {"UpdateService", "RegisterScalableTarget"} & set(front.ops)  # checks only look
