"""The hand-off: a recorded `pulumi stack output --json` becomes inventories/prod/hosts.yml, which
ansible-inventory accepts and site.yml's first stage (playbooks/validate.yml) passes."""

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import inventory
import pytest
import yaml
from pulumi_harness import INFRA

from tests.tls import self_signed_pem

REPO = INFRA.parent
FIXTURE = Path(__file__).parent / "fixtures" / "stack-output-qwen3-32b-awq.json"
# This test's key is encrypted under a vault id of its own, passed the way an operator passes prod's.
TEST_VAULT = {"ANSIBLE_VAULT_IDENTITY_LIST": f"test@{REPO / 'inventories' / 'lab' / 'vault-password.txt'}"}
ANSIBLE_ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **TEST_VAULT}
BIN = Path(sys.executable).parent
# The inventory's hosts played by this machine.
LOCAL_HOSTS = ["-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}"]


@pytest.fixture
def outputs():
    return json.loads(FIXTURE.read_text())


def write_inventory(directory: Path, outputs: dict) -> Path:
    """A copy of inventories/prod (its committed group_vars) with hosts.yml generated from `outputs`."""
    shutil.copytree(REPO / "inventories" / "prod" / "group_vars", directory / "group_vars")
    (directory / "hosts.yml").write_text(inventory.render(outputs))
    return directory


def test_fixture_has_the_shape_the_program_exports(example):
    recorded = json.loads(FIXTURE.read_text())
    assert set(recorded) == set(example.outputs)
    assert set(recorded["hosts"][0]) == set(example.outputs["hosts"][0])
    assert set(recorded["serving"]) == set(example.outputs["serving"])
    assert set(recorded["access"]) == set(example.outputs["access"])


def test_groups_hosts_and_expectations(outputs):
    document = yaml.safe_load(inventory.render(outputs))["all"]
    servers = document["children"]["vllm_servers"]
    head = servers["children"]["vllm_head"]["hosts"]["qwen-qwen3-32b-awq-gpu-0"]
    # What the gate expects comes from the profile's catalog entry, not from copies in the inventory.
    assert not [name for name in head if name.startswith("gpu_expected_")]
    assert head["gpu_validate_profile"] == "g6e.12xlarge"  # the gpu_validate role's profile
    monitoring = document["children"]["monitoring"]["hosts"]["qwen-qwen3-32b-awq-monitoring"]
    assert "gpu_validate_profile" not in monitoring
    assert head["ansible_host"] == "i-0a1b2c3d4e5f60718"  # ssm: Session Manager targets the instance id
    assert servers["children"]["vllm_workers"]["hosts"] == {}
    assert servers["vars"]["vllm_tensor_parallel_size"] == 4
    assert servers["vars"]["vllm_max_model_len"] == 32768
    assert list(document["children"]["monitoring"]["hosts"]) == ["qwen-qwen3-32b-awq-monitoring"]
    assert list(document["children"]["load_balancers"]["hosts"]) == ["qwen-qwen3-32b-awq-lb"]
    assert "AWS-StartSSHSession" in document["vars"]["ansible_ssh_common_args"]


def test_ssh_mode_connects_to_the_public_address_without_a_proxy(outputs):
    outputs["access"]["mode"] = "ssh"
    document = yaml.safe_load(inventory.render(outputs))["all"]
    head = document["children"]["vllm_servers"]["children"]["vllm_head"]["hosts"]["qwen-qwen3-32b-awq-gpu-0"]
    assert head["ansible_host"] == "54.210.33.7"
    assert "ansible_ssh_common_args" not in document["vars"]
    outputs["hosts"][0]["public_ip"] = ""
    document = yaml.safe_load(inventory.render(outputs))["all"]
    assert (
        document["children"]["vllm_servers"]["children"]["vllm_head"]["hosts"]["qwen-qwen3-32b-awq-gpu-0"][
            "ansible_host"
        ]
        == "10.42.3.17"
    )


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda o: o.pop("hosts"), "the stack outputs lacks hosts"),
        (lambda o: o["hosts"][0].pop("gpu_expected_efa_count"), "host 0 lacks gpu_expected_efa_count"),
        (lambda o: o["hosts"][0].update(role="gpu"), "unknown role 'gpu'"),
        (lambda o: o["hosts"].pop(0), "expected one serving head, found 0"),
        (lambda o: o["access"].update(mode="telnet"), "neither ssm nor ssh"),
    ],
)
def test_outputs_of_another_shape_are_refused(outputs, breakage, message):
    broken = copy.deepcopy(outputs)
    breakage(broken)
    with pytest.raises(inventory.OutputsError, match=message):
        inventory.render(broken)


