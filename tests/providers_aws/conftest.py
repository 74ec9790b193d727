"""moto in server mode on 127.0.0.1 (real HTTP, real boto3) with the local AWS front before it.

Providers under test talk to the front (`front.url`), which implements what moto lacks and
forwards the rest; setup and checks talk to moto directly where moto holds the state, so a
check never goes through the code path it checks.
"""
from __future__ import annotations

import io
import os
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aws_front import AwsFront  # noqa: E402

from prewarm.providers import registry  # noqa: E402
from prewarm.providers.base import EndpointRef  # noqa: E402

REGION = "us-east-1"
FAKE_SECRET = "prewarm-fake-secret-7f3a"  # must never appear in logs
_FAKE_ENV = {
    # boto3's standard chain finds these; they are moto's dummy credentials, nothing real.
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
    # Never read the developer's real config or credentials files.
    "AWS_CONFIG_FILE": "/nonexistent/prewarm-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/prewarm-test-aws-credentials",
}


@pytest.fixture(scope="session")
def aws_env():
    saved = {k: os.environ.get(k) for k in _FAKE_ENV}
    os.environ.update(_FAKE_ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def fake_secret() -> str:
    return FAKE_SECRET


@pytest.fixture(scope="session")
def moto_server(aws_env):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield host, port
    server.stop()


@pytest.fixture(scope="session")
def front_server(moto_server):
    front = AwsFront(*moto_server, ready_delay_s=0.3).start()
    yield front
    front.stop()


@pytest.fixture
def front(front_server):
    front_server.reset_log()
    front_server.failing_functions.clear()
    yield front_server
    front_server.reset_log()


@pytest.fixture(scope="session")
def moto_client(moto_server) -> Callable[[str], Any]:
    """boto3 clients straight to moto, for setup and for checking state."""
    url = "http://%s:%d" % moto_server
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=url, region_name=REGION)
        return cache[service]

    return make


@pytest.fixture(scope="session")
def front_client(front_server) -> Callable[[str], Any]:
    """boto3 clients to the front, to check state the front holds (Lambda PC, components)."""
    cache: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, endpoint_url=front_server.url, region_name=REGION)
        return cache[service]

    return make


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def make_provider(front):
    """Build a provider through the registry (entry points, schema validation) aimed at the
    front; backoff sleeps are recorded instead of slept."""
    made = []

    def make(kind: str, *, min_workers: int = 0, max_workers: int = 50, **keys: Any):
        raw = {"kind": kind, "region": REGION, "endpoint_url": front.url, **keys}
        provider = registry.create(raw, EndpointRef(f"ep-{uuid.uuid4().hex[:6]}", min_workers, max_workers))
        provider.sleep = SleepRecorder()
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- resources in moto ----------------------------------------------------------------------
@pytest.fixture
def lambda_function(moto_client) -> str:
    name = unique("fn")
    role = moto_client("iam").create_role(RoleName=unique("role"), AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return 1\n")
    lam = moto_client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"],
                        Handler="handler.handle", Code={"ZipFile": code.getvalue()}, Publish=True)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return name


@pytest.fixture
def ecs_service(moto_client) -> tuple[str, str]:
    ecs = moto_client("ecs")
    cluster, service = unique("cluster"), unique("svc")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="worker", containerDefinitions=[
        {"name": "worker", "image": "worker:1", "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="worker", desiredCount=1)
    return cluster, service


@pytest.fixture
def asg_group(moto_client) -> str:
    asg = moto_client("autoscaling")
    name = unique("gpu")
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="ami-12c6146b",
                                    InstanceType="g5.xlarge")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name,
                                  MinSize=0, MaxSize=6, DesiredCapacity=1,
                                  AvailabilityZones=["us-east-1a"])
    return name


def _sagemaker_endpoint(moto_client, variant: dict[str, Any]) -> str:
    sm = moto_client("sagemaker")
    name = unique("ep")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                    PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, **variant}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


@pytest.fixture
def sagemaker_endpoint(moto_client) -> str:
    return _sagemaker_endpoint(moto_client, {"InitialInstanceCount": 1, "InstanceType": "ml.g4dn.xlarge"})


@pytest.fixture
def sagemaker_serverless(moto_client) -> str:
    return _sagemaker_endpoint(moto_client, {"ServerlessConfig": {
        "MemorySizeInMB": 4096, "MaxConcurrency": 20, "ProvisionedConcurrency": 1}})


@pytest.fixture
def sagemaker_serverless_on_demand(moto_client) -> str:
    """A serverless variant deployed without provisioned concurrency."""
    return _sagemaker_endpoint(moto_client, {"ServerlessConfig": {"MemorySizeInMB": 4096,
                                                                  "MaxConcurrency": 20}})
