"""playbooks/validate.yml refuses bad monitoring inputs before any host changes, naming what to fix and
never printing a webhook URL. Runs the real playbook against local hosts (the validate plays only read
variables)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO

BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def validate(tmp_path, monitoring=None, address="10.0.0.6"):
    """A site of one monitoring host and one other host, both this machine (connection local)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    document = {
        "all": {
            "vars": {"qwen_infra_strict": True},
            "children": {
                "monitoring": {
                    "hosts": {"mon1": {**local, "qwen_private_address": address, **(monitoring or {})}}
                },
                "other": {"hosts": {"host1": {**local, "qwen_private_address": "10.0.0.7"}}},
            },
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run(
        [BIN / "ansible-playbook", "playbooks/validate.yml", "-i", path],
        cwd=REPO, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_good_inputs_pass(tmp_path):
    email = {
        "prometheus_server_alert_email_to": ["oncall@example.com"],
        "prometheus_server_alert_email_from": "am@example.com",
        "prometheus_server_alert_smtp_smarthost": "smtp.example.com:587",
    }
    rc, output = validate(tmp_path, email)
    assert rc == 0, output


@pytest.mark.parametrize(
    ("monitoring", "expected"),
    [
        ({"prometheus_server_retention_size": "10 gigs"}, "prometheus_server_retention_size"),
        ({"prometheus_server_alert_down_for": "2 minutes"}, "prometheus_server_alert_down_for"),
        ({"prometheus_server_alert_kv_cache_usage": 1.5}, "prometheus_server_alert_kv_cache_usage"),
        (
            {"prometheus_server_alert_email_to": ["oncall@example.com"]},
            "prometheus_server_alert_smtp_smarthost",
        ),
        # A misspelt variable would be ignored silently: the inventory is strict, so it is refused.
        ({"prometheus_server_retention_tme": "30d"}, "prometheus_server_retention_tme"),
    ],
    ids=["size", "duration", "ratio", "email", "typo"],
)
def test_bad_inputs_are_refused_with_what_to_fix(tmp_path, monitoring, expected):
    rc, output = validate(tmp_path, monitoring)
    assert rc != 0
    assert expected in output


def test_a_wildcard_address_is_refused_for_every_listener(tmp_path):
    rc, output = validate(tmp_path, address="0.0.0.0")  # noqa: S104 - the refused input
    assert rc != 0
    assert "node_exporter on mon1 must listen on one address" in output


def test_a_bad_webhook_is_refused_without_printing_it(tmp_path):
    rc, output = validate(
        tmp_path, {"prometheus_server_alert_webhook_urls": ["hooks.example.com/T0KEN-s3cret"]}
    )
    assert rc != 0
    assert "prometheus_server_alert_webhook_urls" in output
    assert "T0KEN-s3cret" not in output