def test_ansible_inventory_accepts_it(tmp_path, outputs):
    directory = write_inventory(tmp_path, outputs)
    done = subprocess.run(
        [BIN / "ansible-inventory", "-i", directory, "--list"],
        env=ANSIBLE_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["vllm_servers"]["children"] == ["vllm_head", "vllm_workers"]
    assert listed["vllm_head"]["hosts"] == ["qwen-qwen3-32b-awq-gpu-0"]
    hostvars = listed["_meta"]["hostvars"]["qwen-qwen3-32b-awq-gpu-0"]
    assert hostvars["gpu_validate_profile"] == "g6e.12xlarge"
    assert hostvars["vllm_served_model_name"] == "{{ qwen_model_name }}"  # from the committed group_vars
    assert "[WARNING]" not in done.stderr


def vault_string(name: str, secret: str) -> str:
    """`name: !vault |...` encrypted with a test vault id given the way prod's is."""
    return subprocess.run(
        [BIN / "ansible-vault", "encrypt_string", "--encrypt-vault-id", "test", "--name", name, secret],
        env=ANSIBLE_ENV, cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_site_preflight_accepts_it(tmp_path, outputs):
    """playbooks/validate.yml, site.yml's first stage, passes with the generated inventory, an API key
    in vault.yml, the front door's certificate, key and one client in the load balancers' vault.yml and
    the journal CA in all's and Grafana's administrator password in the monitoring hosts' (encrypted here
    under a test vault id, given the way prod's is)."""
    directory = write_inventory(tmp_path, outputs)
    (directory / "group_vars" / "vllm_servers" / "vault.yml").write_text(
        "---\n" + vault_string("vllm_api_key", "k" * 32)
    )
    journal_ca, journal_ca_key = self_signed_pem("qwen-infra journal CA")
    (directory / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (directory / "group_vars" / "all" / "vault.yml").write_text(
        "---\n"
        + yaml.safe_dump({"qwen_journal_ca_certificate": journal_ca})
        + vault_string("qwen_journal_ca_private_key", journal_ca_key)
    )
    (directory / "group_vars" / "monitoring").mkdir(parents=True, exist_ok=True)
    (directory / "group_vars" / "monitoring" / "vault.yml").write_text(
        "---\n" + vault_string("qwen_grafana_admin_password", "g" * 16)
    )
    certificate, private_key = self_signed_pem("qwen.example.com")
    model = outputs["serving"]["model_name"]
    client = vault_string("key", "c" * 40).replace("\n", "\n    ")
    (directory / "group_vars" / "load_balancers" / "vault.yml").write_text(
        "---\n"
        + yaml.safe_dump({"front_door_tls_certificate": certificate})
        + vault_string("front_door_tls_private_key", private_key)
        + f"qwen_clients:\n  - name: team-a\n    {client.rstrip()}\n    requests_per_second: 5\n"
        + f"    concurrent_requests: 2\n    allowed_models: [{model}]\n"
    )
    done = subprocess.run(
        [BIN / "ansible-playbook", "playbooks/validate.yml", "-i", directory, *LOCAL_HOSTS,
         "--skip-tags", "gpu_preflight"],
        env=ANSIBLE_ENV, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed=0" in done.stdout
    assert "front_door : Refuse bad inputs" in done.stdout  # the load balancer's inputs were checked


def test_generated_file_passes_the_repository_yamllint(tmp_path, outputs):
    hosts = write_inventory(tmp_path, outputs) / "hosts.yml"
    done = subprocess.run(
        [BIN / "yamllint", "--strict", "-c", REPO / ".yamllint", hosts],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_cli_writes_the_file_and_fails_clearly_without_pulumi(tmp_path):
    out = tmp_path / "hosts.yml"
    done = subprocess.run(
        [sys.executable, INFRA / "inventory.py", "--from", FIXTURE, "--out", out],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("# Generated by infra/inventory.py")
    no_pulumi = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, INFRA / "inventory.py", "--out", out],
        env=no_pulumi,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "inventory: the pulumi CLI is not on PATH" in done.stderr
