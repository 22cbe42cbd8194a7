"""playbooks/validate.yml refuses bad monitoring inputs before any host changes, naming what to fix and
never printing a webhook URL, a key or a password. Runs the real playbook against local hosts (the
validate plays only read variables)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.paths import REPO
from tests.tls import self_signed_pem

BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


@pytest.fixture(scope="module")
def journal_ca():
    """A real certificate and key (PEM), as the site's journal CA."""
    certificate, key = self_signed_pem("test journal CA")
    return {"qwen_journal_ca_certificate": certificate, "qwen_journal_ca_private_key": key}


GRAFANA_PASSWORD = "grafana-admin-Pa55word"  # noqa: S105 - a test input, checked never to be printed


@pytest.fixture
def site(journal_ca):
    """What a site with monitoring hosts sets: the journal CA and Grafana's administrator password."""
    return {**journal_ca, "qwen_grafana_admin_password": GRAFANA_PASSWORD}


@pytest.fixture
def validate(tmp_path, site):
    return lambda monitoring=None, address="10.0.0.6", site=site: run_validate(
        tmp_path, monitoring, address, site
    )


def run_validate(tmp_path, monitoring, address, site):
    """A site of one monitoring host and one other host, both this machine (connection local)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    document = {
        "all": {
            "vars": {"qwen_infra_strict": True, **site},
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


def test_good_inputs_pass(validate):
    email = {
        "prometheus_server_alert_email_to": ["oncall@example.com"],
        "prometheus_server_alert_email_from": "am@example.com",
        "prometheus_server_alert_smtp_smarthost": "smtp.example.com:587",
    }
    rc, output = validate(email)
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
        ({"journal_remote_max_use": "10 gigs"}, "journal_remote_max_use a size such as 10G"),
    ],
    ids=["size", "duration", "ratio", "email", "typo", "journal-size"],
)
def test_bad_inputs_are_refused_with_what_to_fix(validate, monitoring, expected):
    rc, output = validate(monitoring)
    assert rc != 0
    assert expected in output


def test_a_wildcard_address_is_refused_for_every_listener(validate):
    rc, output = validate(address="0.0.0.0")  # noqa: S104 - the refused input
    assert rc != 0
    assert "node_exporter on mon1 must listen on one address" in output


def test_a_bad_webhook_is_refused_without_printing_it(validate):
    rc, output = validate({"prometheus_server_alert_webhook_urls": ["hooks.example.com/T0KEN-s3cret"]})
    assert rc != 0
    assert "prometheus_server_alert_webhook_urls" in output
    assert "T0KEN-s3cret" not in output


# What a site with monitoring hosts may leave out: the secrets, what the refusal names, and the switch
# that makes them unneeded.
OPTIONAL_PARTS = {
    "journal": (
        ("qwen_journal_ca_certificate", "qwen_journal_ca_private_key"),
        "qwen_journal_ca_certificate, qwen_journal_ca_private_key",
        "qwen_journal_forwarding",
    ),
    "grafana": (("qwen_grafana_admin_password",), "qwen_grafana_admin_password", "qwen_grafana"),
}


@pytest.mark.parametrize(("left_out", "named", "switch"), OPTIONAL_PARTS.values(), ids=list(OPTIONAL_PARTS))
def test_a_part_without_its_secret_is_refused_with_the_way_out(validate, site, left_out, named, switch):
    rc, output = validate(site={name: value for name, value in site.items() if name not in left_out})
    assert rc != 0
    assert named in output
    assert f"{switch}: false" in output


@pytest.mark.parametrize(("left_out", "named", "switch"), OPTIONAL_PARTS.values(), ids=list(OPTIONAL_PARTS))
def test_a_part_turned_off_needs_no_secret(validate, site, left_out, named, switch):
    kept = {name: value for name, value in site.items() if name not in left_out}
    rc, output = validate(site={**kept, switch: False})
    assert rc == 0, output


def test_the_journal_cas_key_is_never_printed(validate, site, journal_ca):
    rc, output = validate(site={**site, "qwen_journal_ca_certificate": "not a certificate"})
    assert rc != 0
    key_body = journal_ca["qwen_journal_ca_private_key"].splitlines()[1]
    assert key_body not in output


def test_a_short_grafana_password_is_refused_without_printing_it(validate, journal_ca):
    rc, output = validate(site={**journal_ca, "qwen_grafana_admin_password": "Sh0rt-pw"})
    assert rc != 0
    assert "at least 12 characters" in output
    assert "Sh0rt-pw" not in output


def test_grafana_from_a_mirror_needs_a_well_formed_key_checksum(validate):
    rc, output = validate({"grafana_apt_key_checksum": "md5:0123"})
    assert rc != 0
    assert "grafana_apt_key_checksum empty or sha256:<64 hex digits>" in output
