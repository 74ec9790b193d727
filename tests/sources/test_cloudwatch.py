"""The cloudwatch source against moto in server mode, behind a front that enforces the API's
500-queries-a-call limit and pages by NextToken: put metric data, then sync."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import botocore.exceptions
import pytest

from prewarm import config
from prewarm.store import Store
from prewarm.store.source_store import sync_states
from prewarm.sync import Syncer

pytestmark = pytest.mark.moto

N = 251  # two queries each (requests, cold starts): 502, over the 500 a call takes
BUSY = 6  # endpoints with data; the others had no requests (no data points: zero)


def write_config(tmp_path, front_url: str) -> config.Settings:
    lines = [f'[store]\nurl = "sqlite:///{tmp_path / "prewarm.db"}"\n',
             '[forecast]\nhistory = "30m"\n',
             '[source]\nkind = "cloudwatch"\nregion = "us-east-1"\n'
             f'endpoint_url = "{front_url}"\nnamespace = "AWS/Lambda"\nmetric = "Invocations"\n'
             'cold_starts_metric = "ProvisionedConcurrencySpilloverInvocations"\ndelay = "0s"\n']
    for i in range(N):
        lines.append(f'[[endpoints]]\nname = "fn-{i:03d}"\n[endpoints.source]\n'
                     f'dimensions = {{ FunctionName = "fn-{i:03d}", Resource = "fn-{i:03d}:live" }}\n')
    path = tmp_path / "prewarm.toml"
    path.write_text("\n".join(lines))
    return config.load(path)


def put(cw, name: str, metric: str, at: datetime, value: float) -> None:
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{
        "MetricName": metric, "Timestamp": at, "Value": value, "Unit": "Count",
        "Dimensions": [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:live"}]}])


def rows(store: Store, name: str, start: datetime, end: datetime) -> dict[int, tuple]:
    return {int((ts - start).total_seconds() // 60): (req, cold) for ts, req, cold in store.history(name, start, end)}


def test_sync_batches_pages_and_revises(tmp_path, cw_moto):
    front, moto_url = cw_moto
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    t0 = now - timedelta(minutes=30)
    expected: dict[str, dict[int, tuple]] = {}
    for i in range(BUSY):
        name = f"fn-{i:03d}"
        expected[name] = {}
        for minute in range(5, 25, 2):
            requests = (i + minute) % 5 + 1
            # two data points in one minute: the minute's Sum
            put(cw, name, "Invocations", t0 + timedelta(minutes=minute, seconds=10), requests - 1)
            put(cw, name, "Invocations", t0 + timedelta(minutes=minute, seconds=40), 1)
            cold = minute % 3 == 0
            if cold:
                put(cw, name, "ProvisionedConcurrencySpilloverInvocations", t0 + timedelta(minutes=minute, seconds=5), 1)
            expected[name][minute] = (requests, 1 if cold else 0)
    settings = write_config(tmp_path, front.url)
    store = Store(settings.store.url)
    syncer = Syncer(settings, store)
    front.max_datapoints = 40  # page often (the API's own page is 100,800 data points)
    front.calls.clear()
    try:
        results = syncer.run(now)
        assert all(r.error is None for r in results.values()), [r.error for r in results.values() if r.error][:3]
        firsts = [c for c in front.calls if not c["token"]]
        assert sorted(c["queries"] for c in firsts) == [2, 500], "502 queries in two calls, at most 500 each"
        assert any(c["token"] for c in front.calls), "the answers were paged"
        for i in range(N):
            name = f"fn-{i:03d}"
            got = rows(store, name, t0, now)
            # Every minute of the window is stored; minutes without a data point are zero.
            assert len(got) == 30, name
            want = {m: expected.get(name, {}).get(m, (0, 0)) for m in range(30)}
            assert got == want, name

        # Late data: a data point arrives for a minute already synced; the next sync updates it.
        put(cw, "fn-001", "Invocations", t0 + timedelta(minutes=27, seconds=30), 4)
        again = syncer.run(now + timedelta(minutes=1))
        assert again["fn-001"].updated == 1 and again["fn-001"].inserted == 1
        assert rows(store, "fn-001", t0, now)[27] == (4, 0)

        # CloudWatch throttles: nothing stored changes, the watermark stays, the error is retryable.
        front.fail_next = [(400, "Throttling", "Rate exceeded")] * 2
        failed = syncer.run(now + timedelta(minutes=2))
        assert all(r.error and "Rate exceeded" in r.error and r.retryable for r in failed.values())
        assert sync_states(store, ["fn-001"])["fn-001"].watermark == now + timedelta(minutes=1)
        assert rows(store, "fn-001", t0, now)[27] == (4, 0)
    finally:
        syncer.close()
        store.close()


def test_the_front_refuses_what_cloudwatch_refuses(cw_moto):
    front, _ = cw_moto
    cw = boto3.client("cloudwatch", endpoint_url=front.url, region_name="us-east-1")
    now = datetime.now(timezone.utc)
    queries = [{"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations"},
                                             "Period": 60, "Stat": "Sum"}} for i in range(501)]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        cw.get_metric_data(MetricDataQueries=queries, StartTime=now - timedelta(minutes=5), EndTime=now)
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        cw.get_metric_data(MetricDataQueries=queries[:1], StartTime=now - timedelta(minutes=5), EndTime=now,
                           NextToken="not-one-it-gave")
    assert exc.value.response["Error"]["Code"] == "InvalidNextToken"


def test_sagemaker_serverless_cold_starts_are_the_sample_count_of_model_setup_time(tmp_path, cw_moto):
    front, moto_url = cw_moto
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    dims = [{"Name": "EndpointName", "Value": "sdxl-sls"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    at = now - timedelta(minutes=3)
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": "Invocations", "Timestamp": at + timedelta(seconds=5), "Value": 9, "Dimensions": dims},
        *({"MetricName": "ModelSetupTime", "Timestamp": at + timedelta(seconds=s), "Value": 12_000_000.0,
           "Unit": "Microseconds", "Dimensions": dims} for s in (10, 20))])
    path = tmp_path / "prewarm.toml"
    path.write_text(f'''
[store]
url = "sqlite:///{tmp_path / 'prewarm.db'}"
[forecast]
history = "10m"
[[endpoints]]
name = "sdxl"
[endpoints.source]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{front.url}"
namespace = "AWS/SageMaker"
metric = "Invocations"
dimensions = {{ EndpointName = "sdxl-sls", VariantName = "AllTraffic" }}
cold_starts_metric = "ModelSetupTime"
cold_starts_stat = "SampleCount"
delay = "0s"
''')
    settings = config.load(path)
    store = Store(settings.store.url)
    syncer = Syncer(settings, store)
    try:
        assert syncer.run(now)["sdxl"].error is None
        assert rows(store, "sdxl", at, at + timedelta(minutes=1)) == {0: (9, 2)}
    finally:
        syncer.close()
        store.close()
