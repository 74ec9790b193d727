"""Scheduled mode: the plan written as Application Auto Scaling scheduled actions (checked in
moto) and, for Auto Scaling groups, as the group's own scheduled actions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prewarm.providers.aws_scheduled import MAX_ACTIONS
from prewarm.providers.base import ProviderError

pytestmark = pytest.mark.moto

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=timezone.utc)
WRITES = {"PutScheduledAction", "DeleteScheduledAction", "RegisterScalableTarget",
          "PutScheduledUpdateGroupAction", "UpdateAutoScalingGroup"}


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def aas_actions(moto_client, resource_id: str, dimension: str, namespace: str = "ecs") -> dict:
    got = moto_client("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace=namespace, ResourceId=resource_id, ScalableDimension=dimension)
    return {a["ScheduledActionName"]: (a["Schedule"], a["ScalableTargetAction"])
            for a in got["ScheduledActions"]}


def aas_target(moto_client, resource_id: str, dimension: str, namespace: str = "ecs") -> dict:
    return moto_client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=namespace, ResourceIds=[resource_id], ScalableDimension=dimension
    )["ScalableTargets"][0]


@pytest.fixture
def scheduled_ecs(make_provider, ecs_service):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name, mode="scheduled",
                             min_workers=1, max_workers=8)
    return provider, f"service/{cluster}/{name}", "ecs:service:DesiredCount"


def test_schedule_written_as_at_actions(scheduled_ecs, front, moto_client):
    provider, rid, dim = scheduled_ecs
    commands = [(at(-10), 2), (at(10), 5), (at(20), 5), (at(30), 1), (at(40), 0)]
    result = provider.apply_schedule(commands, now=NOW)
    prefix = f"prewarm-{provider.endpoint.name}-"
    # Past commands are not written; a run of equal values is one action; 0 is raised to the
    # endpoint's min_workers (1), which then equals the previous action and collapses too.
    assert aas_actions(moto_client, rid, dim) == {
        prefix + "20310301T121000Z": ("at(2031-03-01T12:10:00)", {"MinCapacity": 5}),
        prefix + "20310301T123000Z": ("at(2031-03-01T12:30:00)", {"MinCapacity": 1}),
    }
    assert len(result.put) == 2 and result.deleted == () and result.changed
    # Registered with the endpoint's bounds because it was not registered before.
    target = aas_target(moto_client, rid, dim)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 8)
    assert provider.capabilities().scheduled


def test_scheduled_action_quota_is_not_retried(scheduled_ecs, front):
    provider, _, _ = scheduled_ecs
    front.fail("PutScheduledAction", times=5, code="LimitExceededException",
               message="Maximum number of scheduled actions reached for the scalable target")
    with pytest.raises(ProviderError) as err:
        provider.apply_schedule([(at(10), 3)], now=NOW)
    assert (err.value.code, err.value.retryable) == ("LimitExceededException", False)
    assert "aws-ecs" in str(err.value) and "not retryable" in str(err.value)
    assert front.ops.count("PutScheduledAction") == 1 and provider.sleep.delays == []


def test_same_schedule_twice_writes_nothing(scheduled_ecs, front, moto_client):
    provider, rid, dim = scheduled_ecs
    commands = [(at(10), 3), (at(20), 6)]
    provider.apply_schedule(commands, now=NOW)
    front.reset_log()
    again = provider.apply_schedule(commands, now=NOW)
    assert not again.changed and again.kept == 2
    assert not WRITES & set(front.ops)


def test_superseded_actions_are_removed_and_others_kept(scheduled_ecs, front, moto_client):
    provider, rid, dim = scheduled_ecs
    provider.apply_schedule([(at(10), 3), (at(20), 6)], now=NOW)
    moto_client("application-autoscaling").put_scheduled_action(
        ServiceNamespace="ecs", ScheduledActionName="nightly-by-hand", ResourceId=rid,
        ScalableDimension=dim, Schedule="cron(0 2 * * ? *)", ScalableTargetAction={"MinCapacity": 1})
    result = provider.apply_schedule([(at(10), 4), (at(25), 2)], now=NOW)
    names = aas_actions(moto_client, rid, dim)
    prefix = f"prewarm-{provider.endpoint.name}-"
    assert names[prefix + "20310301T121000Z"][1] == {"MinCapacity": 4}  # changed in place
    assert prefix + "20310301T122000Z" not in names  # superseded
    assert names[prefix + "20310301T122500Z"][1] == {"MinCapacity": 2}
    assert "nightly-by-hand" in names  # not ours: untouched
    assert result.deleted == (prefix + "20310301T122000Z",)


def test_schedule_clamped_under_an_existing_target_maximum(make_provider, front, moto_client,
                                                           ecs_service):
    cluster, name = ecs_service
    rid, dim = f"service/{cluster}/{name}", "ecs:service:DesiredCount"
    moto_client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=dim, MinCapacity=0, MaxCapacity=4)
    provider = make_provider("aws-ecs", cluster=cluster, service=name, mode="scheduled")
    result = provider.apply_schedule([(at(5), 9)], now=NOW)
    assert result.clamped == 1
    assert list(aas_actions(moto_client, rid, dim).values()) == [
        ("at(2031-03-01T12:05:00)", {"MinCapacity": 4})]
    target = aas_target(moto_client, rid, dim)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 4)  # user's bounds kept


def test_apply_in_scheduled_mode_moves_the_floor_first(scheduled_ecs, front, moto_client,
                                                      ecs_service):
    provider, rid, dim = scheduled_ecs
    cluster, name = ecs_service
    result = provider.apply(3)
    assert result.changed and result.detail["floor"] == 3
    assert aas_target(moto_client, rid, dim)["MinCapacity"] == 3
    svc = moto_client("ecs").describe_services(cluster=cluster, services=[name])["services"][0]
    assert svc["desiredCount"] == 3
    writes = [op for op in front.ops if op in WRITES | {"UpdateService"}]
    assert writes[-2:] == ["RegisterScalableTarget", "UpdateService"]
    front.reset_log()
    assert not provider.apply(3).changed
    assert not (WRITES | {"UpdateService"}) & set(front.ops)


def test_schedule_is_capped_and_planner_commands_accepted(scheduled_ecs, moto_client):
    from prewarm.planner.model import Command

    provider, rid, dim = scheduled_ecs
    commands = [Command(at(i), 1 + i % 2) for i in range(1, MAX_ACTIONS + 11)]
    result = provider.apply_schedule(commands, now=NOW)
    assert len(result.put) == MAX_ACTIONS and result.dropped == 10
    assert len(aas_actions(moto_client, rid, dim)) == MAX_ACTIONS


def test_lambda_schedule_uses_its_alias_as_resource(make_provider, front, moto_client,
                                                    lambda_function):
    provider = make_provider("aws-lambda", function_name=lambda_function, qualifier="live",
                             mode="scheduled")
    provider.apply_schedule([(at(15), 7)], now=NOW)
    rid = f"function:{lambda_function}:live"
    actions = aas_actions(moto_client, rid, "lambda:function:ProvisionedConcurrency", "lambda")
    assert list(actions.values()) == [("at(2031-03-01T12:15:00)", {"MinCapacity": 7})]


def test_sagemaker_variant_schedule(make_provider, front, moto_client, sagemaker_endpoint):
    provider = make_provider("aws-sagemaker-endpoint", endpoint_name=sagemaker_endpoint,
                             mode="scheduled", max_workers=5)
    provider.apply_schedule([(at(15), 4), (at(45), 0)], now=NOW)
    rid = f"endpoint/{sagemaker_endpoint}/variant/AllTraffic"
    actions = aas_actions(moto_client, rid, "sagemaker:variant:DesiredInstanceCount", "sagemaker")
    # 0 is raised to 1: a plain variant cannot go below one instance.
    assert sorted(v[1]["MinCapacity"] for v in actions.values()) == [1, 4]


def test_throttled_schedule_write_is_retried(scheduled_ecs, front, moto_client):
    provider, rid, dim = scheduled_ecs
    front.fail("PutScheduledAction", times=2)
    result = provider.apply_schedule([(at(10), 3)], now=NOW)
    assert len(result.put) == 1 and front.ops.count("PutScheduledAction") == 3
    assert len(aas_actions(moto_client, rid, dim)) == 1


def test_apply_schedule_needs_scheduled_mode(make_provider, front, ecs_service):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name)
    with pytest.raises(ProviderError) as err:
        provider.apply_schedule([(at(10), 3)], now=NOW)
    assert err.value.code == "NotScheduled" and not err.value.retryable
    assert not provider.capabilities().scheduled


def test_asg_schedule_uses_group_scheduled_actions(make_provider, front, moto_client, asg_group):
    provider = make_provider("aws-asg", group_name=asg_group, mode="scheduled")
    asg = moto_client("autoscaling")
    result = provider.apply_schedule([(at(10), 4), (at(20), 9), (at(30), 2)], now=NOW)
    got = {a["ScheduledActionName"]: (a["StartTime"].astimezone(timezone.utc), a["MinSize"])
           for a in asg.describe_scheduled_actions(AutoScalingGroupName=asg_group)
           ["ScheduledUpdateGroupActions"]}
    assert sorted(got.values()) == [(at(10), 4), (at(20), 6), (at(30), 2)]  # 9 -> MaxSize 6
    assert result.clamped == 1
    front.reset_log()
    assert not provider.apply_schedule([(at(10), 4), (at(20), 9), (at(30), 2)], now=NOW).changed
    assert not WRITES & set(front.ops)
    provider.apply_schedule([(at(10), 4)], now=NOW)
    remaining = asg.describe_scheduled_actions(AutoScalingGroupName=asg_group)
    assert [a["MinSize"] for a in remaining["ScheduledUpdateGroupActions"]] == [4]
    # apply moves the group's MinSize (the floor) then its desired capacity.
    provider.apply(3)
    grp = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_group])["AutoScalingGroups"][0]
    assert (grp["MinSize"], grp["DesiredCapacity"]) == (3, 3)
    provider.apply(1)
    grp = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_group])["AutoScalingGroups"][0]
    assert (grp["MinSize"], grp["DesiredCapacity"]) == (1, 1)


def test_first_future_action_written_even_if_it_repeats_the_value_in_force(scheduled_ecs,
                                                                            moto_client):
    provider, rid, dim = scheduled_ecs
    provider.apply_schedule([(at(-5), 3), (at(5), 3), (at(15), 3)], now=NOW)
    assert list(aas_actions(moto_client, rid, dim).values()) == [
        ("at(2031-03-01T12:05:00)", {"MinCapacity": 3})]
