"""[source] and [endpoints.source]: inheritance, validation by the source's own schema with
errors that name the key, and secrets kept out of messages."""
from __future__ import annotations

import pytest

from prewarm import config
from prewarm.errors import ConfigError


def load(tmp_path, text: str, env: dict | None = None) -> config.Settings:
    path = tmp_path / "prewarm.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


BASE = '''
[source]
kind = "prometheus"
url = "http://prometheus:9090"
timeout = "5s"

[[endpoints]]
name = "chat"
[endpoints.source]
query = 'sum(increase(x_total{service="chat"}[1m]))'
timeout = "20s"

[[endpoints]]
name = "batch"
'''


def test_endpoints_inherit_source_and_only_endpoints_with_a_table_are_fed(tmp_path):
    from prewarm.sources import registry

    s = load(tmp_path, BASE)
    chat = s.source_for(s.endpoint("chat"))
    assert chat == {"kind": "prometheus", "url": "http://prometheus:9090", "timeout": "20s",
                    "query": 'sum(increase(x_total{service="chat"}[1m]))'}
    cfg = registry.validate_config(chat)
    assert cfg.timeout_s == 20 and cfg.delay_s == 60 and cfg.absent == "missing"
    assert s.source_for(s.endpoint("batch")) is None  # a shared [source] alone feeds nothing


def test_env_override_of_the_shared_source(tmp_path):
    s = load(tmp_path, BASE, env={"PREWARM_SOURCE__URL": "http://other:9090"})
    assert s.source_for(s.endpoint("chat"))["url"] == "http://other:9090"


@pytest.mark.parametrize("endpoint_table, where, says", [
    ("", "endpoints[0] (chat).source.query", "Field required"),
    ("query = 'x'\nquery_typo = 1", "endpoints[0] (chat).source.query_typo", "Extra inputs are not permitted"),
    ("kind = \"graphite\"\nquery = 'x'", "endpoints[0] (chat).source.kind", "unknown source kind 'graphite'"),
    ("query = 'x'\ntimeout = \"soon\"", "endpoints[0] (chat).source", "expected a duration"),
    ("query = 'x'\npassword = \"${PW}\"", "endpoints[0] (chat).source", "password needs username"),
])
def test_a_bad_source_table_names_the_key(tmp_path, endpoint_table, where, says):
    text = f'''
[source]
kind = "prometheus"
url = "http://prometheus:9090"
[[endpoints]]
name = "chat"
[endpoints.source]
{endpoint_table}
'''
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text, env={"PW": "pw-secret-31"})
    msg = str(exc.value)
    assert where in msg and says in msg, msg
    assert "pw-secret-31" not in msg


def test_secrets_stay_out_of_config_errors(tmp_path):
    text = '''
[[endpoints]]
name = "chat"
[endpoints.source]
kind = "prometheus"
url = "http://user:url-secret-77@prometheus:9090"
query = "x"
bearer_token = "${TOKEN}"
username = "me"
'''
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text, env={"TOKEN": "tok-secret-55"})
    msg = str(exc.value)
    assert "endpoints[0] (chat).source" in msg and "not both" in msg
    assert "tok-secret-55" not in msg and "url-secret-77" not in msg
    text = text.replace('bearer_token = "${TOKEN}"\nusername = "me"\n', "").replace("http://", "ftp://")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    msg = str(exc.value)
    assert "http:// or https://" in msg and "url-secret-77" not in msg and "ftp://prometheus:9090" in msg


def test_history_and_source_together_are_refused(tmp_path):
    text = BASE.replace('timeout = "20s"', 'timeout = "20s"\n[endpoints.history]\nurl = "sqlite://"\n'
                                          'query = "SELECT 1 WHERE :start < :end"')
    with pytest.raises(ConfigError, match=r"endpoints\[0\] \(chat\): give either \[endpoints.history\]"):
        load(tmp_path, text)


def test_cloudwatch_table(tmp_path):
    from prewarm.sources import registry

    s = load(tmp_path, '''
[[endpoints]]
name = "sdxl"
[endpoints.source]
kind = "cloudwatch"
region = "us-east-1"
namespace = "AWS/SageMaker"
metric = "Invocations"
dimensions = { EndpointName = "sdxl-prod", VariantName = "AllTraffic" }
''')
    cfg = registry.validate_config(s.source_for(s.endpoint("sdxl")))
    assert cfg.absent == "zero" and cfg.delay_s == 180 and cfg.dimensions["VariantName"] == "AllTraffic"
    with pytest.raises(ConfigError, match=r"endpoints\[0\] \(sdxl\).source.endpoint_url"):
        load(tmp_path, (tmp_path / "prewarm.toml").read_text() + 'endpoint_url = "localhost:5000"\n')
