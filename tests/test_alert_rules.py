"""contrib/prometheus/prewarm-rules.yml: promtool checks the rules and runs their unit tests
(contrib/prometheus/prewarm-rules.test.yml), and every metric the rules read is one prewarm
exports."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from prewarm.metrics import PENDING_METRICS, series_names

from .conftest import REPO

RULES = REPO / "contrib" / "prometheus" / "prewarm-rules.yml"
RULE_TESTS = REPO / "contrib" / "prometheus" / "prewarm-rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test():
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for t in case.get("alert_rule_test", ()) if t.get("exp_alerts")}
    assert alerts == tested


def test_the_rules_read_only_metrics_prewarm_exports():
    used = set(re.findall(r"\bprewarm_[a-z0-9_]+", "\n".join(
        r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"])))
    # Metrics another change adds (the history sources' lag) are allowed until they exist.
    missing = used - series_names() - set(PENDING_METRICS)
    assert not missing, f"the rules read metrics prewarm does not export: {sorted(missing)}"
