"""The boto3 wrapper: config schemas, error judgement, retries, entry points, no secrets."""
from __future__ import annotations

import logging
import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from pydantic import ValidationError

from prewarm.providers import registry
from prewarm.providers.aws_common import classify
from prewarm.providers.base import EndpointRef, ProviderError

AWS_KINDS = ["aws-lambda", "aws-sagemaker-serverless", "aws-sagemaker-endpoint",
             "aws-sagemaker-component", "aws-ecs", "aws-asg"]


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("code,status,retryable", [
    ("ThrottlingException", 400, True), ("TooManyRequestsException", 429, True),
    ("Throttling", 400, True), ("ProvisionedThroughputExceededException", 400, True),
    ("RequestLimitExceeded", 400, True), ("SlowDown", 503, True),
    ("InternalFailure", 500, True), ("SomethingNew", 502, True),
    ("ConcurrentUpdateException", 400, True),
    ("AccessDeniedException", 400, False), ("UnrecognizedClientException", 403, False),
    ("ExpiredTokenException", 403, False), ("ValidationException", 400, False),
    ("ResourceNotFoundException", 404, False), ("InvalidParameterValueException", 400, False),
])
def test_client_errors_are_judged(code, status, retryable):
    assert classify(client_error(code, status)) == (retryable, code, "m")


@pytest.mark.parametrize("code", ["LimitExceededException", "LimitExceeded", "ResourceLimitExceeded"])
def test_quotas_are_not_throttling(code):
    # Application Auto Scaling's LimitExceededException is a per-account quota (botocore's
    # standard retry mode would treat it as throttling): retrying cannot help.
    retryable, got, message = classify(client_error(code, 400))
    assert (retryable, got) == (False, code) and "quota" in message


def test_connection_and_setup_errors_are_judged():
    assert classify(EndpointConnectionError(endpoint_url="http://x"))[0] is True
    assert classify(NoCredentialsError())[:2] == (False, "NoCredentialsError")
    assert classify(ValueError("not ours")) is None


def test_every_aws_kind_is_an_installed_entry_point():
    installed = registry.available()
    for kind in AWS_KINDS:
        assert kind in installed
        cls = registry.load_class(kind)
        assert cls.kind == kind and "region" in cls.config_keys()


@pytest.mark.parametrize("raw,where", [
    ({"kind": "aws-lambda", "region": "us-east-1", "function_name": "f"}, "qualifier"),
    ({"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s", "desired": 3},
     "desired"),
    ({"kind": "aws-asg", "region": "us-east-1", "group_name": "g", "warm_pool_min_size": -1},
     "warm_pool_min_size"),
    ({"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s",
      "endpoint_url": "localhost:5000"}, "endpoint_url"),
    ({"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s", "mode": "cron"},
     "mode"),
    ({"kind": "aws-sagemaker-endpoint", "endpoint_name": "e"}, "region"),
])
def test_config_errors_name_the_key(raw, where):
    with pytest.raises(ValidationError) as err:
        registry.validate_config(raw["kind"], raw)
    assert where in str(err.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_until_the_deadline(aws_env):
    provider = registry.create(
        {"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s",
         "endpoint_url": f"http://127.0.0.1:{_closed_port()}", "retry_deadline_s": 1.0},
        EndpointRef("down"))
    slept: list[float] = []
    provider.sleep = slept.append
    # The deadline is measured on the backoff alone: a refused connection that takes longer
    # than the deadline on a loaded machine must not end the retries after one call
    provider.clock = lambda: sum(slept)
    with pytest.raises(ProviderError) as err:
        provider.apply(2)
    assert err.value.retryable and err.value.code == "EndpointConnectionError"
    assert len(provider.calls) >= 2 and len(slept) == len(provider.calls) - 1
    assert "down" in str(err.value) and "aws-ecs" in str(err.value)
    provider.close()


def test_missing_profile_is_not_retried(aws_env):
    provider = registry.create(
        {"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s",
         "profile": "no-such-profile"}, EndpointRef("p"))
    with pytest.raises(ProviderError) as err:
        provider.read()
    assert not err.value.retryable and err.value.code == "ProfileNotFound"
    assert provider.calls == ["DescribeServices"]


@pytest.mark.moto
def test_retries_log_no_secret(make_provider, front, ecs_service, caplog, fake_secret):
    cluster, name = ecs_service
    provider = make_provider("aws-ecs", cluster=cluster, service=name)
    front.fail("UpdateService", times=1)
    with caplog.at_level(logging.DEBUG):  # botocore's debug logs included
        provider.apply(2)
    assert "UpdateService" in caplog.text and "ThrottlingException" in caplog.text
    assert fake_secret not in caplog.text


def _provider_imports() -> dict[str, set[str]]:
    """providers/ module -> the providers/ modules it imports anywhere in it (top level, inside
    functions, under TYPE_CHECKING): each is an edge of the import graph."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "providers"
    names = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    edges.add(node.module.split(".")[0])
                else:
                    edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prewarm.providers."):
                edges.add(node.module.split(".")[2])
        graph[path.stem] = edges & names - {path.stem}
    return graph


def test_provider_modules_import_no_circle():
    graph = _provider_imports()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "aws_common" in graph["aws_asg"] and "aws_scheduled" in graph["aws_common"]


def test_an_unreachable_resource_is_a_warning_at_start_not_a_refusal(aws_env):
    from prewarm.providers.checks import check_endpoints

    raw = {"kind": "aws-ecs", "region": "us-east-1", "cluster": "c", "service": "s",
           "endpoint_url": f"http://127.0.0.1:{_closed_port()}", "retry_deadline_s": 0}
    report = check_endpoints([(raw, EndpointRef("down")), ({"kind": "dry-run"}, EndpointRef("dry"))])
    assert report.ok and report.errors == []
    (warning,) = report.warnings  # dry-run has no check: not built, nothing said
    assert warning.startswith("endpoint down (aws-ecs): not checked") and "EndpointConnectionError" in warning
