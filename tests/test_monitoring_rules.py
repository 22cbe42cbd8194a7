"""The alert rules: rendered by Ansible from the prometheus_server role's template, checked and
unit-tested with promtool (tests/fixtures/prometheus/alerts.test.yml: a paging and a quiet series for
every alert), and every metric they read found in a real capture of the exporter that serves it."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.metric_captures import CAPTURES, DCGM_DEFAULT_COUNTERS, FIXTURES, METRIC, metric_names
from tests.paths import REPO
from tests.role_template import render_role_template

# Debian's prometheus package ships it (`make setup` installs it where missing).
PROMTOOL = shutil.which("promtool")


def render_rules(dest: Path, **extra_vars: object) -> Path:
    """Render the rules as the role does (same template, same delimiters, the role's defaults)."""
    return render_role_template(
        "prometheus_server", "qwen-infra.rules.yml.j2", dest / "qwen-infra.rules.yml",
        "variable_start_string='[['", "variable_end_string=']]'", **extra_vars,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rules")
    render_rules(directory)
    shutil.copy(FIXTURES / "prometheus" / "alerts.test.yml", directory)
    return directory


@pytest.fixture(scope="module")
def rules(rules_dir):
    groups = yaml.safe_load((rules_dir / "qwen-infra.rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is missing: apt-get install prometheus (make setup does)"
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False)


def test_promtool_accepts_the_rules(rules_dir):
    done = promtool("check", "rules", "qwen-infra.rules.yml", cwd=rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_pages_and_stays_quiet_as_expected(rules_dir):
    done = promtool("test", "rules", "alerts.test.yml", cwd=rules_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_weaker_rule_fails_the_unit_tests(tmp_path):
    """The unit tests can fail: a KV-cache bound of 0.99 no longer pages at 95 % full."""
    render_rules(tmp_path, prometheus_server_alert_kv_cache_usage=0.99)
    shutil.copy(FIXTURES / "prometheus" / "alerts.test.yml", tmp_path)
    done = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "QwenKvCacheNearlyFull" in done.stdout + done.stderr


def test_every_alert_has_a_paging_and_a_quiet_case(rules):
    tests = yaml.safe_load((FIXTURES / "prometheus" / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in rules:
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case.get("exp_alerts") for case in mine), f"{rule['alert']}: no case where it pages"
        assert any(not case.get("exp_alerts") for case in mine), f"{rule['alert']}: no case where it is quiet"


def test_every_alert_says_what_happened_and_how_bad(rules):
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize(("prefix", "capture"), CAPTURES.items(), ids=list(CAPTURES))
def test_every_metric_the_alerts_read_exists_in_a_real_capture(rules, prefix, capture):
    wanted = {name for rule in rules for name in METRIC.findall(rule["expr"]) if name.startswith(prefix)}
    assert wanted, f"no alert reads a {prefix} metric"
    assert wanted - metric_names(capture) == set()


def test_gpu_alerts_read_only_dcgm_default_counters(rules):
    wanted = {name for rule in rules for name in METRIC.findall(rule["expr"]) if name.startswith("DCGM_")}
    assert wanted
    assert wanted - DCGM_DEFAULT_COUNTERS == set()


def test_the_label_values_the_alerts_match_exist(rules):
    """The front door's frontend and backends are named in roles/front_door; vLLM labels by model_name."""
    haproxy = CAPTURES["haproxy_"].read_text()
    assert re.search(r'haproxy_frontend_http_responses_total\{proxy="[^"]+",code="5xx"\}', haproxy)
    assert "model_name=" in CAPTURES["vllm:"].read_text()
    config = (REPO / "roles" / "front_door" / "templates" / "haproxy.cfg.j2").read_text()
    assert re.search(r"^frontend https$", config, re.MULTILINE)
    assert "'be_'" in (REPO / "roles" / "front_door" / "templates" / "backends.yml.j2").read_text()
    exprs = " ".join(rule["expr"] for rule in rules)
    assert 'proxy="https"' in exprs
    assert 'proxy=~"be_.+"' in exprs
